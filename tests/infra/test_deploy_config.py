"""Deployment context is validated at synth, naming the context key that is wrong."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, DeployConfig


def _from(values: dict[str, object]) -> DeployConfig:
    return DeployConfig.from_context(values.get)


def test_defaults_name_ssm_parameters_not_values():
    config = _from({})
    assert config.twilio_auth_token_param == "/calltrack/twilio-auth-token"
    assert config.admin_token_param == "/calltrack/admin-token"


def test_context_keys_are_camel_case_and_typed():
    config = _from(
        {
            "fallbackForwardTo": "+81312345678",
            "logRetentionDays": "30",
            "publicUrl": "https://calls.example.com",
        }
    )
    assert config.fallback_forward_to == "+81312345678"
    assert config.log_retention_days == 30
    assert config.public_url == "https://calls.example.com"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("fallbackForwardTo", "03-1234-5678"),
        ("twilioAccountSid", "ACnope"),
        ("publicUrl", "http://insecure.example.com"),
        ("publicUrl", "https://api.example.com/calltrack"),  # a mapping key: every route would 404
        ("logRetentionDays", "a month"),
        ("twilioAuthTokenParam", "has spaces"),
        # under /calltrack/<account>/: the account-secret grants (read, write, delete) would cover it
        ("adminTokenParam", "/calltrack/prod/admin-token"),
        ("twilioAuthTokenParam", "calltrack/prod/twilio-auth-token"),
    ],
)
def test_bad_context_is_rejected_naming_the_key(key, value):
    with pytest.raises(ConfigError) as excinfo:
        _from({key: value})
    assert key.lower()[:8] in str(excinfo.value).lower().replace("_", "")
