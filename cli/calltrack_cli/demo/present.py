"""Prints the demo's results with rich and writes the HTML report (charts as inline SVG, no CDN)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from calltrack_cli.demo.results import Results

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.0f}%"


def _yen(value: Any) -> str:
    return "-" if value is None else f"¥{float(value):,.0f}"


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{float(value):+.2f}"


def channel_table(report: dict[str, Any], title: str, limit: int | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("key", "calls", "answer rate", "leads", "close rate", "won value", "spend", "CPA", "ROMI"):
        table.add_column(col, justify="left" if col == "key" else "right")
    rows = sorted(report["rows"], key=lambda r: -r["calls"])[:limit]
    for r in [*rows, {**report["totals"], "key": "TOTAL"}]:
        table.add_row(
            str(r["key"]),
            str(r["calls"]),
            _pct(r["answer_rate"]),
            str(r["leads"]),
            _pct(r["close_rate"]),
            _yen(r["won_value"]),
            _yen(r["spend"]),
            _yen(r["cpa"]),
            _ratio(r["romi"]),
        )
    return table


def keyword_table(report: dict[str, Any], limit: int = 8) -> Table:
    table = Table(title="Search keywords that led to calls (DNI sessions)", title_justify="left")
    for col in ("keyword", "calls", "answer rate", "leads", "won value"):
        table.add_column(col, justify="left" if col == "keyword" else "right")
    rows = sorted(report["rows"], key=lambda r: -r["calls"])
    for r in [r for r in rows if r["key"] not in ("(none)", "")][:limit]:
        table.add_row(
            str(r["key"]), str(r["calls"]), _pct(r["answer_rate"]), str(r["leads"]), _yen(r["won_value"])
        )
    return table


def heatmap_table(heatmap: dict[str, Any]) -> Table:
    grid = heatmap["grid"]
    hours = [h for h in range(24) if any(grid[d][h] for d in range(7))] or list(range(9, 19))
    table = Table(
        title=f"Missed calls by weekday x hour ({heatmap.get('timezone', '')})", title_justify="left"
    )
    table.add_column("")
    for h in hours:
        table.add_column(f"{h:02d}", justify="right")
    peak = max((grid[d][h] for d in range(7) for h in hours), default=0) or 1
    for d in range(7):
        cells = []
        for h in hours:
            v = grid[d][h]
            style = "bold red" if v >= peak * 0.6 and v else ("yellow" if v else "dim")
            cells.append(f"[{style}]{v}[/]")
        table.add_row(WEEKDAYS[d], *cells)
    return table


def review_table(review: dict[str, Any]) -> Table:
    table = Table(title=f"Monthly channel review {review.get('month')}", title_justify="left")
    for col in ("channel", "calls", "prev", "lead rate", "verdict"):
        table.add_column(col)
    for ch in review.get("channels", []):
        table.add_row(
            ch["channel"],
            str(ch.get("calls")),
            str(ch.get("previous_calls")),
            _pct(ch.get("lead_rate")),
            f"{ch.get('verdict')}: {ch.get('reason')}",
        )
    return table


def print_results(console: Console, res: Results) -> None:
    console.print(channel_table(res.channels, f"Calls by channel, {res.month_from} .. {res.month_to}"))
    console.print(keyword_table(res.keywords))
    console.print(heatmap_table(res.heatmap))
    t = res.tagging
    console.print(
        f"CRM phone leads tagged with their source: {t.get('tagged')}/{t.get('leads')} "
        f"= {_pct(t.get('tagged_rate'))} (target {_pct(t.get('target'))})"
    )
    console.print(review_table(res.review))
    sample = res.review.get("review_sample") or []
    console.print(f"Calls drawn for this month's manager review: {len(sample)}")
    console.print(f"Ops alerts published ({len(res.alerts)}):")
    for msg in res.alerts:
        subject = str(msg.get("subject") or "")
        first = str(msg.get("message") or "").splitlines()[0][:100] if msg.get("message") else ""
        console.print(f"  • {subject}" + (f" — {first}" if first and first not in subject else ""))
    console.print(conversions_table(res.conversions))
    acc = res.accuracy
    console.print(
        f"[bold]Attribution accuracy vs the simulation's ground truth: {100 * acc['rate']:.1f}% "
        f"({acc['correct']}/{acc['calls']} calls with the right channel, campaign and keyword)[/]"
    )


def conversions_table(counts: dict[str, dict[str, int]]) -> Table:
    """Sent / failed / skipped per destination (pending: still being retried)."""
    table = Table(title="Conversions sent to the ad platforms (GET /v1/conversions)")
    for col in ("destination", "sent", "failed", "skipped", "pending"):
        table.add_column(col, justify="left" if col == "destination" else "right")
    for destination in ("google_ads", "yahoo_ads", "meta", "ga4"):
        row = counts.get(destination) or {}
        table.add_row(destination, *(str(row.get(s, 0)) for s in ("sent", "failed", "skipped", "pending")))
    return table


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _bars(rows: list[tuple[str, float]], unit: str = "", color: str = "#2b6cb0") -> str:
    width, bar_h = 560, 22
    top = max((abs(v) for _, v in rows), default=1) or 1
    out = [f'<svg width="{width + 200}" height="{bar_h * len(rows) + 10}" role="img">']
    for i, (label, value) in enumerate(rows):
        w = int(width * abs(value) / top)
        fill = color if value >= 0 else "#c53030"
        y = i * bar_h
        out.append(
            f'<text x="0" y="{y + 15}" font-size="12">{html.escape(label)}</text>'
            f'<rect x="150" y="{y + 3}" width="{w}" height="{bar_h - 6}" fill="{fill}"/>'
            f'<text x="{155 + w}" y="{y + 15}" font-size="12">{_num(value)}{unit}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def write_html(res: Results, path: Path) -> Path:
    rows = sorted(res.channels["rows"], key=lambda r: -r["calls"])
    grid = res.heatmap["grid"]
    peak = max((v for row in grid for v in row), default=0) or 1
    heat = ["<table class=heat><tr><th></th>" + "".join(f"<th>{h}</th>" for h in range(8, 21)) + "</tr>"]
    for d in range(7):
        cells = "".join(
            f'<td style="background: rgba(197,48,48,{grid[d][h] / peak:.2f})">{grid[d][h] or ""}</td>'
            for h in range(8, 21)
        )
        heat.append(f"<tr><th>{WEEKDAYS[d]}</th>{cells}</tr>")
    heat.append("</table>")
    totals = res.channels["totals"]
    funnel = [
        ("calls", totals["calls"]),
        ("answered", totals["answered"]),
        ("leads", totals["leads"]),
        ("opportunities", totals.get("opportunities", 0)),
        ("won", totals["won"]),
    ]
    review_rows = "".join(
        f"<tr><td>{html.escape(c['channel'])}</td><td>{c.get('calls')}</td><td>{c.get('previous_calls')}</td>"
        f"<td>{html.escape(str(c.get('verdict')))}</td><td>{html.escape(str(c.get('reason')))}</td></tr>"
        for c in res.review.get("channels", [])
    )
    table_rows = "".join(
        f"<tr><td>{html.escape(str(r['key']))}</td><td>{r['calls']}</td><td>{_pct(r['answer_rate'])}</td>"
        f"<td>{r['leads']}</td><td>{_pct(r['close_rate'])}</td><td>{_yen(r['spend'])}</td><td>{_yen(r['cpa'])}</td>"
        f"<td>{_ratio(r['romi'])}</td></tr>"
        for r in rows
    )
    doc = f"""<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>calltrack demo report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:right}} td:first-child{{text-align:left}}
