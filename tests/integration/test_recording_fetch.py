"""fetch_mp3 against the fake Twilio media server over real HTTP on 127.0.0.1.

Basic auth goes to the API host only, redirects to another host get no credentials, faults
surface as FetchError reasons (so the queue retries), and http is refused outside local mode.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from calltrack_cli.local.fake_twilio import FakeTwilioMedia
from calltrack_cli.local.mp3 import silent_mp3
from recording_ingest.fetch import Credentials, FetchError, TwilioApi, fetch_mp3, recording_api_url

ACCOUNT = "AC" + "3" * 32
CREDS = Credentials(ACCOUNT, "media-secret")


@pytest.fixture()
def media() -> Iterator[FakeTwilioMedia]:
    with FakeTwilioMedia(credentials=[(CREDS.username, CREDS.password)], hang_seconds=3) as fake:
        yield fake


def new_recording(media: FakeTwilioMedia, body: bytes | None = None) -> tuple[str, str, bytes]:
    sid = "RE" + secrets.token_hex(16)
    data = media.add_recording(ACCOUNT, sid, body)
    return sid, recording_api_url(media.base_url, ACCOUNT, sid), data


def fetch(url: str, **kwargs: object) -> bytes:
    return fetch_mp3(url, CREDS, allow_http=True, **kwargs)  # type: ignore[arg-type]


def test_fetches_the_mp3_with_basic_auth(media: FakeTwilioMedia) -> None:
    sid, url, data = new_recording(media)
    assert fetch(url, timeout_s=5) == data
    [request] = media.fetches(sid)
    assert request.status == 200
    assert request.authorization == CREDS.header()


def test_wrong_credentials_are_a_failure_not_an_empty_recording(media: FakeTwilioMedia) -> None:
    sid, url, _ = new_recording(media)
    with pytest.raises(FetchError) as err:
        fetch_mp3(url, Credentials(ACCOUNT, "wrong"), allow_http=True, timeout_s=5)
    assert err.value.reason == "http-401"


def test_a_redirect_to_another_host_is_followed_without_the_credentials(media: FakeTwilioMedia) -> None:
    sid, url, data = new_recording(media)
    media.fail(sid, "redirect")
    assert fetch(url, timeout_s=5) == data
    [to_api] = media.fetches(sid, "api")
    [to_media_host] = media.fetches(sid, "media")
    assert to_api.authorization == CREDS.header() and to_api.status == 302
    assert to_media_host.authorization is None


def test_a_redirect_to_an_internal_address_is_refused_before_it_is_followed(media: FakeTwilioMedia) -> None:
    from calltrack.outbound import check_url, public_addresses

    # Given the API answering with a redirect to a media host on 127.0.0.1 (as deployed: internal)
    sid, url, _ = new_recording(media)
    media.fail(sid, "redirect")

    def deployed_rule(target: str) -> None:
        public_addresses(check_url(target, local_mode=False), local_mode=False)

    # When the fetch checks redirects as a deployed stack does, Then it stops there, with its reason
    with pytest.raises(FetchError) as err:
        fetch(url, timeout_s=5, check_redirect=deployed_rule)
    assert err.value.reason == "refused-redirect"
    assert media.fetches(sid, "media") == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "http-500"),
        ("503", "http-503"),
        ("404", "not-ready"),
        ("truncate", "truncated"),
        ("empty", "not-mp3"),  # a 200 with no body: refused before storing anything
        ("html", "not-mp3"),
        ("timeout", "timeout"),
    ],
)
def test_faults_are_reported_with_a_reason_and_the_next_try_succeeds(
    media: FakeTwilioMedia, fault: str, reason: str
) -> None:
    sid, url, data = new_recording(media)
    media.fail(sid, fault)
    with pytest.raises(FetchError) as err:
        fetch(url, timeout_s=1)
    assert err.value.reason in (reason, "empty")
    assert fetch(url, timeout_s=5) == data


def test_a_host_dripping_its_answer_is_cut_at_the_downloads_deadline(media: FakeTwilioMedia) -> None:
    import time

    # Given a media host that sends the whole MP3 a little every quarter second (about 10 s in all),
    # each gap well within the socket timeout
    sid, url, data = new_recording(media)
    media.fail(sid, "drip")
    # When the recording is fetched with a 1-second deadline on the whole download
    with pytest.raises(FetchError) as err:
        fetch(url, timeout_s=5, deadline_at=time.monotonic() + 1.0)
    # Then the fetch ends as a timeout (the consumer retries it with its reason) instead of running
    # on past the function's own timeout, and the next, normal try gets the file
    assert err.value.reason == "timeout"
    assert fetch(url, timeout_s=5) == data


def test_a_host_that_does_not_answer_is_given_only_what_is_left_of_the_deadline(
    media: FakeTwilioMedia,
) -> None:
    import time

    # Given a media host that takes the request and answers nothing for 3 s
    sid, url, _ = new_recording(media)
    media.fail(sid, "timeout")
    # When the recording is fetched with a 5 s socket timeout but 1 s left of the download's deadline
    with pytest.raises(FetchError) as err:
        fetch(url, timeout_s=5, deadline_at=time.monotonic() + 1.0)
    # Then the wait for the answer is cut to the deadline: a timeout, not the host's eventual hang-up
    assert err.value.reason == "timeout"
    # And a download whose deadline has passed does not start
    with pytest.raises(FetchError) as late:
        fetch(url, timeout_s=5, deadline_at=time.monotonic() - 1)
    assert late.value.reason == "timeout"


def test_the_size_cap_stops_a_too_large_body(media: FakeTwilioMedia) -> None:
    _, url, _ = new_recording(media, silent_mp3(10.0))
    with pytest.raises(FetchError) as err:
        fetch(url, timeout_s=5, max_bytes=1000)
    assert err.value.reason == "too-large"


def test_http_is_refused_outside_local_mode(media: FakeTwilioMedia) -> None:
    sid, url, _ = new_recording(media)
    with pytest.raises(FetchError) as err:
        fetch_mp3(url, CREDS, allow_http=False, timeout_s=5)
    assert err.value.reason == "insecure-url"
    assert media.fetches(sid) == []


def test_delete_removes_the_recording_at_twilio_and_is_idempotent(media: FakeTwilioMedia) -> None:
    sid, _, _ = new_recording(media)
    assert TwilioApi(media.base_url, CREDS, allow_http=True).delete_recording(ACCOUNT, sid)
    assert media.is_deleted(sid)
    assert TwilioApi(media.base_url, CREDS, allow_http=True).delete_recording(ACCOUNT, sid)  # 404 = gone
