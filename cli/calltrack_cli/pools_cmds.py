"""`calltrack pools advise`: per DNI pool, peak use, the recommended size and what the change costs.

Reads ``GET /v1/reports/pools`` (computed by the dni_lease context): peak concurrent sessions and
utilisation, ``recommended_size`` = ceil(peak sessions / 0.75) (enough numbers for the sessions),
and ``recommended_size_for_accuracy`` (enough for 99% of calls to reach their session: a released
number must rest until its late caller has called, see ``dni_lease.pool_sizing``). The advice is
the larger of the two (``needed_size``), priced with a monthly rental per number. The default
price, US$1.15 per number per month, is the monthly fee of the example number in Twilio's support
article "How much does a phone number cost?" (support.twilio.com/hc/en-us/articles/223182908,
read 2026-11-30): a US local number. Japanese
numbers cost more and prices change, so pass ``--price-per-number`` (and ``--currency``) with your
own, from the Twilio Console or the Pricing API (pricing.twilio.com/v1/PhoneNumbers/Countries/JP).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import typer

from calltrack_cli.admin_cmds import TOKEN_OPTION, URL_OPTION, CliFailure, _exit_with

DEFAULT_PRICE_PER_NUMBER = 1.15
DEFAULT_CURRENCY = "USD"
PRICE_SOURCE = (
    "Twilio support article 223182908 'How much does a phone number cost?' (US local number, read 2026-11-30)"
)

app = typer.Typer(help="DNI pools: sizing advice from their peak use.", no_args_is_help=True)


def needed_size(pool: Mapping[str, Any]) -> int:
    """The size the stack advises for the pool (``advised_size``: enough numbers for its peak
    sessions and for 99% accuracy; its own size when the window had no session). A stack from
    before that key: the same rule here."""
    if pool.get("advised_size") is not None:
        return int(pool["advised_size"])
    size, peak = int(pool.get("size") or 0), int(pool.get("peak_concurrent_sessions") or 0)
    needed = max(int(pool.get("recommended_size") or 0), int(pool.get("recommended_size_for_accuracy") or 0))
    return max(needed, 1) if peak else size


def accuracy_text(pool: Mapping[str, Any]) -> str:
    """The pool's estimated attribution accuracy, as a percentage ("-" without leases)."""
    acc = pool.get("estimated_accuracy")
    return "-" if acc is None else f"{float(acc):.1%}"


def late_calls_text(pool: Mapping[str, Any]) -> str:
    """Where the pool's late calls come from: its own calls, or the model until it has enough."""
    late = pool.get("late_calls") or {}
    if late.get("source") == "calls":
        return f"late calls learned from {late.get('calls')} calls ({late.get('late_calls')} late)"
    if late.get("learns_from"):
        return f"late calls assumed: {late.get('late_calls_seen', 0)} of {late['learns_from']} seen to learn"
    return "late calls assumed (a late-call window under an hour: nothing to learn from)"


def advice(report: Mapping[str, Any], price: float) -> list[dict[str, Any]]:
    """One entry per pool: size, peak, recommended size, the change and its monthly cost."""
    out = []
    for pool in report.get("pools") or []:
        size = int(pool.get("size") or 0)
        recommended = needed_size(pool)  # no session in the window: the size it has
        change = recommended - size
        out.append(
            {
                "pool": pool.get("pool"),
                "channel": pool.get("channel"),
                "size": size,
                "peak_concurrent_sessions": pool.get("peak_concurrent_sessions"),
                "utilisation": pool.get("utilisation"),
                "exhaustions": pool.get("exhaustions"),
                "address_capped": pool.get("address_capped") or 0,
                "estimated_accuracy": pool.get("estimated_accuracy"),
                "recommended_size_for_peak": pool.get("recommended_size"),
                "recommended_size_for_accuracy": pool.get("recommended_size_for_accuracy"),
                "late_calls": pool.get("late_calls"),
                "recommended_size": recommended,
                "change": change,
                "monthly_cost_change": round(change * price, 2),
            }
        )
    return out


def pools_report(base: str, token: str, account: str | None, frm: str | None, to: str | None) -> Any:
    from calltrack_cli.admin_cmds import _request

    params = {k: v for k, v in (("account", account), ("from", frm), ("to", to)) if v}
    return _request("GET", f"{base}/v1/reports/pools", token, None, params=params)


@app.command("advise")
def advise_cmd(
    account: str | None = typer.Option(
        None, "--account", help="Account id (operator tokens must name one)", show_default=False
    ),
    frm: str | None = typer.Option(
        None, "--from", help="First day, YYYY-MM-DD (default 30 days ago)", show_default=False
    ),
    to: str | None = typer.Option(
        None, "--to", help="Last day, YYYY-MM-DD (default today)", show_default=False
    ),
    price: float = typer.Option(
        DEFAULT_PRICE_PER_NUMBER,
        "--price-per-number",
        min=0,
        help=f"Monthly rental of one number (default: {PRICE_SOURCE}; pass your own)",
    ),
    currency: str = typer.Option(DEFAULT_CURRENCY, "--currency", help="Currency of --price-per-number"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Per pool: peak use, estimated attribution accuracy, recommended size (the larger of: numbers
    busy at most 75% of the time at peak; enough for 99% of calls to reach their session on the
    busiest day) and the monthly rental cost of resizing.

    Example: calltrack pools advise --account acme-dental --price-per-number 4.50
    """
    from calltrack_cli.admin_cmds import _resolve

    try:
        base, tok = _resolve(url, token)
        report = pools_report(base, tok, account, frm, to)
    except CliFailure as err:
        _exit_with(err)
    rows = advice(report, price)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "account": report.get("account"),
                    "from": report.get("from"),
                    "to": report.get("to"),
                    "price_per_number": price,
                    "currency": currency,
                    "pools": rows,
                }
            )
        )
        return
    typer.echo(
        f"{report.get('account')}: {report.get('from')} .. {report.get('to')}, "
        f"{price:g} {currency} per number per month"
    )
    if not rows:
        typer.echo("  no pools in this account's config")
    for row in rows:
        util = row["utilisation"]
        verdict = (
            f"add {row['change']} (+{row['monthly_cost_change']:g} {currency}/month)"
            if row["change"] > 0
            else f"could release {-row['change']} ({row['monthly_cost_change']:g} {currency}/month)"
            if row["change"] < 0
            else "keep"
            if row["peak_concurrent_sessions"]
            else "keep (no sessions in the window: is dni.js on the site?)"
        )
        typer.echo(
            f"  {row['pool']}: {row['size']} numbers, peak {row['peak_concurrent_sessions']} sessions "
            f"({'-' if util is None else f'{util:.0%}'} used), {row['exhaustions']} exhaustions, "
            f"estimated accuracy {accuracy_text(row)}; "
            f"recommended {row['recommended_size']} (peak {row['recommended_size_for_peak'] or 0}, "
            f"99% accuracy {row['recommended_size_for_accuracy'] or 0}; {late_calls_text(row)}): {verdict}"
        )
        if row["address_capped"]:
            typer.echo(
                f"    {row['address_capped']} visitors were shown no number: their address already held "
                "dni.max_numbers_per_address of the pool's numbers (raise it if an office or a "
                "carrier's shared address reaches it; a script taking the pool also shows here)"
            )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pools")
