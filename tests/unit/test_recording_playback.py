"""Who may listen: admin and manager of the call's account, through a 5-minute presigned URL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from calltrack.auth import Principal
from calltrack.errors import Forbidden, NotFound
from recording_ingest.access import Gone, download_filename, grant

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
CALL_SID = "CA" + "a" * 32
STORED = {"status": "stored", "recording_sid": "RE" + "b" * 32, "s3_key": "recordings/acme/2026/11/x.mp3"}


def call(**overrides: Any) -> dict[str, Any]:
    base = {
        "call_sid": CALL_SID,
        "account": "acme",
        "started_at": "2026-11-24T23:30:00Z",
        "channel": "google-ads",
        "caller": "+819012345678",
        "recording": STORED,
    }
    base.update(overrides)
    return base


class Presign:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str | None]] = []

    def __call__(self, key: str, expires: int, disposition: str | None) -> str:
        self.calls.append((key, expires, disposition))
        return f"http://s3.local/{key}?sig"


def ask(principal: Principal, the_call: dict[str, Any] | None, *, download: bool = False) -> Any:
    presign = Presign()
    out = grant(
        principal, CALL_SID, the_call, timezone="Asia/Tokyo", download=download, presign=presign, now=NOW
    )
    return out, presign


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_admin_and_manager_of_the_account_get_a_url_that_lives_at_most_five_minutes(role: str) -> None:
    out, presign = ask(Principal("acme", role), call())
    assert out == {
        "url": "http://s3.local/recordings/acme/2026/11/x.mp3?sig",
        "expires_at": "2026-11-25T03:05:00Z",
    }
    [(key, expires, disposition)] = presign.calls
    assert (key, disposition) == (STORED["s3_key"], None)
    assert expires <= 300


def test_a_marketer_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        ask(Principal("acme", "marketer"), call())


def test_another_account_does_not_see_the_call() -> None:
    with pytest.raises(NotFound):
        ask(Principal("other", "admin"), call())


@pytest.mark.parametrize("recording", [None, {"status": "absent"}, {"status": "failed"}])
def test_no_stored_recording_is_a_404_with_a_reason(recording: Any) -> None:
    with pytest.raises(NotFound) as err:
        ask(Principal("acme", "manager"), call(recording=recording))
    assert "recording" in err.value.message


def test_an_expired_recording_is_gone() -> None:
    with pytest.raises(Gone) as err:
        ask(Principal("acme", "manager"), call(recording={"status": "expired", "recording_sid": "RE1"}))
    assert err.value.status == 410 and "expired" in err.value.message


def test_download_names_the_file_by_local_time_channel_and_caller_suffix() -> None:
    _, presign = ask(Principal("acme", "admin"), call(), download=True)
    # 23:30 UTC is 08:30 the next day in Tokyo
    assert presign.calls[0][2] == 'attachment; filename="20261125-0830_google-ads_5678.mp3"'


def test_the_file_name_survives_odd_channels_and_hidden_callers() -> None:
    name = download_filename(call(channel='evil"; x=/..', caller=None), "Asia/Tokyo")
    assert name.startswith("20261125-0830_evil-")
    assert '"' not in name and "/" not in name and name.endswith("_anon.mp3")
