"""One validated settings model, read from the environment at start-up (never at import).

Every function and the local runtime call ``get_settings()`` inside the handler (first
invocation) or at start-up; tests call ``reset_settings()`` after changing the environment.
A dataclass rather than pydantic keeps the webhook's import path cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

# Documented local default for TWILIO_AUTH_TOKEN (the local stack signs and checks with it).
LOCAL_TWILIO_AUTH_TOKEN = "calltrack-local-twilio-auth-token"
LOCAL_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_TABLE_PREFIX = "calltrack-"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


# The environment variable that names each kind of granted resource (the CDK stack sets exactly
# these for what a function's wiring grants; the local runtime sets them all).
SECRET_ENV = {
    "twilio_auth_token": "TWILIO_AUTH_TOKEN_PARAM",
    "twilio_api_secret": "TWILIO_API_SECRET_PARAM",
    "admin_token": "CALLTRACK_ADMIN_TOKEN_PARAM",
}
BUCKET_ENV = {
    "recordings": "CALLTRACK_RECORDINGS_BUCKET",
    "exports": "CALLTRACK_EXPORTS_BUCKET",
    "routing": "CALLTRACK_ROUTING_BUCKET",
}
OPS_TOPIC_ENV = "CALLTRACK_OPS_TOPIC_ARN"


def table_env(logical: str) -> str:
    return f"CALLTRACK_TABLE_{logical.upper()}"


def queue_env(name: str) -> str:
    return f"CALLTRACK_{name.upper()}_QUEUE_URL"


def dlq_env(name: str) -> str:
    """The dead-letter queue of wiring queue ``name`` (granted to a function that redrives it)."""
    return f"CALLTRACK_{name.upper()}_DLQ_URL"


def stream_failures_env(consumer: str) -> str:
    """The queue where Lambda records the stream batches ``consumer`` gave up on (it replays them)."""
    return f"CALLTRACK_{consumer.upper()}_STREAM_FAILURES_URL"


def bucket_env(name: str) -> str:
    return BUCKET_ENV.get(name, f"CALLTRACK_{name.upper()}_BUCKET")


@dataclass(frozen=True)
class Needs:
    """What one Lambda uses: declared beside its handler, equal to its wiring's grants (an infra
    test compares them), checked at cold start so a missing variable fails naming it instead of
    falling back to a ``calltrack-<name>`` default that does not exist in the deployed stack."""

    tables: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    ops_topic: bool = False
    dead_letter_queues: tuple[str, ...] = ()  # queues whose DLQ it receives from (redrive: and deletes in)
    # Account secrets in SSM (calltrack.account_secrets): "" none, "read", "write" (admin) or
    # "erase" (privacy: account deletion).
    # No variable names them: the path /calltrack/{account}/{name} is the product's contract.
    account_secrets: str = ""
    # The console's Cognito user pool (issue 23): "" none, "admin" (create, list and disable users,
    # their groups; sign them in). Its id is the variable CALLTRACK_COGNITO_USER_POOL_ID.
    user_pool: str = ""
    # A calls-stream consumer: the stream consumer whose failures queue it replays (receive, delete).
    stream_failures: str = ""

    def env_vars(self) -> list[str]:
        return [
            *(table_env(t) for t in self.tables),
            *(bucket_env(b) for b in self.buckets),
            *(queue_env(q) for q in self.queues),
            *(dlq_env(q) for q in self.dead_letter_queues),
            *(SECRET_ENV[s] for s in self.secrets),
            *([OPS_TOPIC_ENV] if self.ops_topic else []),
            *([COGNITO_POOL_ENV, COGNITO_CLIENT_ENV] if self.user_pool else []),
            *([stream_failures_env(self.stream_failures)] if self.stream_failures else []),
        ]

    def missing(self, env: Mapping[str, str]) -> list[str]:
        return [name for name in self.env_vars() if not env.get(name)]


def _url(name: str, value: str, *, allow_empty: bool = False) -> str:
    if not value and allow_empty:
        return value
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _endpoint(name: str, value: str, local_mode: bool) -> str:
    """An ad platform's base URL: https, or (local mode only) http to 127.0.0.1 for the local fakes."""
    url = _url(name, value)
    parsed = urlparse(url)
    if parsed.scheme == "https":
        return url
    if local_mode and parsed.hostname in ("127.0.0.1", "localhost"):
        return url
    raise SettingsError(f"{name} must be https (http only to 127.0.0.1 in local mode), got {value!r}")


KINTONE_ENV, HUBSPOT_ENV = "CALLTRACK_KINTONE_BASE_URL", "CALLTRACK_HUBSPOT_API_BASE_URL"  # CRM push
# Console sign-in (issue 23): set by the stack on every function; the JWKS URL only locally.
COGNITO_POOL_ENV = "CALLTRACK_COGNITO_USER_POOL_ID"
COGNITO_CLIENT_ENV = "CALLTRACK_COGNITO_CLIENT_ID"
COGNITO_JWKS_ENV = "CALLTRACK_COGNITO_JWKS_URL"

