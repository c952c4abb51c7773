"""Cost per 1,000 calls (AWS only, Twilio excluded), from a measured whole call on the local stack.

Measured (RequestCounter over real handlers): per call, the four Twilio webhooks (voice, recording
status, <Dial> action, status callback), then the calls stream (rollup) and the recording queue
(recording_ingest fetching from the fake Twilio media server) worked off: invocations, handler
wall time, and every AWS request each function sent, by operation and items.
Modelled (stated in the output): billed duration = the local wall time of the handler (rounded
up to 1 ms) at the function's configured memory; one rollup invocation per stream record (low
traffic: Lambda batches little; the emulator emits two INSERT records when an UpdateItem creates
the call, so the count is one high); DynamoDB capacity per request from its items (<= 1 KB writes,
<= 4 KB reads, strongly consistent; transactions twice), plus one write unit per global secondary
index of the table for every item written (an index write per item write; a write that moves an
item's index key costs two, one to an item without the key none: the figure is the common case);
SQS: each send request, and the event source's receive and delete per message (a batch's entries
are messages); recordings stored for one month.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from bench.common import FigureResult, RequestCounter, Row, Tally
from bench.stack import CALLER_PREFIX, drain, recording_sid, static_account, unique_number, voice_form

PRICES_DATE = "2026-11-25"
PRICES = {  # us-east-1, public on-demand list prices (USD)
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "ddb_wru": 0.625 / 1e6,  # on-demand write request unit
    "ddb_rru": 0.125 / 1e6,  # on-demand read request unit
    "http_api_request": 1.00 / 1e6,  # first 300M/month
    "sqs_request": 0.40 / 1e6,  # standard queue, beyond the free tier
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    "s3_gb_month": 0.023,
}
TALK_MINUTES = 3.0  # assumed average recorded minutes per call
MP3_KBPS = 32  # Twilio's MP3 per channel (assumption); recordings are dual-channel
CHANNELS = 2
BYTES_PER_MINUTE = MP3_KBPS * 1000 / 8 * 60 * CHANNELS
WRITE_OPS = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1, "BatchWriteItem": 1, "TransactWriteItems": 2}
READ_OPS = {"GetItem": 1, "BatchGetItem": 1, "Query": 1, "Scan": 1, "TransactGetItems": 2}


def capacity(tally: Tally, indexes: dict[str, int] | None = None) -> tuple[float, float]:
    """(WRU, RRU) of a tally's DynamoDB requests; ``indexes``: table name -> its global secondary
    indexes, each written once per item written to the table."""
    wru = rru = 0.0
    for op, items in tally.items.items():
        service, _, name = op.partition(":")
        if service != "dynamodb":
            continue
        wru += WRITE_OPS.get(name, 0) * items
        rru += READ_OPS.get(name, 0) * items
    for table, items in tally.table_writes.items():
        wru += (indexes or {}).get(table, 0) * items
    return wru, rru


def index_counts() -> dict[str, int]:
    """Physical table name -> how many global secondary indexes it has (calltrack.models)."""
    from calltrack.models import all_models
    from calltrack.settings import get_settings

    settings = get_settings()
    out = {}
    for model in all_models():
        gsis = model._get_schema()["global_secondary_indexes"]
        if gsis:
            out[settings.table_name(str(model.Meta.logical_name))] = len(gsis)
    return out


def _scenario(client: Any, counter: RequestCounter, calls: int) -> None:
    from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, get_settings, reset_settings
    from calltrack_cli.local.fake_twilio import FakeTwilioMedia
    from calltrack_cli.local.mp3 import silent_mp3

    media = FakeTwilioMedia(credentials=[(LOCAL_TWILIO_ACCOUNT_SID, client.twilio_auth_token)]).start()
    saved = os.environ.get("TWILIO_API_BASE_URL")
    os.environ["TWILIO_API_BASE_URL"] = media.base_url
    reset_settings()
    try:
        client.stack.client("s3").put_bucket_encryption(
            Bucket=get_settings().recordings_bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )
        _, (number,) = static_account(client, recording=True)
        audio = silent_mp3(2.0)
        counter.reset()  # the account set-up (admin apply) is not part of a call
        for _ in range(calls):
            form = voice_form(number, unique_number(CALLER_PREFIX))
            posts = [
                ("/twilio/voice", form),
                ("/twilio/dial-status", {**form, "DialCallStatus": "completed", "DialCallDuration": "180"}),
            ]
            rec = recording_sid()
            media.add_recording(LOCAL_TWILIO_ACCOUNT_SID, rec, audio)
            posts.append(
                (
                    "/twilio/recording",
                    {
                        "AccountSid": LOCAL_TWILIO_ACCOUNT_SID,
                        "CallSid": form["CallSid"],
                        "RecordingSid": rec,
                        "RecordingStatus": "completed",
                        "RecordingDuration": "180",
                        "RecordingChannels": "2",
                        "RecordingSource": "DialVerb",
                    },
                )
            )
            posts.append(("/twilio/call-status", {**form, "CallStatus": "completed", "CallDuration": "195"}))
            for path, params in posts:
                resp = client.twilio_post(path, params)
                if resp.status_code != 200:
                    raise RuntimeError(f"{path} answered {resp.status_code}: {resp.text[:200]}")
        drain(client)
    finally:
        if saved is None:
            os.environ.pop("TWILIO_API_BASE_URL", None)
        else:
            os.environ["TWILIO_API_BASE_URL"] = saved
        reset_settings()
        media.stop()


def run(client: Any, counter: RequestCounter, calls: int = 20) -> FigureResult:
    from infra.wiring import WIRING

    started = time.perf_counter()
    result = FigureResult("Cost", "AWS cost per 1,000 calls (Twilio excluded)")
    drain(client)  # work off whatever earlier figures left on the stream
    _scenario(client, counter, calls)
    tallies = counter.snapshot()
    indexes = index_counts()
    per_call: dict[str, dict[str, Any]] = {}
    lambda_cost = ddb_cost = 0.0
    sqs_requests = s3_puts = s3_gets = 0.0
    api_requests = 0.0
    for name, tally in sorted(tallies.items()):
        fn = WIRING.function(name)
        if tally.records:
            # stream/queue consumers: one invocation per record (low traffic: Lambda batches little),
            # each billed its share of the measured time
            invocations = tally.records / calls
            billed_ms = math.ceil(sum(tally.seconds) * 1000 / max(1, tally.records))
        else:
            invocations = tally.invocations / calls
            billed_ms = math.ceil(sum(tally.seconds) * 1000 / max(1, tally.invocations))
        gb_s = invocations * billed_ms / 1000 * fn.memory_mb / 1024
        fn_cost = invocations * PRICES["lambda_request"] + gb_s * PRICES["lambda_gb_s_arm64"]
        wru, rru = capacity(tally, indexes)
        index_wru = sum(indexes.get(t, 0) * n for t, n in tally.table_writes.items()) / calls
        wru, rru = wru / calls, rru / calls
        lambda_cost += fn_cost
        ddb_cost += wru * PRICES["ddb_wru"] + rru * PRICES["ddb_rru"]
        sends = sum(tally.requests.get(f"sqs:{op}", 0) for op in ("SendMessage", "SendMessageBatch"))
        messages = sum(tally.items.get(f"sqs:{op}", 0) for op in ("SendMessage", "SendMessageBatch"))
        sqs_requests += (sends + 2 * messages) / calls  # + the event source's receive and delete
        s3_puts += sum(n for op, n in tally.requests.items() if op.startswith("s3:P")) / calls
        s3_gets += sum(n for op, n in tally.requests.items() if op in ("s3:GET", "s3:HEAD")) / calls
        if name == "voice_webhook":
            api_requests += invocations
        per_call[name] = {
            "invocations": round(invocations, 2),
            "billed_ms": billed_ms,
            "memory_mb": fn.memory_mb,
            "requests": {op: round(n / calls, 2) for op, n in sorted(tally.requests.items())},
            "wru": round(wru, 2),
            "index_wru": round(index_wru, 2),
            "rru": round(rru, 2),
        }
    storage_gb = TALK_MINUTES * BYTES_PER_MINUTE / 1e9
    s3_cost = s3_puts * PRICES["s3_put"] + s3_gets * PRICES["s3_get"] + storage_gb * PRICES["s3_gb_month"]
    sqs_cost = sqs_requests * PRICES["sqs_request"]
    api_cost = api_requests * PRICES["http_api_request"]
    parts = {
        "Lambda": lambda_cost,
        "DynamoDB": ddb_cost,
        "API Gateway": api_cost,
        "SQS": sqs_cost,
        "S3 (first month)": s3_cost,
    }
    total = sum(parts.values())
    for label, value in parts.items():
        result.rows.append(Row(f"Cost/1k calls: {label}", f"${value * 1000:.4f}"))
    result.rows.append(Row("Cost/1k calls: TOTAL (AWS, excl. Twilio)", f"${total * 1000:.4f}"))
    for name, info in per_call.items():
        ops = ", ".join(f"{op.split(':', 1)[1]} {n:g}" for op, n in info["requests"].items())
        result.rows.append(
            Row(
                f"Cost inputs: {name} per call",
                f"{info['invocations']:g} inv x {info['billed_ms']} ms @ {info['memory_mb']} MB; "
                f"{info['wru']:g} WRU (index {info['index_wru']:g}), {info['rru']:g} RRU; "
                f"{ops or 'no AWS requests'}",
            )
        )
    result.details = {
        "calls_measured": calls,
        "per_call": per_call,
        "per_1000_calls_usd": {k: round(v * 1000, 4) for k, v in parts.items()},
        "total_per_1000_calls_usd": round(total * 1000, 4),
        "prices": {"region": "us-east-1", "date": PRICES_DATE, **PRICES},
        "assumptions": {
            "talk_minutes_recorded": TALK_MINUTES,
            "mp3_kbps_per_channel": MP3_KBPS,
            "channels": CHANNELS,
            "bytes_per_recorded_minute": BYTES_PER_MINUTE,
        },
    }
    result.notes.append(
        f"Prices: us-east-1 public on-demand list prices as of {PRICES_DATE} (Lambda arm64 "
        f"${PRICES['lambda_gb_s_arm64']}/GB-s + $0.20/M requests; DynamoDB on-demand $0.625/M WRU, "
        "$0.125/M RRU; HTTP API $1.00/M; SQS $0.40/M; S3 $0.005/1k PUT, $0.023/GB-month). "
        f"Recording: {TALK_MINUTES:g} min/call, MP3 {MP3_KBPS} kbps x {CHANNELS} channels = "
        f"{BYTES_PER_MINUTE / 1e6:.2f} MB/min (assumption). Billed ms = local handler wall time. "
        "Excluded: Twilio, CloudWatch Logs/metrics, KMS (bucket key), data transfer, free tiers, "
        "idle SQS long polling by the event source (~$0.26/month fixed)."
    )
    result.seconds = time.perf_counter() - started
    return result
