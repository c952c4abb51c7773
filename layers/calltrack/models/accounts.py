"""Accounts, their tracking numbers and API tokens (owned by functions/admin)."""

from __future__ import annotations

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from calltrack.models.base import table_meta


class Account(Model):
    """One business (tenant). ``config`` is the validated account YAML as JSON."""

    Meta = table_meta("accounts")
    account = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    timezone = UnicodeAttribute(default="Asia/Tokyo")
    config = JSONAttribute()
    config_hash = UnicodeAttribute()
    version = NumberAttribute(default=1)
    updated_at = UTCDateTimeAttribute()
    # pool id -> number -> epoch seconds it left the pool (calltrack.accounts.StoredAccount)
    former_pool_numbers = JSONAttribute(null=True)


class TrackingNumber(Model):
    """E.164 tracking number -> account and source. Written by apply, read by the voice webhook.

    ``kind`` is "static" or "pool"; for pool numbers ``pool`` names the DNI pool.
    """

    Meta = table_meta("numbers")
    number = UnicodeAttribute(hash_key=True)
    account = UnicodeAttribute()
    kind = UnicodeAttribute(default="static")
    channel = UnicodeAttribute()
    campaign = UnicodeAttribute(null=True)
    medium = UnicodeAttribute(null=True)
    pool = UnicodeAttribute(null=True)
    # Everything the webhook needs to answer without another read (forward_to, recording, ...).
    routing = JSONAttribute()


class TokensByAccount(GlobalSecondaryIndex["ApiToken"]):
    class Meta:
        index_name = "by-account"
        projection = AllProjection()

    account = UnicodeAttribute(hash_key=True)


class ApiToken(Model):
    """An API token, stored as its SHA-256 hash, bound to one account and one role.

    ``expires_at`` (epoch seconds, optional) is checked on every request and is the table's TTL;
    ``last_used_at`` is refreshed at most once per ``calltrack.auth.LAST_USED_EVERY`` per token."""

    Meta = table_meta("tokens", ttl="expires_at")
    token_hash = UnicodeAttribute(hash_key=True)
    account = UnicodeAttribute()
    role = UnicodeAttribute()
    label = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    expires_at = NumberAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)
    revoked_sessions = UnicodeSetAttribute(null=True)  # a console user's marker: signed-out jtis
    by_account = TokensByAccount()


class AuditEntry(Model):
    """One audit item (``calltrack.audit``): who (token id, label, role), what, when, result.

    ``at_id`` = f"{ISO 8601 UTC}#{random hex}" sorts by time; ``GET /v1/audit?from=&to=`` queries it."""

    Meta = table_meta("audit")
    account = UnicodeAttribute(hash_key=True)
    at_id = UnicodeAttribute(range_key=True)
    at = UnicodeAttribute()
    action = UnicodeAttribute()  # account.apply, token.create, token.revoke, secret.set, ...
    target = UnicodeAttribute(null=True)  # a call sid, token id, secret name, or caller#<salted hash>
    result = UnicodeAttribute()
    token_id = UnicodeAttribute()
    label = UnicodeAttribute(null=True)
    role = UnicodeAttribute()
    detail = JSONAttribute(null=True)


MODELS = [Account, TrackingNumber, ApiToken, AuditEntry]
