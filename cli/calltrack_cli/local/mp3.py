"""A tiny valid MP3 generator: MPEG-1 Layer III frames of digital silence, pure Python.

Used by the fake Twilio media server, the demo and the tests, so no binary fixture has to be
shipped and no external encoder is needed. Each frame is a real Layer III frame: a 4-byte
header (sync 0xFFE, MPEG-1, Layer III, no CRC), 17 (mono) or 32 (stereo) bytes of side info
whose ``part2_3_length`` is zero everywhere, i.e. every granule decodes to silence, then zero
padding up to the frame length. Decoders (ffmpeg, browsers) play it as silence.
"""

from __future__ import annotations

import math
import struct

SAMPLES_PER_FRAME = 1152
_BITRATES_KBPS = {32: 1, 40: 2, 48: 3, 56: 4, 64: 5, 80: 6, 96: 7, 112: 8, 128: 9, 160: 10}
_SAMPLE_RATES = {44100: 0, 48000: 1, 32000: 2}


def frame_length(bitrate_kbps: int, sample_rate: int, padding: int = 0) -> int:
    """Bytes in one MPEG-1 Layer III frame."""
    return 144 * bitrate_kbps * 1000 // sample_rate + padding


def frame_header(
    bitrate_kbps: int = 32, sample_rate: int = 44100, *, channels: int = 1, padding: int = 0
) -> bytes:
    if bitrate_kbps not in _BITRATES_KBPS:
        raise ValueError(f"unsupported bitrate {bitrate_kbps}")
    if sample_rate not in _SAMPLE_RATES:
        raise ValueError(f"unsupported sample rate {sample_rate}")
    if channels not in (1, 2):
        raise ValueError("channels must be 1 or 2")
    b1 = 0xFF
    b2 = 0xFB  # 111 sync, 11 MPEG-1, 01 Layer III, 1 no CRC
    b3 = (_BITRATES_KBPS[bitrate_kbps] << 4) | (_SAMPLE_RATES[sample_rate] << 2) | (padding << 1)
    mode = 0b11 if channels == 1 else 0b00  # mono / stereo
    b4 = (mode << 6) | 0b0100  # original bit set, no emphasis
    return bytes((b1, b2, b3, b4))


def silent_frame(
    bitrate_kbps: int = 32, sample_rate: int = 44100, *, channels: int = 1, padding: int = 0
) -> bytes:
    header = frame_header(bitrate_kbps, sample_rate, channels=channels, padding=padding)
    side_info = bytes(17 if channels == 1 else 32)
    size = frame_length(bitrate_kbps, sample_rate, padding)
    return header + side_info + bytes(size - len(header) - len(side_info))


def id3v2_tag(title: str = "calltrack test recording") -> bytes:
    """A minimal ID3v2.3 tag with one TIT2 (title) frame."""
    text = b"\x00" + title.encode("latin-1", "replace")
    frame = b"TIT2" + struct.pack(">I", len(text)) + b"\x00\x00" + text
    size = len(frame)
    syncsafe = bytes(((size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F))
    return b"ID3\x03\x00\x00" + syncsafe + frame


def silent_mp3(
    seconds: float = 1.0,
    *,
    bitrate_kbps: int = 32,
    sample_rate: int = 44100,
    channels: int = 1,
    id3: bool = False,
    title: str = "calltrack test recording",
) -> bytes:
    """``seconds`` of silence as a valid MP3 (constant bitrate, with padding bits like an encoder)."""
    frames = max(1, math.ceil(seconds * sample_rate / SAMPLES_PER_FRAME))
    out = bytearray(id3v2_tag(title) if id3 else b"")
    # Padding as an encoder does it: keep the average frame length exact.
    exact = 144 * bitrate_kbps * 1000 / sample_rate
    acc = 0.0
    for _ in range(frames):
        acc += exact - int(exact)
        padding = 1 if acc >= 1.0 else 0
        acc -= padding
        out += silent_frame(bitrate_kbps, sample_rate, channels=channels, padding=padding)
    return bytes(out)


def iter_frames(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each MPEG-1 Layer III frame after an optional ID3v2 tag; for tests."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        pos = 10 + size
    rates = {v: k for k, v in _BITRATES_KBPS.items()}
    srates = {v: k for k, v in _SAMPLE_RATES.items()}
    frames: list[tuple[int, int]] = []
    while pos + 4 <= len(data):
        b1, b2, b3 = data[pos], data[pos + 1], data[pos + 2]
        if b1 != 0xFF or (b2 & 0xFE) != 0xFA:
            raise ValueError(f"no MPEG-1 Layer III frame sync at byte {pos}")
        length = frame_length(rates[b3 >> 4], srates[(b3 >> 2) & 0x3], (b3 >> 1) & 0x1)
        if pos + length > len(data):
            raise ValueError(f"truncated frame at byte {pos}")
        frames.append((pos, length))
        pos += length
    return frames
