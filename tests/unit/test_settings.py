"""Settings are read from the environment once, validated, and name the variable on error."""

from __future__ import annotations

import pytest

from calltrack import settings as settings_mod
from calltrack.settings import LOCAL_TWILIO_AUTH_TOKEN, Settings, SettingsError, get_settings, reset_settings


def test_defaults_without_any_environment():
    s = Settings.from_env({})
    assert s.twilio_auth_token == ""  # outside local mode there is no default Twilio token
    assert Settings.from_env({"CALLTRACK_LOCAL": "1"}).twilio_auth_token == LOCAL_TWILIO_AUTH_TOKEN
    assert s.twilio_api_base_url == "https://api.twilio.com"
    assert s.public_url == "http://127.0.0.1:8787"
    assert s.table_name("calls") == "calltrack-calls"
    assert s.local_mode is False
    assert s.region == "us-east-1"


def test_table_names_can_be_overridden_one_by_one_or_by_prefix():
    s = Settings.from_env({"CALLTRACK_TABLE_CALLS": "Stack-CallsTable-XYZ", "CALLTRACK_TABLE_PREFIX": "dev-"})
    assert s.table_name("calls") == "Stack-CallsTable-XYZ"
    assert s.table_name("numbers") == "dev-numbers"


def test_public_url_trailing_slash_is_dropped_and_bad_urls_name_the_variable():
    assert Settings.from_env({"CALLTRACK_PUBLIC_URL": "https://x.example/"}).public_url == "https://x.example"
    with pytest.raises(SettingsError, match="CALLTRACK_PUBLIC_URL"):
        Settings.from_env({"CALLTRACK_PUBLIC_URL": "not a url"})


def test_twilio_api_base_url_must_be_https_outside_local_mode():
    with pytest.raises(SettingsError, match="TWILIO_API_BASE_URL"):
        Settings.from_env({"TWILIO_API_BASE_URL": "http://127.0.0.1:9999"})
    local = Settings.from_env({"TWILIO_API_BASE_URL": "http://127.0.0.1:9999", "CALLTRACK_LOCAL": "1"})
    assert local.twilio_api_base_url == "http://127.0.0.1:9999"
    assert local.local_mode is True


def test_account_sid_is_validated():
    with pytest.raises(SettingsError, match="TWILIO_ACCOUNT_SID"):
        Settings.from_env({"TWILIO_ACCOUNT_SID": "nope"})


def test_region_prefers_aws_region():
    assert Settings.from_env({"AWS_REGION": "ap-northeast-1", "AWS_DEFAULT_REGION": "eu-west-1"}).region == (
        "ap-northeast-1"
    )
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"


def test_settings_are_read_once_and_cached_until_reset(monkeypatch):
    monkeypatch.setattr(settings_mod, "_current", None)
    monkeypatch.setenv("CALLTRACK_ADMIN_TOKEN", "first")
    first = get_settings()
    monkeypatch.setenv("CALLTRACK_ADMIN_TOKEN", "second")
    assert get_settings() is first
    assert get_settings().admin_token == "first"
    reset_settings()
    assert get_settings().admin_token == "second"
    reset_settings()


def test_importing_settings_does_not_read_the_environment():
    # The module keeps no Settings until get_settings() is called (no import-time reads).
    import importlib

    module = importlib.reload(settings_mod)
    assert module._current is None
