"""voice_webhook: Twilio's voice webhooks. Routing, signature check and observability only.

A tiny router over the API Gateway v2.0 event instead of the Powertools resolver (~180 ms of
import); the import path loads the Powertools Logger, the standard library and our own small
modules. boto3, twilio.twiml and twilio.request_validator load on first use, Metrics at flush.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from calltrack.observability import NAMESPACE, make_logger
from calltrack.settings import Needs
from calltrack.twilio_edge import (
    BadTwilioRequest,
    TwilioRequest,
    check_signature,
    parse_event,
    signature_params,
)
from voice_webhook import flow

SERVICE = "voice_webhook"
# What the wiring grants this function; checked at cold start (calltrack.settings.Needs).
NEEDS = Needs(
    tables=("calls", "callers", "numbers", "leases", "lease_history"),
    buckets=("routing",),
    queues=("recording", "webhook_outbox"),
    secrets=("twilio_auth_token",),
)
logger = make_logger(SERVICE)
_cache = flow.RoutingCache()
_storage: Any = None
_outbox: Any = None
_snapshot: Any = None
_token: Any = None

Route = Callable[[TwilioRequest, flow.Deps], "tuple[int, str]"]


def _recording(req: TwilioRequest, deps: flow.Deps) -> tuple[int, str]:
    """Recording status callback: logic belongs to recording_ingest (bundled with this function by
    the wiring's ``bundles``, imported lazily). Our failures answer 503 and are counted, so
    Twilio's debugger shows them; a recording is never dropped silently."""
    try:
        from calltrack.settings import get_settings
        from recording_ingest.callback import accept  # type: ignore[import-not-found,unused-ignore]

        status, body = accept(dict(req.params), get_settings())
    except Exception as exc:  # ImportError included: a packaging error must be loud, not a 200
        deps.metrics.count("WebhookFailures")
        logger.exception("recording callback failed", extra={"error": type(exc).__name__})
        return 503, flow.empty_twiml()
    return int(status), body


# Routes that answer a caller still waiting to be put through: an unexpected failure there rings
# the number's routing (cached) or the last resort, as on /twilio/voice, instead of hanging up.
FAIL_OPEN = frozenset({"/twilio/voice", "/twilio/menu", "/twilio/ring-next"})

ROUTES: dict[str, Route] = {
    "/twilio/voice": flow.voice,
    "/twilio/dial-status": flow.dial_status,
    "/twilio/call-status": flow.call_status,
    "/twilio/whisper": flow.whisper,
    "/twilio/menu": flow.menu,
    "/twilio/ring-next": flow.ring_next,
    "/twilio/voicemail-done": flow.voicemail_done,
    "/twilio/recording": _recording,
}


def _response(status: int, body: str, content_type: str = "text/xml; charset=utf-8") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type},
        "body": body,
        "isBase64Encoded": False,
    }


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    import json

    return _response(status, json.dumps({"error": code, "message": message}), "application/json")


def storage(settings: Any) -> Any:
    """The process's storage adapter (boto3 client created once, lazily)."""
    global _storage
    if _storage is None:
        from voice_webhook.dynamo import client
        from voice_webhook.store import STORAGE_TABLES, DynamoStorage

        tables = {name: settings.table_name(name) for name in STORAGE_TABLES}
        _storage = DynamoStorage(client(settings.region), tables)
    return _storage


def outbox(settings: Any) -> Any:
    """The process's durable outbox (SQS client created on the first hand-off)."""
    global _outbox
    if _outbox is None:
        from voice_webhook.outbox import SqsOutbox

        _outbox = SqsOutbox(settings.webhook_outbox_queue_url, settings.region)
    return _outbox


def snapshot(settings: Any) -> Any:
    """The process's routing-snapshot reader (S3 client created on the first read)."""
    global _snapshot
    if _snapshot is None:
        from calltrack.routing_snapshot import SnapshotReader

        _snapshot = SnapshotReader(settings.routing_bucket, settings.region)
    return _snapshot


