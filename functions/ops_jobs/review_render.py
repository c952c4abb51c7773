"""The monthly review as one self-contained HTML page (no scripts, no external assets).

A table per channel, bar charts drawn with plain CSS widths (calls this month vs the previous
month, lead rate against the thresholds), the review sample and the campaigns on trial.
Every value is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

LABELS = {
    "en": {
        "title": "Monthly channel review",
        "account": "Account",
        "period": "Period",
        "totals": "Totals",
        "channel": "Channel",
        "calls": "Calls",
        "previous_calls": "Previous month",
        "answer_rate": "Answer rate",
        "lead_rate": "Lead rate",
        "close_rate": "Close rate",
        "won_value_per_call": "Won value per call",
        "spend": "Spend",
        "cpa": "CPA",
        "romi": "ROMI",
        "verdict": "Verdict",
        "reason": "Reason",
        "chart_calls": "Calls: this month vs previous month",
        "chart_leads": "Lead rate",
        "sample": "Calls to review (random sample)",
        "started": "Started",
        "campaign": "Campaign",
        "agent": "Agent",
        "stage": "Stage",
        "recording": "Recording",
        "trials": "Campaigns on trial",
        "progress": "Progress",
        "score": "Score",
        "mean_score": "Mean score",
        "pass_score": "Pass line",
        "scored_share": "Scored",
        "trial_verdict": "Verdict",
        "phrases": "What callers talked about (transcripts)",
        "phrase": "Phrase",
        "phrase_calls": "Calls",
        "none": "none",
    },
    "ja": {
        "title": "月次チャネルレビュー",
        "account": "アカウント",
        "period": "期間",
        "totals": "合計",
        "channel": "チャネル",
        "calls": "着信数",
        "previous_calls": "前月",
        "answer_rate": "応答率",
        "lead_rate": "リード率",
        "close_rate": "成約率",
        "won_value_per_call": "1件あたり成約金額",
        "spend": "広告費",
        "cpa": "CPA",
        "romi": "ROMI",
        "verdict": "判定",
        "reason": "理由",
        "chart_calls": "着信数: 今月と前月",
        "chart_leads": "リード率",
        "sample": "レビュー対象の通話 (ランダム抽出)",
        "started": "開始",
        "campaign": "キャンペーン",
        "agent": "担当",
        "stage": "ステージ",
        "recording": "録音",
        "trials": "トライアル中のキャンペーン",
        "progress": "進捗",
        "score": "スコア",
        "mean_score": "平均スコア",
        "pass_score": "合格ライン",
        "scored_share": "採点済み",
        "trial_verdict": "判定",
        "phrases": "お客様がよく話した言葉 (文字起こし)",
        "phrase": "言葉",
        "phrase_calls": "通話数",
        "none": "なし",
    },
}

CSS = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans JP",sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child,td.text{text-align:left}thead th{background:#f3f3f3}
.bar{display:inline-block;height:.8rem;background:#3b7dd8;vertical-align:middle}
.bar.prev{background:#b9c9e0}.bar.lead{background:#2e9e5b}.chart td{border:none;text-align:left}
.v-increase_spend{color:#1d7a3a}.v-review_ad_copy{color:#a15c00}.v-improve_script{color:#8a6d00}
.v-change_channel{color:#b00020}
"""


def _pct(value: Any) -> str:
    return "-" if value is None else f"{round(float(value) * 100)}%"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    return f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"


def _bar(value: float, scale: float, cls: str = "") -> str:
    width = 0 if scale <= 0 else max(0.0, min(100.0, value / scale * 100))
    return f'<span class="bar {cls}" style="width:{width * 3:.0f}px"></span>'


