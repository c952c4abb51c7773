"""The monthly review HTML page: readable, localised, escaped, self-contained."""

from __future__ import annotations

from typing import Any

from ops_jobs.review_render import render_html


def review(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account": "acme",
        "name": "Acme <Dental>",
        "month": "2026-11",
        "from": "2026-10-31T15:00:00Z",
        "to": "2026-11-30T15:00:00Z",
        "timezone": "Asia/Tokyo",
        "channels": [
            {
                "channel": "google-ads",
                "calls": 20,
                "previous_calls": 10,
                "answer_rate": 1.0,
                "lead_rate": 0.4,
                "close_rate": 0.2,
                "won_value_per_call": 10000.0,
                "spend": 100000.0,
                "cpa": 25000.0,
                "romi": 1.0,
                "verdict": "increase spend",
                "verdict_code": "increase_spend",
                "reason": "calls up: 20 vs 10 in 2026-10; quality high: lead rate 40% >= 30%",
            },
            {
                "channel": "<script>alert(1)</script>",
                "calls": 1,
                "previous_calls": 3,
                "answer_rate": None,
                "lead_rate": None,
                "close_rate": None,
                "won_value_per_call": None,
                "spend": None,
                "cpa": None,
                "romi": None,
                "verdict": "review ad copy and targeting",
                "verdict_code": "review_ad_copy",
                "reason": "calls down: 1 vs 3 in 2026-10",
            },
        ],
        "totals": {"calls": 21, "previous_calls": 13},
        "review_sample": [
            {
                "call_sid": "CA1",
                "started_local": "2026-11-03T10:00:00+09:00",
                "channel": "google-ads",
                "campaign": None,
                "agent": "sato",
                "stage": "won",
            }
        ],
        "trials": [
            {"channel": "google-ads", "campaign": "winter", "calls": 12, "target": 50, "progress": 0.24}
        ],
    }
    base.update(over)
    return base


def test_english_page_has_a_row_per_channel_with_verdict_and_reason() -> None:
    page = render_html(review())
    assert page.startswith("<!doctype html>")
    assert "<h1>Monthly channel review 2026-11</h1>" in page
    assert "<strong>increase spend</strong>" in page
    assert "calls up: 20 vs 10 in 2026-10" in page
    assert "100,000" in page and "40%" in page
    assert "CA1" in page and "12/50" in page


def test_japanese_page_translates_labels_and_verdicts() -> None:
    page = render_html(review(), japanese=True)
    assert '<html lang="ja">' in page
    assert "月次チャネルレビュー 2026-11" in page
    assert "予算を増やす" in page and "広告文とターゲティングを見直す" in page


def test_everything_is_escaped_and_nothing_external_is_loaded() -> None:
    page = render_html(review())
    assert "<script>" not in page
    assert "&lt;script&gt;" in page and "Acme &lt;Dental&gt;" in page
    assert "http://" not in page and "https://" not in page and "src=" not in page


def test_empty_sample_says_none() -> None:
    assert "<p>none</p>" in render_html(review(review_sample=[], trials=[]))
