"""The recording functions' composition root: settings, ports and adapters for the queue consumer
(``INGEST_NEEDS``), the retention sweep (``RETENTION_NEEDS``) and the reconciliation against
Twilio's Recordings API (``RECONCILE_NEEDS``), built on the first invocation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calltrack.settings import Needs, Settings
from recording_ingest.fetch import Credentials, TwilioApi, fetch_mp3

_s3: Any = None

INGEST_NEEDS = Needs(
    tables=("calls", "recordings", "accounts"),
    buckets=("recordings",),
    secrets=("twilio_api_secret", "twilio_auth_token"),
)
RETENTION_NEEDS = Needs(tables=("calls", "recordings", "accounts"), buckets=("recordings",))
RECONCILE_NEEDS = Needs(
    tables=("calls", "accounts"),
    queues=("recording",),
    secrets=("twilio_api_secret", "twilio_auth_token"),
)


def ensure_started(needs: Needs) -> Settings:
    """Settings read and checked, the recordings model bound, once per process."""
    from calltrack.models import start
    from calltrack.models.recordings import Recording

    return start(needs, [Recording])


def objects(settings: Settings) -> Any:
    """The recordings bucket with the stack's object encryption."""
    from recording_ingest.store import S3Objects

    return S3Objects(settings.recordings_bucket, client=s3_client(), sse=settings.recordings_sse,
                     kms_key_id=settings.recordings_kms_key_id)


def s3_client() -> Any:
    global _s3
    if _s3 is None:
        import boto3  # type: ignore[import-untyped,unused-ignore]

        _s3 = boto3.client("s3")
    return _s3


_sqs: Any = None


def sqs_client() -> Any:
    global _sqs
    if _sqs is None:
        import boto3  # type: ignore[import-untyped,unused-ignore]

        _sqs = boto3.client("sqs")
    return _sqs


def defer(queue_arn: str, receipt_handle: str, delay_s: int) -> None:
    """Deliver this received message again in ``delay_s`` seconds (calltrack.queue_retry)."""
    from calltrack.queue_retry import defer as set_visibility

    set_visibility(sqs_client(), queue_arn, receipt_handle, delay_s)


def reset() -> None:
    global _s3, _sqs
    _s3 = None
    _sqs = None


def now() -> datetime:
    from calltrack import clock

    return clock.now()




def credentials(settings: Settings) -> Credentials:
    """Basic credentials: API key + secret (secret from SSM/Secrets Manager when deployed),
    else account SID + auth token."""
    if settings.twilio_api_key:
        secret = settings.twilio_api_secret
        if not secret and settings.twilio_api_secret_param:
            secret = _parameter(settings.twilio_api_secret_param)
        return Credentials(settings.twilio_api_key, secret)
    from calltrack.twilio_edge import rest_auth_token

    token = settings.twilio_auth_token
    if settings.twilio_auth_token_param:
        token = _parameter(settings.twilio_auth_token_param)
    return Credentials(settings.twilio_account_sid, rest_auth_token(token))


def _parameter(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    if name.startswith(("arn:aws:secretsmanager:", "secret:")):
        return str(parameters.get_secret(name.removeprefix("secret:"), max_age=300))
    return str(parameters.get_parameter(name, decrypt=True, max_age=300))


def build_ports(settings: Settings, on_failure: Any, fetch_deadline_at: float | None = None) -> Any:
    """The ingest's ports; ``fetch_deadline_at`` (``time.monotonic()``) ends an MP3 download that
    would outlast the invocation (the record is then retried with its reason, not lost with the batch)."""
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from recording_ingest.ingest import Ports
    from recording_ingest.store import DynamoRecordings

    creds = credentials(settings)
    timeout = settings.recording_fetch_timeout_s
    allow_http = settings.local_mode  # settings already refuse an http base outside local mode

    def public_only(url: str) -> None:  # a redirect's target (Twilio's media host): never internal
        from calltrack.outbound import check_url, public_addresses

        public_addresses(check_url(url, local_mode=settings.local_mode), local_mode=settings.local_mode)

    def fetch(url: str) -> bytes:
        return fetch_mp3(url, creds, allow_http=allow_http, timeout_s=timeout, deadline_at=fetch_deadline_at,
                         check_redirect=public_only)

    api = TwilioApi(settings.twilio_api_base_url, creds, allow_http=allow_http, timeout_s=timeout)

    accounts = account_reader()

    def delete_from_twilio_for(account: str) -> bool:
        config = accounts.find(account)
        return config is not None and config.recording.delete_from_twilio

    return Ports(
        recordings=DynamoRecordings(),
        calls=call_items(),
        objects=objects(settings),
        fetch=fetch,
        delete_at_twilio=api.delete_recording,
        delete_from_twilio_for=delete_from_twilio_for,
        api_base_url=settings.twilio_api_base_url,
        twilio_account_sid=settings.twilio_account_sid,
        now=now,
        on_failure=on_failure,
    )
