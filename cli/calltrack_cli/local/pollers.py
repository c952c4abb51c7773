"""Background pollers: DynamoDB stream records and SQS messages -> the consumers' real handlers.

They behave like Lambda event source mappings: batches of real-shaped events, partial batch
responses (``{"batchItemFailures": [{"itemIdentifier": ...}]}``) honoured, failed SQS messages
retried after a short local delay (or, when the handler set the message's visibility itself with
ChangeMessageVisibility — the recording backoff — after that delay times the
``CALLTRACK_RETRY_TIME_SCALE`` setting) and moved to the DLQ by the queue's redrive policy, failed
stream batches retried from the lowest failed sequence number a few times, after which Lambda's
on-failure record (``DDBStreamBatchInfo``: where the skipped records were) goes to the consumer's
stream-failures queue and the records are skipped: the rest of the batch, or — for a consumer whose
mapping bisects batches — that one record (bisecting isolates it).

A stream poller's ``poll_once()`` is guarded by a lock, so ``LocalStack.drain()`` can call it from
another thread while the background loop runs, without ever processing a record twice. A queue
poller handles batches without a lock (a received message is invisible to every other receiver),
but it receives one receive at a time: the emulator's ReceiveMessage is not atomic, and two at once
on one queue could both take a message, or leave one in flight for its whole visibility timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from typing import Any

from calltrack_cli.local.events import dynamodb_stream_event, sqs_event
from calltrack_cli.local.invoker import Invoker
from infra.wiring import Queue, StreamConsumer

log = logging.getLogger("calltrack.local")

LOCAL_RETRY_DELAY_S = 1  # a failed SQS message is visible again after this (AWS: the visibility timeout)
# A message its handler put off for longer than this (a transcription watch's 15 minutes at real
# time) is work scheduled for later, not pending work: drain does not wait for it.
SCHEDULED_AFTER_S = 30.0
# A message in flight that no poller of this process is handling or has deferred, received more than
# this long ago, is an orphan (its receiver stopped or failed between receive and answer): in AWS it
# would come back after its visibility timeout; locally it is made visible now, with a warning. The
# same holds for a message seen in flight, unclaimed, for this long with an unchanged visibility,
# whatever its visibility says (a receiver that set it hours ahead and went away).
ORPHAN_AFTER_S = 5.0
# A receive still under way after this long lost its answer (receives wait at most 1 s): messages it
# may have taken are no longer waited for.
RECEIVE_LOST_AFTER_S = 30.0
STREAM_MAX_RETRIES = 3  # like an event source mapping's MaximumRetryAttempts


def _moto_queue(queue_url: str) -> Any:
    """The in-process emulator's record of a queue (moto runs in this process), or None."""
    try:
        from moto.sqs.models import sqs_backends
    except ImportError:  # pragma: no cover - moto is a dev dependency of the local runtime
        return None
    from calltrack_cli.local.events import ACCOUNT_ID, REGION

    return sqs_backends[ACCOUNT_ID][REGION].queues.get(queue_url.rstrip("/").rsplit("/", 1)[-1])


def _moto_message(queue_url: str, message_id: str) -> Any:
    """The in-process emulator's record of a message, or None."""
    queue = _moto_queue(queue_url)
    if queue is None:
        return None
    return next((m for m in list(queue._messages) if m.id == message_id), None)


def retry_after_failure(queue_url: str, message_id: str, received_at_ms: float, visibility_s: int,
                        scale: float) -> float | None:
    """Seconds until a failed message is visible again: the handler's own delay (it changed the
    visibility it was received with) times ``scale``, applied to the emulator's message; None when
    the handler left the visibility alone (the poller then applies its short local delay)."""
    import math

    msg = _moto_message(queue_url, message_id)
    if msg is None:
        return None
    now_ms = time.time() * 1000
    expected = received_at_ms + visibility_s * 1000
    if abs(float(msg.visible_at) - expected) < 2000:
        return None
    remaining_ms = max(0.0, float(msg.visible_at) - now_ms)
    delay_ms = remaining_ms * scale
    msg.visible_at = now_ms + delay_ms
    return math.ceil(delay_ms) / 1000


