"""The MP3 fixture generator makes real MPEG-1 Layer III frames that the ingest check accepts."""

from __future__ import annotations

from calltrack_cli.local.mp3 import SAMPLES_PER_FRAME, frame_length, iter_frames, silent_mp3
from recording_ingest.fetch import looks_like_mp3


def test_one_second_of_silence_is_a_sequence_of_whole_frames() -> None:
    # Given one second of generated silence
    data = silent_mp3(1.0)
    # Then it parses as back-to-back Layer III frames covering at least one second
    frames = iter_frames(data)
    assert len(frames) * SAMPLES_PER_FRAME >= 44100
    assert sum(length for _, length in frames) == len(data)
    assert {length for _, length in frames} <= {frame_length(32, 44100), frame_length(32, 44100, 1)}
    assert looks_like_mp3(data)


def test_an_id3_tagged_file_is_still_frames_after_the_tag() -> None:
    data = silent_mp3(0.5, id3=True, channels=2, bitrate_kbps=64)
    assert data.startswith(b"ID3")
    assert iter_frames(data)
    assert looks_like_mp3(data)


def test_the_generator_is_deterministic_so_bytes_can_be_compared() -> None:
    assert silent_mp3(2.0) == silent_mp3(2.0)
    assert len(silent_mp3(2.0)) > len(silent_mp3(1.0))


def test_things_that_are_not_mp3_are_rejected() -> None:
    assert not looks_like_mp3(b"")
    assert not looks_like_mp3(b"<html>oops</html>")
    assert not looks_like_mp3(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    assert not looks_like_mp3(b"\xff\xfb")  # a frame sync alone is not a frame header
