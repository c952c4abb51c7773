"""Logger / Metrics / Tracer factories with caller-number redaction.

Every log line is JSON (Powertools) with a correlation id; anything that looks like a phone
number is masked in the serialised line, so a careless ``logger.info(form)`` cannot leak
caller numbers.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

NAMESPACE = "calltrack"
# A phone number in the spellings a log line may carry: E.164 (+81...), the same URL-encoded as a
# Twilio form body has it (%2B81...), international with spaces or hyphens (+81 90-1234-5678),
# national (0312345678) and national with hyphens (090-1234-5678). Hyphen-joined digits inside ids
# (UUIDs) are left alone.
_PHONE = re.compile(
    r"(?:(?<![\w.])\+|%2[Bb])\d{7,15}(?!\w)"
    r"|(?<![\w.])\+\d{1,3}(?:[ -]\d{1,4}){2,4}(?![\w-])"  # +81 90-1234-5678, +1 415 555 0123
    r"|(?<![\w.])0\d{9,10}(?!\w)"
    r"|(?<![\w.-])0\d{1,4}-\d{1,4}-\d{4}(?![\w-])"
)


def _mask(number: str) -> str:
    keep = 5 if number[:3] in ("%2B", "%2b") else 3
    return number[:keep] + "*" * max(0, len(number) - keep - 4) + number[-4:]


def redact_phone_numbers(text: str) -> str:
    return _PHONE.sub(lambda m: _mask(m.group(0)), text)


def _serialize(obj: Any) -> str:
    return redact_phone_numbers(json.dumps(obj, default=str, ensure_ascii=False, separators=(",", ":")))


def make_logger(service: str) -> Logger:
    return Logger(service=service, json_serializer=_serialize)


def make_metrics(service: str) -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=NAMESPACE, service=service)


def make_tracer(service: str) -> Tracer:
    """A Powertools Tracer for a handler module (create it at import, decorate the handler with
    ``@tracer.capture_lambda_handler``). Importing it costs ~0.3 s (aws_xray_sdk), so the voice
    webhook, whose cold start a caller waits on, is not traced.

    Reads no settings: in Lambda it traces (the functions have X-Ray active tracing, and
    POWERTOOLS_TRACER_CAPTURE_RESPONSE/ERROR=false keep caller numbers out of the trace metadata);
    outside Lambda, or with POWERTOOLS_TRACE_DISABLED=true (the local stack sets it), it is a no-op.
    """
    from aws_lambda_powertools import Tracer

    return Tracer(service=service)