def _failed_ids(result: Any) -> list[str] | None:
    """Item identifiers from a partial batch response, or None when the whole batch succeeded."""
    if isinstance(result, dict) and result.get("batchItemFailures"):
        return [str(f.get("itemIdentifier")) for f in result["batchItemFailures"]]
    return None


class Poller:
    name = "poller"
    # Stream pollers share shard iterators between the background loop and drain(), so they
    # serialise; queue pollers need no lock (a received message is invisible to other receivers).
    serialised = True

    def __init__(self, invoker: Invoker, interval_s: float = 0.5) -> None:
        self.invoker = invoker
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._last_logged_failure: str | None = None  # the background loop's, until a poll succeeds

    def poll_once(self, wait: bool = False) -> int:
        """Process at most one batch per source; return how many records were handed to a handler.

        ``wait`` lets a queue poller long-poll (the background loop); drain never waits.
        """
        if not self.serialised:
            return self._poll_guarded(wait)
        with self._lock:
            return self._poll_guarded(wait)

    def _poll_guarded(self, wait: bool) -> int:
        try:
            count = self._poll(wait)
        except Exception as exc:  # emulator down, transient errors: report and keep going
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.debug("%s: %s", self.name, self.last_error)
            raise
        self.last_error = None
        return count

    def pending(self) -> bool:
        """True while the source still holds work (messages in flight, records unread)."""
        return False

    def begin_drain(self) -> None:
        """A drain polls this source from now on (``wait_idle``); see ``QueuePoller``."""

    def end_drain(self) -> None:
        """The drain that began is over."""

    def _poll(self, wait: bool) -> int:
        raise NotImplementedError

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"calltrack-{self.name}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                count = self.poll_once(wait=True)
            except Exception as exc:  # said once per failure in a row; the loop keeps going
                count = 0
                failure = f"{type(exc).__name__}: {exc}"
                if failure != self._last_logged_failure:
                    log.warning("%s: poll failed, trying again: %s", self.name, failure)
                    self._last_logged_failure = failure
                self._stop.wait(1.0)
            else:
                self._last_logged_failure = None
            if count == 0:
                self._stop.wait(self.interval_s)


def _forget_shard_iterators(issued: list[str]) -> None:
    """Drop the shard iterators this poller had the in-process moto issue.

    moto keeps every iterator ever issued, and each pins the stream shard — and through it the
    table — it was made from, so they pile up. The poller asks for a fresh iterator on every
    poll; it forgets only its own, since tests may read the stream with theirs at the same time.
    """
    try:
        from moto.dynamodbstreams.models import dynamodbstreams_backends
    except ImportError:  # pragma: no cover - moto is a dev dependency of the local runtime
        return
    from calltrack_cli.local.events import ACCOUNT_ID, REGION

    iterators = dynamodbstreams_backends[ACCOUNT_ID][REGION].shard_iterators
    for arn in issued:
        iterators.pop(arn, None)


