"""Account secrets: credentials an account's integrations use, kept only in SSM Parameter Store.

A secret is the SecureString ``/calltrack/{account}/{name}`` (encrypted with the account's default
``aws/ssm`` key). It is set through the API, write-only (``calltrack secret set`` ->
``PUT /v1/accounts/{account}/secrets/{name}``), listed by name and update time only, and read by
the functions that deliver to the account's destinations (conversions, webhooks, CRM push). A
config names a secret (``secret: google-ads``); the value never appears in YAML, logs or responses.

The stack grants readers ``ssm:GetParameter`` on ``parameter/calltrack/*/*`` only: two path
segments, so the stack's own one-segment parameters (``/calltrack/admin-token``, ...) stay out of
reach. Listing uses ``DescribeParameters`` (metadata only, it cannot return a value).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from calltrack.errors import BadRequest

PREFIX = "/calltrack"
SECRET_NAME = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")
MAX_VALUE_BYTES = 4096  # an SSM standard parameter's limit
READ_CACHE_S = 60.0  # how long a process keeps a value it read (a `secret set` takes effect within it)


def parameter_name(account: str, name: str) -> str:
    return f"{PREFIX}/{account}/{name}"


def check_name(name: str, field: str = "name") -> str:
    if not isinstance(name, str) or not SECRET_NAME.match(name):
        raise BadRequest(
            f"{field}: a secret name is 1-63 lowercase letters, digits, '-' or '_' "
            f"(starting with a letter or digit), got {name!r}",
            field=field,
        )
    return name


def check_value(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest('value: send the secret as {"value": "..."} (a non-empty string)', field="value")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise BadRequest(f"value: at most {MAX_VALUE_BYTES} bytes", field="value")
    return value


class AccountSecrets:
    """Reads, writes and lists one stack's account secrets through an SSM client."""

    def __init__(self, ssm: Any, *, cache_s: float = READ_CACHE_S, clock: Any = time.monotonic) -> None:
        self.ssm = ssm
        self.cache_s = cache_s
        self.clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, account: str, name: str) -> str | None:
        """The secret's value, or None when it is not set (the destination is then CSV-only)."""
        key = parameter_name(account, name)
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        try:
            value: str | None = self.ssm.get_parameter(Name=key, WithDecryption=True)["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            value = None
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def put(self, account: str, name: str, value: str) -> dict[str, Any]:
        """Store (or replace) the secret; -> {"name", "updated_at", "version"} (never the value)."""
        check_name(name)
        check_value(value)
        out = self.ssm.put_parameter(
            Name=parameter_name(account, name),
            Value=value,
            Type="SecureString",
            Overwrite=True,
            Description=f"calltrack account secret ({account})",
        )
        with self._lock:
            self._cache.pop(parameter_name(account, name), None)
        return {"name": name, "updated_at": _iso(datetime.now(UTC)), "version": int(out.get("Version", 1))}

    def names(self, account: str) -> list[dict[str, Any]]:
        """[{"name", "updated_at"}] of the account's secrets, sorted by name; never a value."""
        prefix = parameter_name(account, "")
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "ParameterFilters": [{"Key": "Path", "Option": "OneLevel", "Values": [prefix.rstrip("/")]}],
            "MaxResults": 50,
        }
        while True:
            page = self.ssm.describe_parameters(**kwargs)
            for meta in page.get("Parameters", []):
                full = str(meta["Name"])
                if not full.startswith(prefix):
                    continue
                modified = meta.get("LastModifiedDate")
                found.append({
                    "name": full[len(prefix):],
                    "updated_at": _iso(modified) if isinstance(modified, datetime) else None,
                })
            token = page.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        return sorted(found, key=lambda s: s["name"])


    def delete_all(self, account: str) -> int:
        """Delete every secret of the account (account deletion); -> how many were deleted."""
        names = [parameter_name(account, s["name"]) for s in self.names(account)]
        deleted = 0
        for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names
            out = self.ssm.delete_parameters(Names=names[start:start + 10])
            deleted += len(out.get("DeletedParameters", []))
        with self._lock:
            for name in names:
                self._cache.pop(name, None)
        return deleted


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@functools.cache
def account_secrets() -> AccountSecrets:
    """The process's AccountSecrets (one SSM client, region from settings)."""
    import boto3

    from calltrack.settings import get_settings

    return AccountSecrets(boto3.session.Session().client("ssm", region_name=get_settings().region))


def reset() -> None:
    """Forget the process's instance and its cache (tests)."""
    account_secrets.cache_clear()
