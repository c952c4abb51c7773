"""One fake of the calls port the recording pipeline writes to (``recording_ingest.ingest.CallRepo``,
``recording_ingest.retention.RetentionCalls``): call rows by CallSid, each with its recording view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class InMemoryCalls:
    """Call rows in ``rows``; ``get`` returns a copy (as a read would), ``set_recording`` updates one."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def get(self, call_sid: str) -> dict[str, Any] | None:
        row = self.rows.get(call_sid)
        return dict(row) if row else None

    def set_recording(self, call_sid: str, recording: Mapping[str, Any]) -> None:
        self.rows[call_sid]["recording"] = dict(recording)
