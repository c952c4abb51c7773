"""AdminStore over DynamoDB (PynamoDB models from calltrack.models.accounts).

``write_apply`` is one TransactWriteItems call (Account put + TrackingNumber puts/deletes, each
conditional) whenever the plan has at most 100 items, which covers every account with fewer
than 100 changed numbers. Larger plans are split into transactions of at most 100 items with the
Account put in the LAST one: number rows are written first, so until the final transaction
commits the stored config (and its hash) is still the old one and a retry re-plans. If a later
chunk fails, the chunks already committed are rolled back to the rows read before planning
(best effort, logged), so nothing is left half-applied in the normal failure cases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from admin.ports import ApplyPlan, ConcurrentUpdate, NumberTaken, StoredAccount
from calltrack.accounts import AccountReader
from calltrack.models.accounts import Account, ApiToken, TrackingNumber

MAX_TRANSACTION_ITEMS = 100
# DynamoDB refuses a transaction over 4 MB; each number row carries its compiled flow, so a large
# flow fills a transaction long before 100 rows. The account row (the whole config, under 400 KB)
# joins the last one.
MAX_TRANSACTION_BYTES = 3_500_000


def transaction_chunks(ops: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """``ops`` (("delete", number) | ("put", row)) in order, cut into transactions of at most
    ``MAX_TRANSACTION_ITEMS - 1`` items and ``MAX_TRANSACTION_BYTES`` (rows as JSON, a close
    upper bound of DynamoDB's item size), leaving room for the account row in the last."""
    import json

    chunks: list[list[tuple[str, Any]]] = [[]]
    size = 0
    for op in ops:
        kind, value = op
        weight = len(json.dumps(value, default=str)) if kind == "put" else 100
        full = len(chunks[-1]) >= MAX_TRANSACTION_ITEMS - 1 or size + weight > MAX_TRANSACTION_BYTES
        if chunks[-1] and full:
            chunks.append([])
            size = 0
        chunks[-1].append(op)
        size += weight
    return chunks
_ROW_ATTRS = ("account", "kind", "channel", "campaign", "medium", "pool", "routing")


def _row(item: TrackingNumber) -> dict[str, Any]:
    out: dict[str, Any] = {"number": item.number}
    for key in _ROW_ATTRS:
        out[key] = getattr(item, key)
    return out


def _number_model(row: dict[str, Any]) -> TrackingNumber:
    attrs: dict[str, Any] = {k: row.get(k) for k in _ROW_ATTRS}
    return TrackingNumber(row["number"], **attrs)


def _number_actions(row: dict[str, Any]) -> list[Any]:
    """The row's attributes as UpdateItem actions: an apply rewrites what the config decides and
    keeps what calls wrote (a round-robin group's turn, ``rr#<flow>#<target>``), which a full
    put would reset to the first member."""
    values = {k: row.get(k) for k in _ROW_ATTRS} | {"kind": row.get("kind") or "static"}
    return [getattr(TrackingNumber, k).set(v) if v is not None else getattr(TrackingNumber, k).remove()
            for k, v in values.items()]


class DynamoAdminStore:
    """Writes accounts, numbers and tokens; reads stored accounts through the one account reader."""

    def __init__(
        self, region: str, accounts: AccountReader, *, s3: Any = None, routing_bucket: str = ""
    ) -> None:
        self.region = region
        self.accounts = accounts
        self.s3 = s3
        self.routing_bucket = routing_bucket

    def get_account(self, account: str) -> StoredAccount | None:
        return self.accounts.stored(account, consistent=True)

    def list_accounts(self) -> list[StoredAccount]:
        return list(self.accounts.stored_all())

    def get_numbers(self, numbers: list[str]) -> dict[str, dict[str, Any]]:
        if not numbers:
            return {}
        return {item.number: _row(item) for item in TrackingNumber.batch_get(numbers, consistent_read=True)}

    def put_token(self, *, token_hash: str, account: str, role: str, label: str | None,
                  created_at: datetime, expires_at: datetime | None = None) -> None:
        ApiToken(token_hash, account=account, role=role, label=label, created_at=created_at,
                 expires_at=int(expires_at.timestamp()) if expires_at else None).save(
            condition=ApiToken.token_hash.does_not_exist()
        )

    def list_tokens(self, account: str) -> list[dict[str, Any]]:
        return [
            {"token_hash": t.token_hash, "role": t.role, "label": t.label, "created_at": t.created_at,
             "last_used_at": t.last_used_at,
             "expires_at": (datetime.fromtimestamp(float(t.expires_at), UTC)
                            if t.expires_at is not None else None)}
            for t in ApiToken.by_account.query(account)
        ]

    def delete_token(self, token_hash: str) -> None:
        ApiToken(token_hash).delete()

    # ------------------------------------------------------------------ routing snapshot

    def snapshot_routing(self, rows: dict[str, dict[str, Any]], removed: list[str]) -> None:
        """One S3 object per number (PUTs in parallel: an apply may hold a thousand numbers)."""
        from concurrent.futures import ThreadPoolExecutor

        from calltrack.routing_snapshot import encode, key

        def put(number: str) -> None:
            self.s3.put_object(Bucket=self.routing_bucket, Key=key(number), Body=encode(rows[number]),
                               ContentType="application/json")

        def delete(number: str) -> None:
            self.s3.delete_object(Bucket=self.routing_bucket, Key=key(number))

        with ThreadPoolExecutor(max_workers=16) as pool:
            done = [pool.submit(put, n) for n in sorted(rows)] + [pool.submit(delete, n) for n in removed]
            for future in done:
                future.result()  # the first failure raises

    # ------------------------------------------------------------------ apply

    def write_apply(self, plan: ApplyPlan) -> None:
        ops: list[tuple[str, Any]] = [("delete", n) for n in plan.deletes]
        ops += [("put", row) for row in plan.puts]
        chunks = transaction_chunks(ops)
        done: list[tuple[str, Any]] = []
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            try:
                self._transact(plan, chunk, with_account=last)
            except Exception:
                if done:
                    self._roll_back(plan, done)
                raise
            done.extend(chunk)

    def _transact(self, plan: ApplyPlan, chunk: list[tuple[str, Any]], *, with_account: bool) -> None:
        from pynamodb.connection import Connection
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        account = plan.account.account
        # pynamodb sends deletes, then puts (the account row), then updates (the number rows), each
        # in call order; ``order`` mirrors the request.
        deletes: list[tuple[str, Any]] = []
        puts: list[tuple[str, Any]] = []
        updates: list[tuple[str, Any]] = []
        with_number = TrackingNumber.number.does_not_exist() | (TrackingNumber.account == account)
        try:
            with TransactWrite(connection=Connection(region=self.region)) as tx:
                for kind, value in chunk:
                    if kind == "delete":
                        tx.delete(TrackingNumber(value), condition=TrackingNumber.account == account)
                        deletes.append((kind, value))
                for kind, value in chunk:
                    if kind == "put":
                        tx.update(TrackingNumber(value["number"]), actions=_number_actions(value),
                                  condition=with_number)
                        updates.append((kind, value["number"]))
                if with_account:
                    a = plan.account
                    item = Account(a.account, name=a.name, timezone=a.timezone, config=a.config,
                                   config_hash=a.config_hash, version=a.version, updated_at=a.updated_at,
                                   former_pool_numbers=dict(a.former_pool_numbers) or None)
                    cond = (Account.account.does_not_exist() if plan.expected_version is None
                            else Account.version == plan.expected_version)
                    tx.save(item, condition=cond)
                    puts.append(("account", account))
        except TransactWriteError as exc:
            order = deletes + puts + updates
            reasons = exc.cancellation_reasons or []
            for (kind, value), reason in zip(order, reasons, strict=False):
                if reason is not None and reason.code == "ConditionalCheckFailed":
                    if kind == "put":
                        raise NumberTaken(value) from None
                    raise ConcurrentUpdate() from None
            raise

    def _roll_back(self, plan: ApplyPlan, done: list[tuple[str, Any]]) -> None:
        from calltrack.observability import make_logger

        logger = make_logger("admin")
        for kind, value in done:
            number = value if kind == "delete" else value["number"]
            try:
                previous = plan.previous_rows.get(number)
                if previous is not None:
                    # not over a row another account took meanwhile (it applied the number after this
                    # apply's earlier chunk deleted it): that account's callers would come here
                    mine = plan.account.account
                    _number_model(previous).save(
                        condition=TrackingNumber.number.does_not_exist() | (TrackingNumber.account == mine))
                elif kind == "put":
                    TrackingNumber(number).delete(condition=TrackingNumber.account == plan.account.account)
            except Exception:  # noqa: BLE001 - best effort; report and continue
                logger.exception("apply roll-back failed for one number",
                                 extra={"account": plan.account.account})