.heat td{{width:28px;text-align:center}} .review td{{text-align:left}}</style></head><body>
<h1>calltrack demo — {html.escape(res.month_from)} .. {html.escape(res.month_to)}</h1>
<p>Every figure on this page was read from the calltrack API at {html.escape(res.api_url)}.
Attribution accuracy against the simulation: {100 * res.accuracy["rate"]:.1f}%.</p>
<h2>Channels</h2><table><tr><th>channel</th><th>calls</th><th>answer rate</th><th>leads</th>
<th>close rate</th><th>spend</th><th>CPA</th><th>ROMI</th></tr>{table_rows}</table>
<h3>Calls by channel</h3>{_bars([(str(r["key"]), float(r["calls"])) for r in rows])}
<h3>ROMI by channel</h3>{_bars([(str(r["key"]), float(r["romi"])) for r in rows if r["romi"] is not None])}
<h2>Missed calls, weekday x hour</h2>{"".join(heat)}
<h2>Funnel</h2>{_bars([(k, float(v)) for k, v in funnel], color="#2f855a")}
<h2>Monthly review {html.escape(str(res.review.get("month")))}</h2>
<table class=review><tr><th>channel</th><th>calls</th><th>previous</th><th>verdict</th><th>reason</th></tr>
{review_rows}</table>
</body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
