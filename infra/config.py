"""Deployment settings, read from CDK context (``cdk deploy -c key=value`` or cdk.json).

Only parameter NAMES of secrets ever reach the template; their values live in SSM
Parameter Store (SecureString) and are read by the functions at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class ConfigError(ValueError):
    """A context value is malformed; the message names the context key."""


@dataclass(frozen=True)
class DeployConfig:
    # SSM SecureString parameter names (values are never in the template).
    twilio_auth_token_param: str = "/calltrack/twilio-auth-token"
    twilio_api_secret_param: str = "/calltrack/twilio-api-secret"
    admin_token_param: str = "/calltrack/admin-token"
    # Plain identifiers (not secrets).
    twilio_account_sid: str = ""
    twilio_api_key: str = ""
    # A custom domain in front of the API; default: the HTTP API's own endpoint.
    public_url: str = ""
    # The business number the Twilio fallback TwiML dials when our API fails (E.164).
    fallback_forward_to: str = ""
    log_retention_days: int = 90
    api_rate_limit: int = 50  # requests/s, steady state, whole stage
    api_burst_limit: int = 100
    stream_retry_attempts: int = 5
    missed_calls_alarm_per_hour: int = 10  # sum over all accounts
    api_5xx_alarm_per_5min: int = 5
    recordings_noncurrent_days: int = 30

    # context key (camelCase) -> field name
    @staticmethod
    def context_keys() -> dict[str, str]:
        def camel(name: str) -> str:
            head, *rest = name.split("_")
            return head + "".join(p.capitalize() for p in rest)

        keys = {camel(f.name): f.name for f in fields(DeployConfig)}
        keys["publicUrl"] = "public_url"
        return keys

    @classmethod
    def from_context(cls, get: Any) -> DeployConfig:
        """Build from a ``node.try_get_context``-like callable; unknown keys are ignored."""
        values: dict[str, Any] = {}
        defaults = cls()
        for key, name in cls.context_keys().items():
            raw = get(key)
            if raw is None or raw == "":
                continue
            default = getattr(defaults, name)
            if isinstance(default, int):
                try:
                    values[name] = int(raw)
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"context {key} must be an integer, got {raw!r}") from exc
            else:
                values[name] = str(raw)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        if self.fallback_forward_to and not E164.match(self.fallback_forward_to):
            raise ConfigError(
                f"context fallbackForwardTo must be E.164 (+8150...), got {self.fallback_forward_to!r}"
            )
        if self.twilio_account_sid and not re.match(r"^AC[0-9a-fA-F]{32}$", self.twilio_account_sid):
            raise ConfigError("context twilioAccountSid must be AC followed by 32 hex digits")
        if self.public_url and not self.public_url.startswith("https://"):
            raise ConfigError("context publicUrl must be an https:// URL")
        if self.public_url and urlsplit(self.public_url).path.strip("/"):
            # an API mapping key stays in the request's rawPath: every route would 404, and the
            # URL Twilio signs would not be the one the handlers rebuild
            raise ConfigError("context publicUrl must be the domain's root (https://calls.example.com), "
                              "with the API mapped at the root: no path")
        for name in ("twilio_auth_token_param", "twilio_api_secret_param", "admin_token_param"):
            value = getattr(self, name)
            if not re.match(r"^[a-zA-Z0-9_.\-/]+$", value):
                raise ConfigError(f"{name} must be an SSM parameter name")
            # /calltrack/{account}/{name} are the accounts' secrets: functions granted those
            # (conversions, webhooks: read; admin: write; privacy: delete) would reach this one
            if re.match(r"^/?calltrack/[^/]+/", value):
                raise ConfigError(
                    f"{name} {value!r} is under /calltrack/<account>/, where the accounts' secrets live: "
                    "use /calltrack/<name> or a path outside /calltrack"
                )
