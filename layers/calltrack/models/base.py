"""Helpers shared by the model modules."""

from __future__ import annotations

from typing import Any

from calltrack.settings import DEFAULT_TABLE_PREFIX


def table_meta(logical: str, *, stream: str | None = None, ttl: str | None = None) -> Any:
    """A PynamoDB ``Meta`` with the default physical name; ``bind_models`` rebinds it."""

    class Meta:
        table_name = f"{DEFAULT_TABLE_PREFIX}{logical}"
        logical_name = logical
        billing_mode = "PAY_PER_REQUEST"
        # Read by the CDK stack and the local runtime (not by PynamoDB):
        stream_view_type = stream  # e.g. "NEW_AND_OLD_IMAGES"
        ttl_attribute = ttl

    return Meta
