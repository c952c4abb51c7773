"""The process's shared AWS clients and per-process factories: each made once, on first use.

A per-process singleton here is a ``functools.cache``d function without arguments
(``dynamodb()``, ``calltrack.accounts.account_reader()``, ``calltrack.call_items.call_items()``);
``cache_clear()`` forgets it (the modules' ``reset()``). Two threads racing on the very first call
may both build one; only one is kept.

Not on the voice webhook's import path (it passes its own short-timeout client); imported lazily.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def dynamodb() -> Any:
    """The process's default low-level DynamoDB client (region from settings)."""
    import boto3

    from calltrack.settings import get_settings

    return boto3.session.Session().client("dynamodb", region_name=get_settings().region)