def auth_token(settings: Any) -> Any:
    """The process's kept Twilio auth token (``voice_webhook.auth_token``: SSM read at the first
    request, hourly and after a mismatch; a failed re-read keeps the token)."""
    global _token
    if _token is None:
        import time

        from voice_webhook.auth_token import AuthToken, ssm_reader

        def stale(exc: Exception) -> None:
            logger.warning("auth token re-read failed; keeping the token read before",
                           extra={"error": type(exc).__name__})

        _token = AuthToken(ssm_reader(settings.region), time.monotonic, stale)  # the process's time
    return _token


def reset() -> None:
    """Forget process state (tests)."""
    global _storage, _outbox, _snapshot, _token
    _storage = None
    _outbox = None
    _snapshot = None
    _token = None
    _cache.rows.clear()
    from voice_webhook.dynamo import reset_client

    reset_client()


def _flush(metrics: flow.MetricSink) -> None:
    if not metrics.counts:
        return
    try:
        from aws_lambda_powertools.metrics import Metrics, MetricUnit

        emf = Metrics(namespace=NAMESPACE, service=SERVICE)
        for name, value in metrics.counts.items():
            emf.add_metric(name=name, unit=MetricUnit.Count, value=value)
        emf.flush_metrics()
    except Exception:  # metrics never break a call
        logger.warning("metrics flush failed")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from calltrack import clock
    from calltrack.settings import get_settings

    path = str(event.get("rawPath") or "")
    route = ROUTES.get(path)
    if route is None:
        return _error(404, "not_found", "no such route")
    try:
        req = parse_event(event)
    except BadTwilioRequest as exc:
        return _error(400, "bad_request", str(exc))
    if req.method != "POST":
        return _error(405, "method_not_allowed", "Twilio webhooks are POST")
    settings = get_settings(NEEDS)
    call_sid = req.params.get("CallSid", "")[:64]
    logger.set_correlation_id(call_sid or None)
    logger.append_keys(route=path)
    metrics = flow.MetricSink()
    try:
        param = settings.twilio_auth_token_param
        try:
            # the incoming call never waits on an hourly re-read (its callbacks do it)
            token = (auth_token(settings).get(param, refresh=path != "/twilio/voice") if param
                     else str(settings.twilio_auth_token))
        except Exception as exc:  # no token read yet and the secret store down: cannot verify, so
            # refuse (Twilio uses the fallback URL)
            metrics.count("WebhookFailures")
            logger.error("cannot resolve the Twilio auth token", extra={"error": type(exc).__name__})
            return _error(503, "unavailable", "signature cannot be verified right now")
        url, signed = req.url(settings.public_url), signature_params(req)
        valid = check_signature(token, url, signed, req.signature)
        if not valid and param:  # the token may have been rotated since this process read it
            fresher = auth_token(settings).fresher()
            valid = fresher is not None and check_signature(fresher, url, signed, req.signature)
        if not valid:
            metrics.count("WebhookSignatureRejected")
            logger.warning("rejected: missing or invalid X-Twilio-Signature")
            return _error(403, "forbidden", "missing or invalid X-Twilio-Signature")
        try:
            store = storage(settings)
        except Exception as exc:
            metrics.count("WebhookFailures")
            logger.warning("storage unavailable", extra={"error": type(exc).__name__})
            store = None
        deps = flow.Deps(
            public_url=settings.public_url,
            storage=store,
            metrics=metrics,
            log=logger,
            cache=_cache,
            now=clock.epoch,
            fallback_forward_to=settings.fallback_forward_to,
            outbox=outbox(settings),
            snapshot=snapshot(settings),
        )
        try:
            status, body = route(req, deps)
        except Exception as exc:  # last line of defence: a caller never hears an application error
            metrics.count("WebhookFailures")
            logger.exception("webhook failed; failing open", extra={"error": type(exc).__name__})
            if path in FAIL_OPEN and not flow.dial_answered(req.params):  # the caller waits to be put through
                return _response(200, flow.fail_open(deps, req.params))
            return _response(200, flow.empty_twiml())
        return _response(status, body)
    finally:
        _flush(metrics)
        logger.remove_keys(["route"])