class StreamPoller(Poller):
    """Reads a table's stream like an event source mapping.

    It remembers *positions* (shard id -> where to read next), not shard iterators, and asks
    for a fresh iterator on every poll: moto swaps a table (and its stream shard) for a deep
    copy whenever a transaction is cancelled, so an iterator held across polls can point at a
    shard that no longer receives records. AWS iterators also expire after 15 minutes.
    """

    def __init__(
        self, invoker: Invoker, consumer: StreamConsumer, table_name: str, client_factory: Any,
        failures_url: str = "",
    ) -> None:
        super().__init__(invoker)
        self.consumer = consumer
        self.failures_url = failures_url  # Lambda's on-failure destination (SqsDlq)
        self.table_name = table_name
        self.name = f"stream-{consumer.table}-{consumer.consumer}"
        self._client_factory = client_factory
        self._stream_arn: str | None = None
        # shard id -> (iterator type, sequence number) of the next read
        self._positions: dict[str, tuple[str, str | None]] = {}
        self._retries: dict[str, int] = {}
        self._behind = False

    def _clients(self) -> tuple[Any, Any]:
        return self._client_factory("dynamodb"), self._client_factory("dynamodbstreams")

    def _discover(self, ddb: Any, streams: Any) -> None:
        if self._stream_arn is None:
            table = ddb.describe_table(TableName=self.table_name)["Table"]
            self._stream_arn = table.get("LatestStreamArn")
            if not self._stream_arn:
                raise RuntimeError(f"table {self.table_name} has no stream")
        desc = streams.describe_stream(StreamArn=self._stream_arn)["StreamDescription"]
        for shard in desc.get("Shards", []):
            self._positions.setdefault(shard["ShardId"], ("TRIM_HORIZON", None))

    def _iterator(self, streams: Any, shard_id: str) -> str:
        kind, seq = self._positions[shard_id]
        args: dict[str, Any] = {"StreamArn": self._stream_arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if seq is not None:
            args["SequenceNumber"] = seq
        return str(streams.get_shard_iterator(**args)["ShardIterator"])

    def _poll(self, wait: bool) -> int:
        ddb, streams = self._clients()
        self._discover(ddb, streams)
        assert self._stream_arn is not None
        total = 0
        behind = False
        issued: list[str] = []
        for shard_id in list(self._positions):
            iterator = self._iterator(streams, shard_id)
            resp = streams.get_records(ShardIterator=iterator, Limit=self.consumer.batch_size)
            issued += [iterator, str(resp.get("NextShardIterator") or "")]
            records = resp.get("Records", [])
            if not records:
                continue
            total += len(records)
            failed_seq = self._deliver(records)
            if failed_seq is None:
                last = str(records[-1]["dynamodb"]["SequenceNumber"])
                self._positions[shard_id] = ("AFTER_SEQUENCE_NUMBER", last)
                self._retries.pop(shard_id, None)
                behind = behind or len(records) >= self.consumer.batch_size
                continue
            attempts = self._retries.get(shard_id, 0) + 1
            if attempts > STREAM_MAX_RETRIES:
                # Like MaximumRetryAttempts: the records from the failed one to the batch's end are
                # skipped (with BisectBatchOnFunctionError, only the failed record) and their place
                # is recorded in the on-failure destination.
                seqs = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
                skipped = [failed_seq] if self.consumer.bisect_on_error else seqs[seqs.index(failed_seq):]
                log.error(
                    "stream %s: consumer %s gave up on %d record(s) from %s after %d retries",
                    self.consumer.table,
                    self.consumer.consumer,
                    len(skipped),
                    failed_seq,
                    STREAM_MAX_RETRIES,
                )
                self._record_failure(shard_id, skipped, attempts)
                self._retries.pop(shard_id, None)
                self._positions[shard_id] = ("AFTER_SEQUENCE_NUMBER", skipped[-1])
            else:
                self._retries[shard_id] = attempts
                self._positions[shard_id] = ("AT_SEQUENCE_NUMBER", failed_seq)
            behind = True
        self._behind = behind
        _forget_shard_iterators(issued)
        return total

    def _record_failure(self, shard_id: str, seqs: list[str], attempts: int) -> None:
        """Lambda's on-failure record of skipped stream records (AWS Lambda Developer Guide,
        "Retaining discarded records for a DynamoDB event source")."""
        if not self.failures_url:
            return
        from calltrack_cli.local.events import ACCOUNT_ID, REGION

        body = {
            "requestContext": {
                "requestId": f"local-{shard_id}-{seqs[0]}",
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.consumer.consumer}",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": ""},
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": seqs[0],
                "endSequenceNumber": seqs[-1],
                "batchSize": len(seqs),
                "streamArn": self._stream_arn,
            },
        }
        self._client_factory("sqs").send_message(QueueUrl=self.failures_url, MessageBody=json.dumps(body))

    def _deliver(self, records: list[dict[str, Any]]) -> str | None:
        """Invoke the consumer; return the sequence number to retry from, or None on success."""
        assert self._stream_arn is not None
        event = dynamodb_stream_event(self._stream_arn, records)
        first_seq = str(records[0]["dynamodb"]["SequenceNumber"])
        try:
            result = self.invoker.invoke(self.consumer.consumer, event)
        except Exception:
            log.exception("stream consumer %s raised; the batch will be retried", self.consumer.consumer)
            return first_seq
        failed = _failed_ids(result)
        if not failed:
            return None
        log.warning("stream consumer %s reported %d failed record(s)", self.consumer.consumer, len(failed))
        known = [str(r["dynamodb"]["SequenceNumber"]) for r in records]
        # Lambda retries from the lowest failed sequence number in the batch.
        positions = [known.index(f) for f in failed if f in known]
        return known[min(positions)] if positions else first_seq

    def pending(self) -> bool:
        return self._behind