def render_html(review: dict[str, Any], *, japanese: bool = False) -> str:
    t = LABELS["ja" if japanese else "en"]
    from ops_jobs.monthly_review import VERDICTS_JA

    def verdict_text(ch: dict[str, Any]) -> str:
        return VERDICTS_JA.get(ch["verdict"], ch["verdict"]) if japanese else str(ch["verdict"])

    e = escape
    channels = review.get("channels", [])
    out = [
        "<!doctype html>",
        f'<html lang="{"ja" if japanese else "en"}"><head><meta charset="utf-8">',
        f"<title>{e(t['title'])} {e(review['month'])} — {e(str(review.get('name', '')))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(t['title'])} {e(review['month'])}</h1>",
        f"<p>{e(t['account'])}: {e(str(review.get('name', '')))} ({e(str(review.get('account', '')))})"
        f"<br>{e(t['period'])}: {e(str(review.get('from', '')))} – {e(str(review.get('to', '')))}"
        f" ({e(str(review.get('timezone', '')))})</p>",
    ]
    def row_cells(fig: dict[str, Any]) -> str:
        return "".join(f"<td>{_pct(fig.get(c)) if c in pct_cols else _num(fig.get(c))}</td>" for c in cols)

    cols = ["calls", "previous_calls", "answer_rate", "lead_rate", "close_rate", "won_value_per_call",
            "spend", "cpa", "romi"]
    pct_cols = {"answer_rate", "lead_rate", "close_rate", "romi"}
    head = "".join(f"<th>{e(t[c])}</th>" for c in ["channel", *cols, "verdict", "reason"])
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
    for ch in channels:
        cells = row_cells(ch)
        code = e(str(ch.get("verdict_code", "")))
        out.append(
            f"<tr><td>{e(str(ch['channel']))}</td>{cells}"
            f'<td class="text v-{code}"><strong>{e(verdict_text(ch))}</strong></td>'
            f'<td class="text">{e(str(ch.get("reason", "")))}</td></tr>'
        )
    totals = review.get("totals") or {}
    if totals:
        cells = row_cells(totals)
        out.append(f"<tr><th>{e(t['totals'])}</th>{cells}<td></td><td></td></tr>")
    out.append("</tbody></table>")

    # Charts: calls this vs previous month; lead rate against the thresholds.
    scale = max([1] + [max(ch["calls"], ch["previous_calls"]) for ch in channels])
    out.append(f"<h2>{e(t['chart_calls'])}</h2><table class=\"chart\">")
    for ch in channels:
        out.append(
            f"<tr><td>{e(str(ch['channel']))}</td><td>{_bar(ch['calls'], scale)} {ch['calls']}<br>"
            f"{_bar(ch['previous_calls'], scale, 'prev')} {ch['previous_calls']}</td></tr>"
        )
    out.append("</table>")
    out.append(f"<h2>{e(t['chart_leads'])}</h2><table class=\"chart\">")
    for ch in channels:
        lead = float(ch.get("lead_rate") or 0.0)
        out.append(
            f"<tr><td>{e(str(ch['channel']))}</td><td>{_bar(lead, 1.0, 'lead')} {_pct(ch.get('lead_rate'))}"
            f"</td></tr>"
        )
    out.append("</table>")

    out.append(f"<h2>{e(t['sample'])}</h2>")
    sample = review.get("review_sample") or []
    if sample:
        out.append(
            "<table><thead><tr>"
            + "".join(
                f"<th>{e(t[c])}</th>"
                for c in ("started", "channel", "campaign", "agent", "stage", "score", "recording")
            )
            + "</tr></thead><tbody>"
        )
        for s in sample:
            out.append(
                f'<tr><td class="text">{e(str(s.get("started_local", "")))}</td>'
                f'<td class="text">{e(str(s.get("channel") or ""))}</td>'
                f'<td class="text">{e(str(s.get("campaign") or ""))}</td>'
                f'<td class="text">{e(str(s.get("agent") or ""))}</td>'
                f'<td class="text">{e(str(s.get("stage") or ""))}</td>'
                f'<td>{_num(s.get("score"))}</td>'
                f'<td class="text">{e(str(s.get("call_sid", "")))}</td></tr>'
            )
        out.append("</tbody></table>")
    else:
        out.append(f"<p>{e(t['none'])}</p>")

    trials = review.get("trials") or []
    if trials:
        from calltrack.trials import ACTIONS_JA

        head = "".join(f"<th>{e(t[c])}</th>" for c in ("campaign", "progress", "mean_score", "pass_score",
                                                         "scored_share", "trial_verdict"))
        out.append(f"<h2>{e(t['trials'])}</h2><table><thead><tr>{head}</tr></thead><tbody>")
        for tr in trials:
            verdict = tr.get("verdict", "")
            action = ACTIONS_JA.get(verdict, "") if japanese else str(tr.get("action", ""))
            out.append(
                f'<tr><td class="text">{e(str(tr["channel"]))} / {e(str(tr["campaign"]))}</td>'
                f'<td class="text">{_bar(float(tr["progress"]), 1.0)} '
                f'{tr.get("sample_calls", tr["calls"])}/{tr["target"]}</td>'
                f"<td>{_num(tr.get('mean_score'))}</td><td>{_num(tr.get('pass_score'))}</td>"
                f"<td>{_pct(tr.get('scored_share'))}</td>"
                f'<td class="text"><strong>{e(str(verdict))}</strong> {e(action)}</td></tr>'
            )
        out.append("</tbody></table>")
    phrases = review.get("caller_phrases") or []
    if phrases:
        out.append(f"<h2>{e(t['phrases'])}</h2><table><thead><tr><th>{e(t['phrase'])}</th>"
                   f"<th>{e(t['phrase_calls'])}</th></tr></thead><tbody>")
        for p in phrases:
            out.append(f'<tr><td class="text">{e(str(p["phrase"]))}</td><td>{_num(p["calls"])}</td></tr>')
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
