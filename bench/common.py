"""Shared pieces of the benchmark: result rows, percentiles, and counting AWS requests per handler.

``RequestCounter`` patches ``botocore.httpsession.URLLib3Session.send`` (every botocore HTTP send)
and the local stack's ``Invoker.invoke``: a request is attributed to the function whose handler
sent it (a thread-local set while the handler runs), so the local pollers' own receive/get-records
calls and the benchmark's seeding calls are never counted.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, MISS, INFO = "PASS", "MISS", "INFO"


@dataclass
class Row:
    figure: str
    measured: str
    target: str = ""
    ratio: float | None = None
    status: str = INFO  # PASS / MISS / INFO (no target)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FigureResult:
    name: str  # "P1" .. "P6", "Cost"
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "rows": [r.as_dict() for r in self.rows],
            "details": self.details,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def verdict(ok: bool) -> str:
    return PASS if ok else MISS


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``samples``; 0.0 when empty."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples)) if samples else 0.0


_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value or "")


def describe_request(method: str, headers: Any, body: Any) -> tuple[str, int]:
    """(operation "service:Op", items it touches) for one botocore request.

    Operation comes from X-Amz-Target (JSON protocols: DynamoDB, SQS, Streams), the query-protocol
    ``Action=`` (SNS) or the HTTP method (S3 REST). Items: keys/items named in DynamoDB batch and
    transaction requests, the entries of an SQS batch (each one a message to bill a receive and a
    delete for), else 1.
    """
    target = _text(headers.get("X-Amz-Target"))
    auth = _text(headers.get("Authorization"))
    m = _CREDENTIAL.search(auth)
    service = m.group(1) if m else "?"
    text = _text(body) if body is not None and not hasattr(body, "read") else ""
    if target:
        op = target.rsplit(".", 1)[-1]
    else:
        action = re.search(r"(?:^|&)Action=([A-Za-z]+)", text)
        op = action.group(1) if action else method.upper()
    items = 1
    if service == "dynamodb" and text.startswith("{"):
        try:
            payload = json.loads(text)
        except ValueError:
            payload = {}
        if op == "BatchGetItem":
            items = sum(len(v.get("Keys", [])) for v in (payload.get("RequestItems") or {}).values())
        elif op == "BatchWriteItem":
            items = sum(len(v) for v in (payload.get("RequestItems") or {}).values())
        elif op in ("TransactWriteItems", "TransactGetItems"):
            items = len(payload.get("TransactItems") or [])
    if service == "sqs" and op.endswith("Batch") and text.startswith("{"):
        try:
            items = len(json.loads(text).get("Entries") or []) or 1
        except ValueError:
            pass
    return f"{service}:{op}", items


def written_tables(headers: Any, body: Any) -> Counter[str]:
    """DynamoDB table name -> items one request writes to it (a write also writes the table's
    global secondary indexes, which the cost figure bills)."""
    out: Counter[str] = Counter()
    target = _text(headers.get("X-Amz-Target"))
    op = target.rsplit(".", 1)[-1] if target.startswith("DynamoDB_") else ""
    text = _text(body) if body is not None and not hasattr(body, "read") else ""
    if op not in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"):
        return out
    try:
        payload = json.loads(text)
    except ValueError:
        return out
    if op == "BatchWriteItem":
        for table, requests in (payload.get("RequestItems") or {}).items():
            out[table] += len(requests)
    elif op == "TransactWriteItems":
        for item in payload.get("TransactItems") or []:
            for kind in ("Put", "Update", "Delete"):
                if kind in item:
                    out[str(item[kind].get("TableName"))] += 1
    elif payload.get("TableName"):
        out[str(payload["TableName"])] += 1
    return out


@dataclass
class Tally:
    invocations: int = 0
    seconds: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    records: int = 0  # SQS messages / stream records handed to the function
    table_writes: Counter[str] = field(default_factory=Counter)  # DynamoDB table -> items written

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())


class RequestCounter:
    """Counts botocore HTTP sends per function (see the module docstring). Use as a context manager."""

    def __init__(self, invoker: Any = None) -> None:
        self.invoker = invoker
        self._local = threading.local()
        self._lock = threading.Lock()
        self.tallies: dict[str, Tally] = {}
        self._saved_send: Any = None
        self._saved_invoke: Any = None

    def reset(self) -> None:
        with self._lock:
            self.tallies = {}

    def tally(self, function: str) -> Tally:
        with self._lock:
            return self.tallies.setdefault(function, Tally())

    def snapshot(self) -> dict[str, Tally]:
        with self._lock:
            return {
                k: Tally(v.invocations, list(v.seconds), Counter(v.requests), Counter(v.items), v.records,
                         Counter(v.table_writes))
                for k, v in self.tallies.items()
            }

    @contextmanager
    def attribute_to(self, function: str) -> Iterator[None]:
        """Count requests sent by this thread (e.g. a store driven directly) under ``function``."""
        previous = getattr(self._local, "function", None)
        self._local.function = function
        try:
            yield
        finally:
            self._local.function = previous

    def _record_send(self, request: Any) -> None:
        function = getattr(self._local, "function", None)
        if function is None:
            return
        op, items = describe_request(request.method, request.headers, request.body)
        writes = written_tables(request.headers, request.body)
        with self._lock:
            tally = self.tallies.setdefault(function, Tally())
            tally.requests[op] += 1
            tally.items[op] += items
            tally.table_writes.update(writes)

    def __enter__(self) -> RequestCounter:
        from botocore.httpsession import URLLib3Session

        counter = self
        original_send = URLLib3Session.send
        self._saved_send = original_send

        def send(session: Any, request: Any) -> Any:
            counter._record_send(request)
            return original_send(session, request)

        URLLib3Session.send = send
        if self.invoker is not None:
            original_invoke = self.invoker.invoke
            self._saved_invoke = original_invoke

            def invoke(function_name: str, event: Any, **kwargs: Any) -> Any:
                previous = getattr(counter._local, "function", None)
                counter._local.function = function_name
                started = time.perf_counter()
                try:
                    return original_invoke(function_name, event, **kwargs)
                finally:
                    elapsed = time.perf_counter() - started
                    counter._local.function = previous
                    with counter._lock:
                        tally = counter.tallies.setdefault(function_name, Tally())
                        tally.invocations += 1
                        tally.seconds.append(elapsed)
                        if isinstance(event, dict):
                            tally.records += len(event.get("Records") or [])

            self.invoker.invoke = invoke
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.httpsession import URLLib3Session

        URLLib3Session.send = self._saved_send
        if self.invoker is not None and self._saved_invoke is not None:
            # drop the instance attribute: the class method shows through again
            self.invoker.__dict__.pop("invoke", None)
