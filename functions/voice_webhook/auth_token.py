"""The Twilio auth token the voice webhook checks signatures with, kept for the life of the process.

Deployed, the token is an SSM SecureString (``TWILIO_AUTH_TOKEN_PARAM``). Read on every call it would
be a third AWS request per call; read again every 5 minutes (as it was, through Powertools'
parameter cache) a short SSM outage or throttling refused every call and callback of each container
whose copy had just expired: Twilio then rang the stack's one fallback number instead of the
business's and the calls were never recorded. So:

- the first read, at a container's first request, must succeed: without a token nothing can be
  verified (the handler answers 503 and Twilio uses the fallback URL);
- after that the kept token is used. It is read again every ``REFRESH_S`` by a callback (never by
  the incoming call itself: its two requests stay two), and after a signature that does not match
  (the token may have been rotated); SSM is asked at most once per ``RECHECK_S`` whatever happens,
  so forged requests cannot make the webhook read SSM on every request. A read that fails keeps
  the token the process has;
- SSM is asked with short timeouts (1 s to connect, 2 s to read, 2 attempts in all), as DynamoDB is
  (``voice_webhook.dynamo``), so a slow SSM cannot take the call past the function's timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REFRESH_S = 3600.0
RECHECK_S = 60.0


class AuthToken:
    """The token of one SSM parameter: ``get`` (raises only when no token was ever read) and
    ``fresher`` (after a mismatch: a re-read token when it changed)."""

    def __init__(self, read: Callable[[str], str], clock: Callable[[], float],
                 on_stale: Callable[[Exception], None] = lambda exc: None) -> None:
        self._read, self._clock, self._on_stale = read, clock, on_stale
        self._param: str | None = None
        self._token: str | None = None
        self._read_at = 0.0  # the last successful read
        self._tried_at = 0.0  # the last read, successful or not

    def get(self, param: str, *, refresh: bool = True) -> str:
        """The kept token; re-read when ``REFRESH_S`` has passed and ``refresh`` (the incoming-call
        route passes False: its two requests stay two, a callback of the same call re-reads)."""
        now = self._clock()
        if self._token is None or self._param != param:
            token = self._read(param)  # nothing to fall back on: a failure refuses the request
            self._param, self._token, self._read_at = param, token, now
            self._tried_at = now
        elif refresh and now - self._read_at >= REFRESH_S and now - self._tried_at >= RECHECK_S:
            self._refresh(now)
        return self._token

    def fresher(self) -> str | None:
        """The token read again after a signature mismatch, when it changed; None when SSM was
        asked within ``RECHECK_S`` (successfully or not) or the token is the same."""
        now = self._clock()
        if self._token is None or now - self._tried_at < RECHECK_S:
            return None
        before = self._token
        self._refresh(now)
        return self._token if self._token != before else None

    def _refresh(self, now: float) -> None:
        self._tried_at = now
        try:
            token = self._read(str(self._param))
        except Exception as exc:  # noqa: BLE001 - any failure keeps the token this process has
            self._on_stale(exc)
            return
        self._token, self._read_at = token, now


def ssm_reader(region: str | None) -> Callable[[str], str]:
    """Read a SecureString with the short-timeout client (endpoint from AWS_ENDPOINT_URL* when set)."""
    client: Any = None

    def read(name: str) -> str:
        nonlocal client
        if client is None:
            import boto3
            from botocore.config import Config

            from voice_webhook.dynamo import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S

            client = boto3.session.Session().client(
                "ssm", region_name=region,
                config=Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                              retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"}),
            )
        return str(client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])

    return read
