"""The voice webhook's kept Twilio auth token (voice_webhook.auth_token): read once, kept through
SSM failures, read again hourly and after a mismatch at most once a minute."""

from __future__ import annotations

import pytest

from voice_webhook.auth_token import RECHECK_S, REFRESH_S, AuthToken


class Ssm:
    """One parameter; ``down`` makes every read fail; counts reads."""

    def __init__(self, value: str) -> None:
        self.value, self.down, self.reads = value, False, 0

    def read(self, name: str) -> str:
        self.reads += 1
        if self.down:
            raise ConnectionError("SSM unreachable")
        return self.value


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_first_read_must_succeed_then_the_token_is_kept_through_failed_re_reads() -> None:
    ssm, clock, stale = Ssm("old"), Clock(), []
    tokens = AuthToken(ssm.read, clock, stale.append)
    # Given SSM down before any token was read: nothing to verify with
    ssm.down = True
    with pytest.raises(ConnectionError):
        tokens.get("/p")
    # When it answers once, then fails when the hourly re-read is due
    ssm.down = False
    assert tokens.get("/p") == "old"
    clock.t += 30
    assert tokens.get("/p") == "old" and ssm.reads == 2  # kept: no read within the hour
    ssm.down = True
    clock.t += REFRESH_S
    # Then the kept token still answers, the failure is reported, and SSM is asked again only a
    # minute later
    assert tokens.get("/p") == "old" and len(stale) == 1
    reads = ssm.reads
    clock.t += RECHECK_S / 2
    assert tokens.get("/p") == "old" and ssm.reads == reads
    ssm.down, ssm.value = False, "new"
    clock.t += RECHECK_S
    assert tokens.get("/p") == "new"


def test_after_a_mismatch_a_rotated_token_is_read_at_most_once_a_minute() -> None:
    ssm, clock = Ssm("old"), Clock()
    tokens = AuthToken(ssm.read, clock)
    assert tokens.get("/p") == "old"
    # A mismatch right after the read does not read again (forged requests cannot drive SSM)
    assert tokens.fresher() is None and ssm.reads == 1
    # A minute later the token was rotated: the mismatch reads it and hands it over
    ssm.value = "new"
    clock.t += RECHECK_S
    assert tokens.fresher() == "new" and tokens.get("/p") == "new"
    # the same token again is not "fresher"
    clock.t += RECHECK_S
    assert tokens.fresher() is None and ssm.reads == 3


def test_the_incoming_call_never_re_reads_and_a_failed_read_holds_ssm_off_for_a_minute() -> None:
    ssm, clock = Ssm("old"), Clock()
    tokens = AuthToken(ssm.read, clock)
    assert tokens.get("/p") == "old"
    # An incoming call an hour later still uses the kept token without asking SSM
    clock.t += REFRESH_S
    assert tokens.get("/p", refresh=False) == "old" and ssm.reads == 1
    # A callback then re-reads, and SSM is down
    ssm.down = True
    assert tokens.get("/p") == "old" and ssm.reads == 2
    # Forged requests right after (mismatches) do not ask SSM again within the minute
    for _ in range(10):
        clock.t += 1
        assert tokens.fresher() is None
    assert ssm.reads == 2


def test_a_setting_holding_the_new_and_the_old_token_signs_and_fetches_with_the_new_one() -> None:
    from twilio.request_validator import RequestValidator

    from calltrack.settings import Settings
    from calltrack.twilio_edge import auth_tokens, check_signature, sign
    from recording_ingest.runtime import credentials

    # Given the auth-token setting during a rotation: the new token, then the old one
    setting = "new-token, old-token"
    url, form = "https://calls.example.jp/twilio/voice", {"CallSid": "CA" + "1" * 32}
    # Then a signature by either token is Twilio's, and one by any other token is not
    assert auth_tokens(setting) == ["new-token", "old-token"] and auth_tokens("  ") == []
    for token, valid in (("new-token", True), ("old-token", True), ("other", False)):
        signature = RequestValidator(token).compute_signature(url, form)
        assert check_signature(setting, url, form, signature) is valid
    # And REST requests (the recording fetch) and test signatures use the new token alone
    settings = Settings.from_env({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": setting})
    assert credentials(settings).password == "new-token"
    assert sign(setting, url, form) == RequestValidator("new-token").compute_signature(url, form)