# Ad platform endpoints (issue 16, conversions); tests point them at the local fakes.
AD_ENDPOINT_DEFAULTS = {
    "GOOGLE_ADS_API_BASE_URL": "https://googleads.googleapis.com",
    "GOOGLE_OAUTH_TOKEN_URL": "https://oauth2.googleapis.com/token",
    "META_GRAPH_BASE_URL": "https://graph.facebook.com",
    "GA4_MP_BASE_URL": "https://www.google-analytics.com",
}


def _number(name: str, value: str, low: float, high: float, unit: str = "") -> float:
    """A number in (low, high] from the environment; the error names the variable."""
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number{unit}, got {value!r}") from None
    if not low < number <= high:
        raise SettingsError(f"{name} must be > {low:g} and <= {high:g}{unit}, got {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    twilio_auth_token: str = LOCAL_TWILIO_AUTH_TOKEN
    twilio_account_sid: str = LOCAL_TWILIO_ACCOUNT_SID
    # Credentials for fetching recordings (API key + secret, or account SID + auth token).
    twilio_api_key: str = ""
    twilio_api_secret: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    public_url: str = "http://127.0.0.1:8787"
    admin_token: str = ""
    # Names of SSM/Secrets Manager parameters holding secrets in the deployed stack.
    twilio_auth_token_param: str = ""
    twilio_api_secret_param: str = ""
    admin_token_param: str = ""
    table_prefix: str = DEFAULT_TABLE_PREFIX
    table_overrides: Mapping[str, str] = field(default_factory=dict)
    recordings_bucket: str = "calltrack-recordings"
    exports_bucket: str = "calltrack-exports"
    routing_bucket: str = "calltrack-routing"
    recording_queue_url: str = ""
    recording_dlq_url: str = ""
    webhooks_dlq_url: str = ""
    webhook_outbox_queue_url: str = ""
    ops_topic_arn: str = ""
    local_mode: bool = False
    region: str = "us-east-1"
    # Last-resort business number for a cold webhook process with storage down.
    fallback_forward_to: str = ""
    recording_fetch_timeout_s: float = 20.0
    # Local runtime only: retry delays a handler sets on a queue message (recording backoff,
    # 1 min .. 12 h) are multiplied by this (tests: 0.00002). Deployed, SQS keeps real time.
    retry_time_scale: float = 1.0
    # The recordings bucket's object encryption (set by the stack: aws:kms + the key's id).
    recordings_sse: str = ""
    recordings_kms_key_id: str = ""
    # Ad platform endpoints (conversions): https; http to 127.0.0.1 only in local mode.
    google_ads_api_base_url: str = AD_ENDPOINT_DEFAULTS["GOOGLE_ADS_API_BASE_URL"]
    google_oauth_token_url: str = AD_ENDPOINT_DEFAULTS["GOOGLE_OAUTH_TOKEN_URL"]
    meta_graph_base_url: str = AD_ENDPOINT_DEFAULTS["META_GRAPH_BASE_URL"]
    ga4_mp_base_url: str = AD_ENDPOINT_DEFAULTS["GA4_MP_BASE_URL"]
    # CRM push (functions/webhooks): kintone's base URL ("" = https://{crm_push.kintone.domain}
    # from the account config; set for a local fake) and HubSpot's API base URL.
    kintone_base_url: str = ""
    hubspot_api_base_url: str = "https://api.hubapi.com"
    # Console sign-in (calltrack.cognito): the user pool and its app client; "" = no console users.
    # The pool's keys come from Cognito (https), or locally from the emulator (http to 127.0.0.1).
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    cognito_jwks_url: str = ""

    def table_name(self, logical: str) -> str:
        """Physical table name for a logical table ('calls', 'numbers', ...)."""
        return self.table_overrides.get(logical, f"{self.table_prefix}{logical}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        overrides = {
            key[len("CALLTRACK_TABLE_") :].lower(): value
            for key, value in env.items()
            if key.startswith("CALLTRACK_TABLE_") and key != "CALLTRACK_TABLE_PREFIX" and value
        }
        local_mode = env.get("CALLTRACK_LOCAL", "").lower() in ("1", "true", "yes")
        base = _url("TWILIO_API_BASE_URL", env.get("TWILIO_API_BASE_URL", "https://api.twilio.com"))
        if not local_mode and not base.startswith("https://"):
            raise SettingsError("TWILIO_API_BASE_URL must be https outside local mode")
        sid = env.get("TWILIO_ACCOUNT_SID", LOCAL_TWILIO_ACCOUNT_SID)
        if not (sid.startswith("AC") and len(sid) == 34):
            raise SettingsError("TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits")
        return cls(
            # The documented local token is a default only locally: deployed, the token comes from
            # TWILIO_AUTH_TOKEN_PARAM, and an empty one fails every signature check (fail closed).
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", LOCAL_TWILIO_AUTH_TOKEN if local_mode else ""),
            twilio_account_sid=sid,
            twilio_api_key=env.get("TWILIO_API_KEY", ""),
            twilio_api_secret=env.get("TWILIO_API_SECRET", ""),
            twilio_api_base_url=base,
            public_url=_url("CALLTRACK_PUBLIC_URL", env.get("CALLTRACK_PUBLIC_URL", "http://127.0.0.1:8787")),
            admin_token=env.get("CALLTRACK_ADMIN_TOKEN", ""),
            twilio_auth_token_param=env.get("TWILIO_AUTH_TOKEN_PARAM", ""),
            twilio_api_secret_param=env.get("TWILIO_API_SECRET_PARAM", ""),
            admin_token_param=env.get("CALLTRACK_ADMIN_TOKEN_PARAM", ""),
            table_prefix=env.get("CALLTRACK_TABLE_PREFIX", DEFAULT_TABLE_PREFIX),
            table_overrides=overrides,
            recordings_bucket=env.get("CALLTRACK_RECORDINGS_BUCKET", "calltrack-recordings"),
            exports_bucket=env.get("CALLTRACK_EXPORTS_BUCKET", "calltrack-exports"),
            routing_bucket=env.get("CALLTRACK_ROUTING_BUCKET", "calltrack-routing"),
            recording_queue_url=env.get("CALLTRACK_RECORDING_QUEUE_URL", ""),
            recording_dlq_url=env.get(dlq_env("recording"), ""),
            webhooks_dlq_url=env.get(dlq_env("webhooks"), ""),
            webhook_outbox_queue_url=env.get(queue_env("webhook_outbox"), ""),
            ops_topic_arn=env.get("CALLTRACK_OPS_TOPIC_ARN", ""),
            local_mode=local_mode,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            fallback_forward_to=env.get("CALLTRACK_FALLBACK_FORWARD_TO", "").strip(),
            recording_fetch_timeout_s=_number("CALLTRACK_RECORDING_FETCH_TIMEOUT_S",
                                              env.get("CALLTRACK_RECORDING_FETCH_TIMEOUT_S") or "20", 0, 900,
                                              " of seconds"),
            retry_time_scale=_number(
                "CALLTRACK_RETRY_TIME_SCALE", env.get("CALLTRACK_RETRY_TIME_SCALE") or "1", 0, 1
            ),
            recordings_sse=env.get("CALLTRACK_RECORDINGS_SSE", ""),
            recordings_kms_key_id=env.get("CALLTRACK_RECORDINGS_KMS_KEY_ID", ""),
            **{
                name.lower(): _endpoint(name, env.get(name) or default, local_mode)
                for name, default in AD_ENDPOINT_DEFAULTS.items()
            },
            # CRM push (webhooks): "" = each account's https://{crm_push.kintone.domain}
            kintone_base_url=(_endpoint(KINTONE_ENV, env[KINTONE_ENV], local_mode)
                              if env.get(KINTONE_ENV) else ""),
            hubspot_api_base_url=_endpoint(HUBSPOT_ENV, env.get(HUBSPOT_ENV) or "https://api.hubapi.com",
                                           local_mode),
            cognito_user_pool_id=env.get(COGNITO_POOL_ENV, "").strip(),
            cognito_client_id=env.get(COGNITO_CLIENT_ENV, "").strip(),
            cognito_jwks_url=(_endpoint(COGNITO_JWKS_ENV, env[COGNITO_JWKS_ENV], local_mode)
                              if env.get(COGNITO_JWKS_ENV) else ""),
        )


_current: Settings | None = None


def check_needs(settings: Settings, needs: Needs, env: Mapping[str, str]) -> None:
    """Outside local mode, every variable that names a resource in ``needs`` must be set; in local
    mode the ``calltrack-<name>`` defaults are the local stack's real names."""
    if settings.local_mode:
        return
    missing = needs.missing(env)
    if missing:
        raise SettingsError(
            f"{missing[0]} is not set: this function is granted the resource it names "
            f"(missing: {', '.join(missing)}); the stack sets it, or set it by hand"
        )


def get_settings(needs: Needs | None = None) -> Settings:
    """The process's settings, read and validated on first use (start-up / first invocation).

    A function's composition root passes its ``needs`` (see ``check_needs``).
    """
    global _current
    if _current is None:
        _current = Settings.from_env()
    if needs is not None:
        check_needs(_current, needs, os.environ)
    return _current


def reset_settings() -> None:
    """Forget the cached settings (tests, and the local runtime after it sets the environment)."""
    global _current
    _current = None
