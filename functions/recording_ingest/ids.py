"""Twilio id patterns (import-light: used on the webhook path). Anchored with ``\\A`` and ``\\Z``
(not ``^``/``$``, which also matches before a trailing newline), so ``.match`` is a full match."""

from __future__ import annotations

import re

RECORDING_SID = re.compile(r"\ARE[0-9a-f]{32}\Z")
CALL_SID = re.compile(r"\ACA[0-9a-f]{32}\Z")
ACCOUNT_SID = re.compile(r"\AAC[0-9a-f]{32}\Z")
