"""Helpers for reading stored records, shared by raw-boto3 and PynamoDB readers alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_object(raw: Any) -> dict[str, Any]:
    """A JSONAttribute value as a dict: stored as a JSON string, parsed or not; anything else -> {}."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, Mapping) else {}
