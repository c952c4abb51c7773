"""Routes of the report API (stub: the owning issue fills it)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import Router

router = Router()