class QueuePoller(Poller):
    serialised = False

    def __init__(
        self, invoker: Invoker, queue: Queue, queue_url: str, queue_arn: str, client_factory: Any
    ) -> None:
        super().__init__(invoker, interval_s=0.0)
        self.queue = queue
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.name = f"queue-{queue.name}"
        self._client_factory = client_factory
        self._deferred: dict[str, float] = {}  # message id -> when its handler's delay ends (epoch s)
        self._handling: Counter[str] = Counter()  # received by this poller, not yet answered
        self._receiving: list[float] = []  # when each receive still under way began (epoch s)
        # message id -> (its visible_at, when first seen in flight with nobody here handling it)
        self._unclaimed: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        # One ReceiveMessage at a time from this process (handling stays concurrent): the emulator's
        # is not atomic, and two at once left messages in flight for their whole visibility timeout
        # (a redriven one then sits invisible in the DLQ). While a drain runs the background loop
        # stands aside, and a drain round skips the receive of a background long poll still under
        # way (what that poll takes is in flight: the round is not idle).
        self._receive_lock = threading.Lock()
        self._drains = 0

    def begin_drain(self) -> None:
        with self._lock:
            self._drains += 1

    def end_drain(self) -> None:
        with self._lock:
            self._drains -= 1

    def _poll(self, wait: bool) -> int:
        if wait and self._drains:  # the background loop, while a drain receives for this queue
            self._stop.wait(0.1)
            return 0
        sqs = self._client_factory("sqs")
        if not self._receive_lock.acquire(blocking=wait):
            return 0  # a drain round while the background long poll is under way
        started = time.time()
        received_at_ms = started * 1000
        with self._lock:  # what this receive takes is not an orphan, however long it takes
            self._receiving.append(started)
        try:
            resp = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.queue.batch_size),
                WaitTimeSeconds=1 if wait else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = resp.get("Messages", [])
            ids = [msg["MessageId"] for msg in messages]
            with self._lock:
                self._handling.update(ids)
                for message_id in ids:
                    self._deferred.pop(message_id, None)
        finally:
            with self._lock:
                self._receiving.remove(started)
            self._receive_lock.release()
        if not messages:
            self.release_orphans()
            return 0
        try:
            return self._handle(sqs, messages, received_at_ms)
        finally:
            with self._lock:
                self._handling.subtract(ids)
                self._handling = +self._handling  # drop the ids no poll holds any more

    def _handle(self, sqs: Any, messages: list[dict[str, Any]], received_at_ms: float) -> int:
        event = sqs_event(self.queue_arn, messages)
        try:
            result = self.invoker.invoke(self.queue.consumer, event)
            failed = set(_failed_ids(result) or [])
        except Exception:
            log.exception("queue consumer %s raised; the batch will be retried", self.queue.consumer)
            failed = {m["MessageId"] for m in messages}
        scale = self._time_scale()
        for msg in messages:
            try:
                self._answer(sqs, msg, msg["MessageId"] in failed, received_at_ms, scale)
            except Exception:  # one answer lost must not strand the rest of the batch
                log.warning("queue %s: could not answer for message %s; it is left in flight until released",
                            self.queue.name, msg["MessageId"], exc_info=True)
        return len(messages)

    def _answer(self, sqs: Any, msg: dict[str, Any], failed: bool, received_at_ms: float,
                scale: float | None) -> None:
        """Delete a handled message, or put a failed one off until its retry."""
        if not failed:
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
            return
        delay = None if scale is None else retry_after_failure(
            self.queue_url, msg["MessageId"], received_at_ms, self.queue.visibility_timeout_s, scale
        )
        if delay is None:  # the handler left it: the local runtime's short retry delay
            delay = LOCAL_RETRY_DELAY_S
            sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=msg["ReceiptHandle"],
                VisibilityTimeout=LOCAL_RETRY_DELAY_S,
            )
        with self._lock:  # else the handler's own backoff, time-compressed
            self._deferred[msg["MessageId"]] = time.time() + delay

    @staticmethod
    def _time_scale() -> float | None:
        try:
            from calltrack.settings import get_settings

            return get_settings().retry_time_scale
        except Exception:  # noqa: BLE001 - settings unreadable: plain local retries
            return None

    def pending(self) -> bool:
        held = self.backlog()
        return any(n for kind, n in held.items() if kind != "scheduled")

    def scheduled(self) -> int:
        """Messages put off (by their handler) for more than ``SCHEDULED_AFTER_S`` from now."""
        now = time.time()
        with self._lock:
            for message_id, until in list(self._deferred.items()):
                if until <= now:
                    del self._deferred[message_id]
            return sum(1 for until in self._deferred.values() if until - now > SCHEDULED_AFTER_S)

    def release_orphans(self) -> int:
        """Make visible the messages in flight that nobody here is handling (see ``ORPHAN_AFTER_S``):
        received that long ago (by the visibility a receive gave them), or seen unclaimed, with the
        same visibility, for that long (a receiver that put one off for hours and went away)."""
        queue = _moto_queue(self.queue_url)
        if queue is None:
            return 0
        now = time.time()
        released: list[Any] = []
        with self._lock:
            busy = set(self._handling) | {m for m, until in self._deferred.items() if until > now}
            # a receive under way (not lost) may have taken what is in flight and not yet said so
            receiving_since = min((s for s in self._receiving if now - s < RECEIVE_LOST_AFTER_S), default=now)
            unclaimed = {m.id: m for m in list(queue._messages)
                         if float(getattr(m, "visible_at", 0) or 0) > now * 1000 and m.id not in busy}
            for message_id, message in unclaimed.items():
                visible_at = float(message.visible_at)
                seen_visible_at, seen_at = self._unclaimed.get(message_id, (visible_at, now))
                if seen_visible_at != visible_at:  # received or put off again since: look anew
                    seen_at = now
                self._unclaimed[message_id] = (visible_at, seen_at)
                received_at = visible_at / 1000 - self.queue.visibility_timeout_s
                if min(received_at, seen_at) >= receiving_since - 0.05:
                    continue  # perhaps taken by a receive of this poller still under way
                if now - min(received_at, seen_at) > ORPHAN_AFTER_S:
                    released.append(message)
            for message_id in set(self._unclaimed) - set(unclaimed):
                del self._unclaimed[message_id]
            for message in released:  # under the lock: another thread's look cannot release it twice
                del self._unclaimed[message.id]
                due_in = float(message.visible_at) / 1000 - now
                message.change_visibility(0)
                log.warning("queue %s: message %s in flight with nobody handling it (received %s times, "
                            "due back in %.0f s) made visible again", self.queue.name, message.id,
                            getattr(message, "approximate_receive_count", "?"), due_in)
        return len(released)

    def describe_in_flight(self) -> str:
        """What the messages in flight are, for a drain that gave up (receives, due back, claimed by)."""
        queue = _moto_queue(self.queue_url)
        if queue is None:
            return ""
        now = time.time()
        with self._lock:
            handling, deferred = set(self._handling), dict(self._deferred)
            unclaimed = dict(self._unclaimed)
        parts = []
        for m in list(queue._messages):
            due = float(getattr(m, "visible_at", 0) or 0) / 1000 - now
            if due <= 0:
                continue
            claim = ("handling" if m.id in handling else
                     f"put off {max(0.0, deferred[m.id] - now):.0f} s" if m.id in deferred else
                     f"unclaimed {now - unclaimed[m.id][1]:.0f} s" if m.id in unclaimed else "unseen")
            parts.append(f"{m.id[:8]}: {getattr(m, 'approximate_receive_count', '?')} receives, "
                         f"due back in {due:.0f} s, {claim}")
        more = f"; {len(parts) - 5} more" if len(parts) > 5 else ""
        return "; ".join(parts[:5]) + more

    def backlog(self) -> dict[str, int]:
        """The queue's messages: visible, in flight (received, not yet deleted; less those
        ``scheduled`` by their handler for later), delayed and scheduled."""
        self.release_orphans()
        sqs = self._client_factory("sqs")
        attrs = sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        scheduled = self.scheduled()
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in flight": max(0, int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)) - scheduled),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
            "scheduled": scheduled,
        }


