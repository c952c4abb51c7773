"""Start-up and port wiring for the recording functions (consumer and retention sweep)."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from calltrack.settings import Settings, get_settings
from recording_ingest.fetch import DEFAULT_TIMEOUT_S, Credentials, delete_recording, fetch_mp3

_bound: Settings | None = None
_s3: Any = None


def ensure_started() -> Settings:
    """Settings read and the models bound once per process (again if settings were reset)."""
    global _bound
    settings = get_settings()
    if _bound is not settings:
        from calltrack.models import bind_models
        from calltrack.models.accounts import Account
        from calltrack.models.calls import Call
        from calltrack.models.recordings import Recording

        bind_models(settings, [Recording, Call, Account])
        _bound = settings
    return settings


def s3_client() -> Any:
    global _s3
    if _s3 is None:
        import boto3  # type: ignore[import-untyped,unused-ignore]

        _s3 = boto3.client("s3")
    return _s3


def reset() -> None:
    global _bound, _s3
    _bound = None
    _s3 = None


def now() -> datetime:
    from calltrack import clock

    return clock.now()


def fetch_timeout_s() -> float:
    return float(os.environ.get("CALLTRACK_RECORDING_FETCH_TIMEOUT_S") or DEFAULT_TIMEOUT_S)


def credentials(settings: Settings) -> Credentials:
    """Basic credentials: API key + secret (secret from SSM/Secrets Manager when deployed),
    else account SID + auth token."""
    if settings.twilio_api_key:
        secret = settings.twilio_api_secret
        if not secret and settings.twilio_api_secret_param:
            secret = _parameter(settings.twilio_api_secret_param)
        return Credentials(settings.twilio_api_key, secret)
    token = settings.twilio_auth_token
    if settings.twilio_auth_token_param:
        token = _parameter(settings.twilio_auth_token_param)
    return Credentials(settings.twilio_account_sid, token)


def _parameter(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    if name.startswith(("arn:aws:secretsmanager:", "secret:")):
        return str(parameters.get_secret(name.removeprefix("secret:"), max_age=300))
    return str(parameters.get_parameter(name, decrypt=True, max_age=300))


def build_ports(settings: Settings, on_failure: Any) -> Any:
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from recording_ingest.ingest import Ports
    from recording_ingest.store import DynamoRecordings, S3Objects

    creds = credentials(settings)
    timeout = fetch_timeout_s()
    allow_http = settings.local_mode  # settings already refuse an http base outside local mode

    def fetch(url: str) -> bytes:
        return fetch_mp3(url, creds, allow_http=allow_http, timeout_s=timeout)

    def delete_at_twilio(account_sid: str, recording_sid: str) -> bool:
        return delete_recording(
            settings.twilio_api_base_url,
            account_sid,
            recording_sid,
            creds,
            allow_http=allow_http,
            timeout_s=timeout,
        )

    accounts = account_reader()

    def delete_from_twilio_for(account: str) -> bool:
        config = accounts.find(account)
        return config is not None and config.recording.delete_from_twilio

    return Ports(
        recordings=DynamoRecordings(),
        calls=call_items(),
        objects=S3Objects(settings.recordings_bucket, client=s3_client()),
        fetch=fetch,
        delete_at_twilio=delete_at_twilio,
        delete_from_twilio_for=delete_from_twilio_for,
        api_base_url=settings.twilio_api_base_url,
        twilio_account_sid=settings.twilio_account_sid,
        now=now,
        on_failure=on_failure,
    )
