"""PUT /v1/spend: ad spend per account x month x channel (admin or marketer)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from call_records.ports import SpendBook, ports
from calltrack.api import CONFLICT, ERRORS, current_caller, json_response
from calltrack.days import MAX_YEAR, MIN_YEAR, month_start

router = Router()


class SpendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    # no "#" (the key separator), no space at either end (the rollups trim channel names), one line
    channel: str = Field(min_length=1, max_length=64,
                         pattern=r"^[^#\s\x00-\x1f\x7f](?:[^#\x00-\x1f\x7f]*[^#\s\x00-\x1f\x7f])?$")
    amount: float = Field(ge=0, le=1e12, allow_inf_nan=False)
    currency: str = Field(default="JPY", pattern=r"^[A-Z]{3}$")

    @field_validator("month")
    @classmethod
    def _month(cls, value: str) -> str:
        if month_start(value) is None:
            raise ValueError(f"must be YYYY-MM, years {MIN_YEAR}-{MAX_YEAR}")
        return value

    @field_validator("amount")
    @classmethod
    def _cents(cls, value: float) -> float:
        return round(value, 2)  # money; also keeps DynamoDB's number range


class SpendOut(BaseModel):
    account: str
    month: str
    channel: str
    amount: float
    currency: str


def put_spend_row(book: SpendBook, account: str, spend: SpendIn) -> dict[str, Any]:
    # One currency per account: the reports add spend up across channels and months and label the
    # sum with one currency (150,000 JPY + 1,000 USD read "151,000 JPY").
    others = {c for key, c in book.currencies(account).items() if key != f"{spend.month}#{spend.channel}"}
    if others and spend.currency not in others:
        from calltrack.errors import Conflict

        kept = ", ".join(sorted(others))
        raise Conflict(f"currency: this account's spend is in {kept}; send {spend.currency} amounts "
                       f"converted to {kept} (the reports add spend across channels and months)",
                       field="currency")
    amount: float | int = int(spend.amount) if spend.amount == int(spend.amount) else spend.amount
    book.put(account, spend.month, spend.channel, amount, spend.currency)
    return {"account": account, "month": spend.month, "channel": spend.channel, "amount": amount,
            "currency": spend.currency}


@router.put(
    "/v1/spend",
    responses={**ERRORS, **CONFLICT},
    summary="Set the ad spend of one channel for one month (replaces the previous amount)",
)
def put_spend(
    body: SpendIn,
    account: Annotated[str | None, Query(description="Operator token only: the account")] = None,
) -> Response[Any]:
    caller = current_caller(router, "admin", "marketer")
    return json_response(put_spend_row(ports(router).spend, caller.account, body))
