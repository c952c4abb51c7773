"""The conversions consumer's composition root: settings, the store, the account reader, account
secrets, the platform adapters (endpoints from settings) and whether a call is still stored (a
consistent read of the calls table), built on the first invocation.

``NEEDS`` equals the wiring's grants for the ``conversions`` function (tests/infra compares them).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from calltrack.settings import Needs, Settings

NEEDS = Needs(tables=("conversions", "accounts", "calls"), account_secrets="read")

# Retries of a message whose rows got 429/5xx: 30 s, 1 min, 2, 4 ... at most 1 h per step;
# MAX_RECEIVES tries (~3.5 h) and then the dead-letter queue (infra/wiring.py uses it).
BASE_DELAY_S = 30
MAX_DELAY_S = 3600
MAX_RECEIVES = 10

_lock = threading.Lock()
_built: tuple[Settings, Any] | None = None


def ports() -> Any:
    """The delivery ports, built once per settings (tests reset settings to point at the fakes)."""
    global _built
    from calltrack.models import start
    from calltrack.models.conversions import Conversion

    settings = start(NEEDS, [Conversion])
    with _lock:
        if _built is None or _built[0] is not settings:
            _built = (settings, _build(settings))
        return _built[1]


def _build(settings: Settings) -> Any:
    from calltrack import clock
    from calltrack.account_secrets import account_secrets
    from calltrack.accounts import account_reader
    from calltrack.call_items import call_items
    from conversions.delivery import Ports
    from conversions.destinations import Ga4, GoogleAds, Meta
    from conversions.store import DynamoConversions

    return Ports(
        store=DynamoConversions(),
        accounts=account_reader(),
        secret=account_secrets().get,
        destinations={
            "google_ads": GoogleAds(settings.google_ads_api_base_url, settings.google_oauth_token_url),
            "meta": Meta(settings.meta_graph_base_url),
            "ga4": Ga4(settings.ga4_mp_base_url),
        },
        now=clock.now,
        call_exists=lambda call_sid: call_items().get(call_sid, consistent=True) is not None,
        wait_scale=settings.retry_time_scale,
    )


@functools.cache
def sqs() -> Any:
    import boto3

    from calltrack.settings import get_settings

    return boto3.session.Session().client("sqs", region_name=get_settings(NEEDS).region)


def reset() -> None:
    global _built
    _built = None
    sqs.cache_clear()