class StillBusy(TimeoutError):
    """A drain's time ran out with work left; ``records`` says how much it did meanwhile (a caller
    can tell a backlog going down from a consumer that makes no progress)."""

    def __init__(self, message: str, records: int) -> None:
        super().__init__(message)
        self.records = records


def wait_idle(pollers: list[Poller], invoker: Invoker, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll every source until a full round finds nothing and no handler runs, or raise TimeoutError."""
    for poller in pollers:
        poller.begin_drain()
    try:
        return _poll_until_idle(pollers, invoker, timeout_s)
    finally:
        for poller in pollers:
            poller.end_drain()


def _poll_until_idle(pollers: list[Poller], invoker: Invoker, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    processed = 0
    rounds = 0
    while True:
        rounds += 1
        count = 0
        busy_sources: list[str] = []
        # a handler the background loop ran meanwhile may have left work for a source this round
        # already looked at (its stream poller's lock held this round's poll until it was done)
        ended_before = invoker.finished
        for poller in pollers:
            try:
                handed = poller.poll_once()
                count += handed
                if poller.pending():
                    held = poller.backlog() if isinstance(poller, QueuePoller) else {}
                    counts = "".join(f", {n} {kind}" for kind, n in held.items() if n)
                    busy_sources.append(f"{poller.name} (holds work{counts}; {handed} handed this round)")
            except Exception as exc:
                busy_sources.append(f"{poller.name} ({type(exc).__name__}: {str(exc)[:120]})")
                log.debug("drain: %s: %s", poller.name, exc)
        busy = bool(busy_sources)
        processed += count
        # A round that handed nothing to a handler, with nothing in flight anywhere, is idle:
        # any work a handler produced in an earlier round would have been found in this one.
        if count == 0 and not busy and invoker.in_flight == 0 and invoker.finished == ended_before:
            return {"status": "idle", "records": processed, "rounds": rounds}
        if time.monotonic() > deadline:
            running = f"; {invoker.in_flight} handler(s) running" if invoker.in_flight else ""
            holding = "".join(f"; {p.name} in flight: {text}" for p in pollers
                           if isinstance(p, QueuePoller) and (text := p.describe_in_flight()))
            raise StillBusy(
                f"drain: still busy after {timeout_s:.0f}s ({processed} records processed); "
                "a consumer keeps failing or a source keeps producing; busy: "
                f"{', '.join(busy_sources) or 'none'}{running}{holding}",
                processed,
            )
        if count == 0:
            time.sleep(0.2)
