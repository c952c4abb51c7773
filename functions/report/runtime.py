"""The report API's composition root: the ports its routes use.

``API_NEEDS`` equals its wiring's grants (tests/infra compares them); settings are read and
checked on the first invocation, never at import. (The rollup consumer, the other Lambda of this
folder, is its own composition root in ``report.rollup_consumer``: its asset does not carry the
API's bundles, so it must not import this module.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from calltrack.settings import Needs, Settings

if TYPE_CHECKING:
    from call_records.store import CrmLeads, SpendBook
    from calltrack.accounts import Accounts
    from calltrack.call_items import CallItems
    from conversions.store import DynamoConversions
    from dni_lease.store import LeaseStore
    from report.recount import StoredRecountPorts
    from report.reviews import ReviewShelf
    from report.rollup_store import RollupReader

API_NEEDS = Needs(
    tables=("calls", "spend", "rollups", "crm_leads", "accounts", "tokens", "recordings", "conversions",
            "audit", "leases", "lease_history"),
    buckets=("recordings", "exports"),
    queues=("recording", "transcripts"),  # POST /v1/recordings/retry, /v1/transcripts/retry
    secrets=("admin_token",),
)


@dataclass(frozen=True)
class ApiPorts:
    """Everything the report API's routes read and write (its own and the bundled contexts')."""

    accounts: Accounts
    calls: CallItems
    leads: CrmLeads
    spend: SpendBook
    rollups: RollupReader
    reviews: ReviewShelf
    presign: Callable[[str, int, str | None], str]  # recording key, seconds, disposition -> URL
    # account, since, cursor -> counts and next_cursor
    requeue_recordings: Callable[[str | None, str | None, str | None], dict[str, Any]]
    # account, since, cursor -> since, requeued and next_cursor (transcripts.retry)
    retry_transcripts: Callable[[str, str | None, str | None], dict[str, Any]]
    conversions: DynamoConversions  # read only: a call's conversions and the import files
    leases: LeaseStore  # read only: GET /v1/reports/pools (dni_lease.pools_api)
    # account -> the numbers applies took out of its pools (the pools report reads their history)
    former_pool_numbers: Callable[[str], Mapping[str, Mapping[str, float]]]
    recount: StoredRecountPorts  # POST /v1/reports/recount: calls and rollups read, rollups raised


def report_ports(router: Any) -> ApiPorts:
    """This request's ports (see ``calltrack.api.route_ports``)."""
    from calltrack.api import route_ports

    return cast(ApiPorts, route_ports(router))


_lock = threading.Lock()
_built: tuple[Settings, ApiPorts] | None = None


def api_ports() -> ApiPorts:
    """Built on the first invocation (settings read and checked), again only after a settings reset."""
    global _built
    from calltrack.models import start

    settings = start(API_NEEDS)
    with _lock:
        if _built is None or _built[0] is not settings:
            _built = (settings, _build(settings))
        return _built[1]


def _build(settings: Settings) -> ApiPorts:
    import boto3
    from botocore.config import Config

    from call_records.store import CrmLeads, SpendBook
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from calltrack.clients import dynamodb
    from conversions.store import DynamoConversions
    from dni_lease.store import DynamoLeaseStore
    from recording_ingest.access import presigner
    from recording_ingest.requeue import requeuer
    from report.recount import DynamoRollupRaiser, StoredRecountPorts
    from report.reviews import ReviewShelf
    from report.rollup_store import RollupReader
    from transcripts.retry import transcript_retrier

    session = boto3.session.Session()
    sqs = session.client("sqs", region_name=settings.region)
    s3: Any = session.client("s3", region_name=settings.region, config=Config(signature_version="s3v4"))
    rollups = RollupReader(dynamodb(), settings.table_name("rollups"), settings.table_name("spend"))
    return ApiPorts(
        accounts=account_reader(),
        calls=call_items(),
        leads=CrmLeads(),
        spend=SpendBook(),
        rollups=rollups,
        reviews=ReviewShelf(s3, settings.exports_bucket),
        presign=presigner(s3, settings.recordings_bucket),
        requeue_recordings=requeuer(settings, sqs),
        retry_transcripts=transcript_retrier(call_items(), sqs),
        conversions=DynamoConversions(),
        leases=DynamoLeaseStore(
            dynamodb(), settings.table_name("leases"), settings.table_name("lease_history")
        ),
        former_pool_numbers=account_reader().former_pool_numbers,
        recount=StoredRecountPorts(
            call_items(), rollups, DynamoRollupRaiser(dynamodb(), settings.table_name("rollups"))
        ),
    )
