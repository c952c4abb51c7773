"""The DNI side of a website call's AWS cost (issue 24): the lease requests of the visitors that one
call stands for, which the measured call (``bench/cost.py``, a call to a static number) leaves out.

From P7's replayed day at each traffic level's smallest pool for 99% (the real lease code on the
in-memory store, counted): ``POST /dni/lease`` requests (leases, heartbeats that renew by one write,
release beacons), pool rows read (every new lease reads every number's row: strongly consistent,
one read unit per row of at most 4 KB), conditional writes (takes, renewals and releases, refused
ones too: DynamoDB bills a failed conditional write) and history writes (an item per lease, and the
previous holder's end). Priced with ``bench/cost.py``'s list prices, one write unit per write (rows
under 1 KB: an assumption, a long landing page can make it two), and ``BILLED_MS`` per request (an
assumption: three DynamoDB round trips in the region). The day's cost over the calls its visitors
make (``calls_per_1000_visitors`` in ``bench/prices.json``), per 1,000 calls. A website call's end
adds ``CALL_END_WRITES`` UpdateItems the static call does not make (the voice webhook's
``remember_pool_call``: the caller's redial item, the number's lease row), one write unit each.
"""

from __future__ import annotations

from typing import Any

from bench.common import Row

BILLED_MS = 25  # assumed billed Lambda time of one lease request (a pool read, a take, a history put)
CALL_END_WRITES = 2  # a pool call's end: last#<account> on the redial item, called_session on the lease row


def per_1000_calls(day: dict[str, Any], visitors: int, calls_per_1000_visitors: float,
                   memory_mb: int) -> dict[str, Any]:
    """The DNI cost of 1,000 website calls from one replayed day (``day``: a P7 ``at_smallest``)."""
    from bench.cost import PRICES

    calls = visitors * calls_per_1000_visitors / 1000
    requests = float(day["api_requests"])
    wru = float(day["conditional_writes"]) + float(day["history_writes"]) + calls * CALL_END_WRITES
    rru = float(day["rows_read"])
    parts = {
        "DynamoDB": wru * PRICES["ddb_wru"] + rru * PRICES["ddb_rru"],
        "Lambda": requests * (PRICES["lambda_request"]
                              + BILLED_MS / 1000 * memory_mb / 1024 * PRICES["lambda_gb_s_arm64"]),
        "API Gateway": requests * PRICES["http_api_request"],
    }
    scale = 1000 / calls if calls else 0.0
    return {
        "pool_size": day["pool_size"],
        "per_visitor": {"requests": round(requests / visitors, 2), "rows_read": round(rru / visitors, 1),
                        "writes": round(wru / visitors, 2)},
        "per_1000_calls_usd": {k: round(v * scale, 4) for k, v in parts.items()},
        "total_per_1000_calls_usd": round(sum(parts.values()) * scale, 4),
    }


def rows(levels: dict[int, dict[str, Any]]) -> tuple[list[Row], dict[str, Any]]:
    """A row per traffic level (``levels``: daily visitors -> ``per_1000_calls``'s answer)."""
    out = []
    for visitors, cost in sorted(levels.items()):
        each, parts = cost["per_visitor"], cost["per_1000_calls_usd"]
        out.append(
            Row(
                f"Cost/1k website calls: DNI at {visitors:,} visitors/day ({cost['pool_size']} numbers)",
                f"${cost['total_per_1000_calls_usd']:.2f} (DynamoDB ${parts['DynamoDB']:.2f}, Lambda "
                f"${parts['Lambda']:.2f}, API Gateway ${parts['API Gateway']:.2f}); per visitor "
                f"{each['requests']:g} requests, {each['rows_read']:g} rows read, {each['writes']:g} writes",
            )
        )
    note = (
        "DNI (website calls only): P7's replayed day at each level's smallest pool for 99%, its lease "
        "requests, pool rows read and writes over the calls its visitors make; every new lease reads "
        f"every number's row, so the cost grows with the pool; each call's end writes {CALL_END_WRITES} "
        f"rows more. Assumed: {BILLED_MS} ms billed per lease request, one write unit per write."
    )
    return out, {"levels": levels, "billed_ms_per_request": BILLED_MS, "note": note}
