"""Monthly channel review: decision flow, figures, sample, trials, time zones, storage (fakes only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops_jobs import monthly_review as mr
from ops_jobs.common import AccountInfo, account_info
from tests.support.accounts import InMemoryAccounts, account_config
from tests.support.jobs import JobsWorld
from tests.support.times import TOKYO, tokyo

RUN = datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO).astimezone(UTC)


def info(account: str = "acme", **config: Any) -> AccountInfo:
    accounts = InMemoryAccounts({account: account_config(account, name=account.title(), **config)})
    return account_info(next(accounts.all()))


class World(JobsWorld):
    def add(self, account: str, when: datetime, channel: str, status: str = "answered", **kw: Any) -> None:
        self.add_call(account, when, status, channel=channel, **kw)

    def run(self, at: datetime = RUN, force: bool = False) -> dict[str, Any]:
        return self.run_job(mr, at, force)


def three_channels(world: World, account: str = "acme") -> None:
    """google-ads grows with high quality, flyer falls a little per day (7 calls in October's 31
    days, 6 in November's 30), facebook grows with low quality."""
    for i in range(10):
        world.add(account, tokyo(10, 1 + i), "google-ads")
    for i in range(20):
        lead = {"stage": "won", "value": 50000.0} if i < 4 else ({"stage": "lead"} if i < 8 else {})
        world.add(account, tokyo(11, 1 + i), "google-ads", recording_stored=True, **lead)
    for month in (10, 11):
        for i in range(6):
            world.add(account, tokyo(month, 2 + i), "flyer", stage="lead" if i < 3 else None)
    world.add(account, tokyo(10, 20), "flyer")
    for i in range(5):
        world.add(account, tokyo(10, 3 + i), "facebook")
    for i in range(15):
        world.add(
            account,
            tokyo(11, 1 + i),
            "facebook",
            "missed" if i % 3 == 0 else "answered",
            stage="lead" if i == 0 else None,
        )
    world.spend[(account, "2026-11")] = {"google-ads": 100000.0, "facebook": 30000.0}


def by_channel(review: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {ch["channel"]: ch for ch in review["channels"]}


def test_decision_flow_verdicts_per_channel() -> None:
    world = World()
    three_channels(world)
    review = mr.build_review(info(), "2026-11", world.calls["acme"], world.spend[("acme", "2026-11")], RUN)
    ch = by_channel(review)
    assert ch["google-ads"]["verdict"] == "increase spend"
    assert ch["google-ads"]["quality"] == "high"
    assert ch["google-ads"]["reason"].startswith("calls up: 20 vs 10 in 2026-10 (a day: 0.67 vs 0.32); "
                                                  "quality high")
    assert ch["flyer"]["verdict"] == "review ad copy and targeting"
    assert ch["flyer"]["reason"] == "calls down: 6 vs 7 in 2026-10 (a day: 0.20 vs 0.23)"
    assert ch["facebook"]["verdict"] == "change channel or review cost-effectiveness"
    assert ch["facebook"]["quality"] == "low"


def test_partly_quality_means_review_recordings_and_script() -> None:
    fig = {"calls": 20, "previous_calls": 10, "lead_rate": 0.2, "won_value_per_call": 0}
    assert mr.verdict(fig, info().review, "2026-10")["verdict"] == "review recordings and improve the script"


def test_calls_down_means_review_ad_copy_whatever_the_quality() -> None:
    fig = {"calls": 5, "previous_calls": 10, "lead_rate": 0.9, "won_value_per_call": 1000}
    out = mr.verdict(fig, info().review, "2026-10")
    assert out["verdict"] == "review ad copy and targeting"
    assert out["reason"] == "calls down: 5 vs 10 in 2026-10"


@pytest.mark.parametrize(("calls", "days", "word"), [
    ((280, 310), (28, 31), "flat"),  # ten a day in February and in January: not "down"
    ((310, 280), (31, 28), "flat"),  # and March is not "up" for its three more days
    ((300, 300), (30, 31), "up"),  # the same count in a shorter month is more a day
    ((6, 6), None, "flat"),  # a figure without month lengths compares counts
])
def test_calls_are_compared_per_day_so_a_short_month_is_not_a_fall(
    calls: tuple[int, int], days: tuple[int, int] | None, word: str
) -> None:
    # Given a channel's calls this month and last, in months of these lengths
    fig = {"calls": calls[0], "previous_calls": calls[1], "lead_rate": 0.2, "won_value_per_call": 0}
    if days:
        fig.update(days=days[0], previous_days=days[1])
    # When its verdict is drawn, Then the calls compare per day
    out = mr.verdict(fig, info().review, "the month before")
    assert out["reason"].startswith(f"calls {word}: {calls[0]} vs {calls[1]} in the month before")
    assert (out["verdict"] == "review ad copy and targeting") == (word != "up")


def test_month_lengths_come_with_the_figures() -> None:
    assert [mr.month_days(m) for m in ("2026-02", "2028-02", "2026-11", "2026-12")] == [28, 29, 30, 31]


def test_thresholds_come_from_the_account_review_settings() -> None:
    fig = {"calls": 20, "previous_calls": 10, "lead_rate": 0.2, "won_value_per_call": 0}
    strict = info(review={"lead_rate_high": 0.5, "lead_rate_low": 0.25})
    assert (
        mr.verdict(fig, strict.review, "2026-10")["verdict"] == "change channel or review cost-effectiveness"
    )
    lenient = info(review={"lead_rate_high": 0.15})
    assert mr.verdict(fig, lenient.review, "2026-10")["verdict"] == "increase spend"
    # optional won-value-per-call bar: a high lead rate without value is only "partly"
    valued = info(review={"lead_rate_high": 0.15, "won_value_per_call_high": 1000})
    assert mr.verdict(fig, valued.review, "2026-10")["quality"] == "partly"


def test_channel_figures() -> None:
    world = World()
    three_channels(world)
    review = mr.build_review(info(), "2026-11", world.calls["acme"], world.spend[("acme", "2026-11")], RUN)
    g = by_channel(review)["google-ads"]
    assert g["calls"] == 20 and g["previous_calls"] == 10
    assert g["answer_rate"] == 1.0
    assert g["lead_rate"] == 0.4  # 4 won + 4 lead out of 20
    assert g["close_rate"] == 0.2
    assert g["won_value_per_call"] == 10000.0  # 200000 / 20
    assert g["spend"] == 100000.0
    assert g["cpa"] == 25000.0  # spend per won deal
    assert g["romi"] == 1.0  # (200000 - 100000) / 100000
    f = by_channel(review)["facebook"]
    assert f["answer_rate"] == 0.6667
    assert by_channel(review)["flyer"]["spend"] is None
    assert review["totals"]["calls"] == 41


def test_won_values_in_sen_add_up_to_what_a_person_would_write() -> None:
    # Given three won calls whose values in float add up to 300.29999999999995
    world = World()
    for value in (100.1, 100.1, 100.1):
        world.add("acme", tokyo(11, 3), "flyer", stage="won", value=value)
    review = mr.build_review(info(), "2026-11", world.calls["acme"], {"flyer": 0.1 + 0.2}, RUN)
    # Then the review says 300.3, and the spend 0.3
    assert by_channel(review)["flyer"]["won_value"] == 300.3 == review["totals"]["won_value"]
    assert review["totals"]["spend"] == 0.3


def test_a_call_at_2330_on_the_last_day_in_tokyo_belongs_to_that_month() -> None:
    world = World()
    world.add("acme", tokyo(11, 30, 23, 30), "radio")  # 14:30 UTC on Nov 30
    world.add("acme", tokyo(12, 1, 0, 10), "radio")  # Nov 30 15:10 UTC, but December in Tokyo
    world.add("acme", tokyo(11, 1, 0, 5), "radio")  # Oct 31 15:05 UTC, but November in Tokyo
    review = mr.build_review(info(), "2026-11", world.calls["acme"], {}, RUN)
    assert by_channel(review)["radio"]["calls"] == 2
    assert by_channel(review)["radio"]["previous_calls"] == 0


def test_sample_is_seeded_reproducible_and_only_answered_calls_with_recordings() -> None:
    world = World()
    for i in range(30):
        world.add("acme", tokyo(11, 1 + i % 28, 10), "google-ads", recording_stored=(i % 3 != 0))
    for i in range(5):
        world.add("acme", tokyo(11, 2 + i), "google-ads", "missed", recording_stored=True)
    calls = world.calls["acme"]
    first = mr.build_review(info(), "2026-11", calls, {}, RUN)["review_sample"]
    again = mr.build_review(info(), "2026-11", list(reversed(calls)), {}, RUN)["review_sample"]
    other = mr.build_review(info("other"), "2026-11", calls, {}, RUN)["review_sample"]
    assert len(first) == 5
    assert first == again
    assert [s["call_sid"] for s in first] != [s["call_sid"] for s in other]
    eligible = {c.call_sid for c in calls if c.answered and c.recording_stored}
    assert {s["call_sid"] for s in first} <= eligible
    assert first[0]["recording"] == f"/v1/calls/{first[0]['call_sid']}/recording"
    assert "caller" not in first[0]


def test_sample_size_setting_and_shortfall() -> None:
    world = World()
    for i in range(3):
        world.add("acme", tokyo(11, 1 + i), "flyer", recording_stored=True)
    review = mr.build_review(info(review={"sample_size": 8}), "2026-11", world.calls["acme"], {}, RUN)
    assert len(review["review_sample"]) == 3
    assert review["review_sample_shortfall"] == 5


def test_trial_progress_for_campaigns_started_in_the_last_three_weeks() -> None:
    world = World()
    for i in range(12):
        world.add("acme", tokyo(11, 20) + timedelta(hours=i), "google-ads", campaign="winter-sale")
    for i in range(4):
        world.add("acme", tokyo(10, 5 + i), "google-ads", campaign="brand")
        world.add("acme", tokyo(11, 25 + i), "google-ads", campaign="brand")
    review = mr.build_review(info(), "2026-11", world.calls["acme"], {}, RUN)
    progress_keys = ("channel", "campaign", "first_call_at", "trial_week_ends", "calls", "target", "progress",
                     "remaining", "complete")
    assert [{k: t[k] for k in progress_keys} for t in review["trials"]] == [
        {
            "channel": "google-ads",
            "campaign": "winter-sale",
            "first_call_at": "2026-11-20T03:00:00Z",
            "trial_week_ends": "2026-11-27T03:00:00Z",
            "calls": 12,
            "target": 50,
            "progress": 0.24,
            "remaining": 38,
            "complete": False,
        }
    ]
    assert review["trials"][0]["verdict"] == "in_progress"  # 12 of 50 sample calls


def test_trial_progress_counts_the_answered_calls_the_trial_samples() -> None:
    # Given a campaign on trial with 4 answered and 6 missed calls, against a sample of 10
    world = World()
    for i, status in enumerate(["answered"] * 4 + ["missed"] * 6):
        world.add("acme", tokyo(11, 20) + timedelta(hours=i), "flyer", status=status, campaign="dec-flyer",
                  score=80)
    review = mr.build_review(info(review={"trial_sample_calls": 10}), "2026-11", world.calls["acme"], {}, RUN)
    # Then the trial is 4/10 along, not complete (it said 10/10 complete, verdict in progress)
    [trial] = review["trials"]
    assert (trial["calls"], trial["sample_calls"]) == (10, 4)
    assert (trial["progress"], trial["remaining"], trial["complete"]) == (0.4, 6, False)
    assert trial["verdict"] == "in_progress"


def test_run_stores_json_and_html_and_announces_once() -> None:
    world = World()
    world.add_account("acme", name="Acme Dental", language="ja-JP")
    three_channels(world)
    result = world.run()
    assert result["accounts"]["acme"]["decided"] == "published"
    assert result["accounts"]["acme"]["period"] == "2026-11"
    body, ctype = world.blobs["reviews/acme/2026-11.json"]
    review = json.loads(body)
    assert ctype == "application/json"
    assert review["month"] == "2026-11"
    assert {
        "channel",
        "calls",
        "previous_calls",
        "answer_rate",
        "lead_rate",
        "close_rate",
        "won_value_per_call",
        "spend",
        "cpa",
        "romi",
        "verdict",
        "reason",
    } <= set(review["channels"][0])
    html, html_type = world.blobs["reviews/acme/2026-11.html"]
    assert html_type.startswith("text/html")
    assert "予算を増やす" in html.decode()
    subject, message, attrs = world.published[0]
    assert subject == "[Acme Dental] 月次チャネルレビュー 2026-11: 着信 41件"
    assert "google-ads: 20件 (前月 10件)" in message
    assert attrs == {
        "account": "acme",
        "kind": "monthly-channel-review",
        "month": "2026-11",
        "calls": 41,
        "channels": 3,
    }
    # the same month again publishes nothing; forced it publishes again
    assert world.run(RUN + timedelta(hours=2))["accounts"]["acme"]["decided"] == "already-done"
    assert len(world.published) == 1
    world.run(force=True)
    assert len(world.published) == 2


def test_account_without_calls_or_spend_is_quiet() -> None:
    world = World()
    world.add_account("idle")
    assert world.run()["accounts"]["idle"]["decided"] == "nothing-to-say"
    assert world.published == [] and world.blobs == {}


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO), "2026-11"),
        (datetime(2026, 12, 1, 23, 0, tzinfo=TOKYO), "2026-11"),
        (datetime(2026, 1, 1, 9, 0, tzinfo=TOKYO), "2025-12"),
        (datetime(2026, 12, 1, 8, 59, tzinfo=TOKYO), None),
        (datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO), None),
    ],
)
def test_due_on_the_first_from_0900_local(local: datetime, expected: str | None) -> None:
    assert mr.due(info(), local.astimezone(UTC)) == expected


def test_due_in_another_time_zone() -> None:
    ny = info(timezone="America/New_York")
    assert mr.due(ny, RUN) is None  # Nov 30 19:00 in New York
    assert mr.due(ny, datetime(2026, 12, 1, 14, 0, tzinfo=UTC)) == "2026-11"  # 09:00 EST


def test_trial_verdicts_sampled_scores_and_what_callers_asked() -> None:
    # Given a campaign trial of 3 calls scored below the pass line, and transcribed calls
    world = World()
    world.add_account("acme", language="ja-JP", review={"trial_sample_calls": 3, "pass_score": 70})
    said = ["来週の予約をしたいです", "インプラントの費用を知りたい", "予約と駐車場について", "予約の変更"]
    for i, score in enumerate([40, 50, 60]):
        world.add("acme", tokyo(11, 20 + i), "flyer", campaign="dec-flyer", score=score,
                  recording_stored=True, caller_said=(said[i],))
    world.add("acme", tokyo(11, 25), "google-ads", caller_said=(said[3],))
    # When the review runs
    world.run()
    review = json.loads(world.blobs["reviews/acme/2026-11.json"][0])
    # Then the trial failed against the pass line, with its sampled calls' scores
    [trial] = review["trials"]
    assert (trial["verdict"], trial["mean_score"], trial["pass_score"]) == ("failed", 50.0, 70.0)
    assert [s["score"] for s in trial["sample"]] == [40, 50, 60]
    assert trial["action"] == "fix the script and re-test"
    # ... the review sample shows scores, and callers' topics are counted once per call
    assert {s["score"] for s in review["review_sample"]} <= {40, 50, 60, None}
    assert review["caller_phrases"][0] == {"phrase": "予約", "calls": 3}
    # ... and the announcement and the HTML page say so, in Japanese
    [(_, message, _)] = world.published
    assert "不合格" in message and "予約 (3)" in message
    html = world.blobs["reviews/acme/2026-11.html"][0].decode()
    assert "合格ライン" in html and "予約" in html


def test_caller_phrases_are_kanji_and_katakana_runs_counted_once_per_call() -> None:
    from ops_jobs.caller_phrases import phrases, top_phrases

    # Given what three callers said (one repeats himself)
    calls = [
        ("インプラントの費用はいくらですか。", "インプラントの費用、インプラントの。"),
        ("ホワイトニングの費用を知りたいです。",),
        ("お電話ありがとうございます。",),
    ]
    # Then the topics are the kanji and katakana runs, the grammar (hiragana) and stop words drop
    assert phrases(calls[0][0], "ja-JP") == {"インプラント", "費用"}
    assert phrases(calls[2][0], "ja-JP") == set()
    # ... and a phrase counts once per call, ranked by calls (then by text), at least two calls
    assert top_phrases(calls, "ja-JP") == [{"phrase": "費用", "calls": 2}]
    assert top_phrases([("Do you take insurance?",), ("Is insurance accepted?",)], "en-US") == [
        {"phrase": "insurance", "calls": 2}
    ]


@pytest.mark.parametrize(("lead_rate", "text"), [
    (0.296, "lead rate 29.6% between 10% and 30%"),
    (0.29996, "lead rate 29.9% between 10% and 30%"),  # not "30% between 10% and 30%"
    (0.0999, "lead rate 9.9% < 10%"),  # not "10% < 10%"
    (0.3, "lead rate 30% >= 30%"),
    (0.57, "lead rate 57% >= 30%"),
])
def test_the_reason_shows_the_lead_rate_on_the_side_of_the_threshold_the_verdict_took(
    lead_rate: float, text: str
) -> None:
    fig = {"calls": 20, "previous_calls": 10, "lead_rate": lead_rate, "won_value_per_call": 0}
    assert mr.verdict(fig, info().review, "2026-10")["reason"].endswith(text)


def test_the_answer_rate_divides_by_every_call_as_the_reports_do() -> None:
    # Given a month with one answered call and one whose end never arrived (still ringing)
    world = World()
    world.add("acme", tokyo(11, 3), "flyer")
    world.add("acme", tokyo(11, 4), "flyer", status="ringing")
    # When the review is built, Then its answer rate is 1 of 2, as /v1/reports/channels says
    review = mr.build_review(info(), "2026-11", world.calls["acme"], {}, RUN)
    assert by_channel(review)["flyer"]["answer_rate"] == 0.5


def test_the_previous_month_counts_calls_a_short_retention_has_expired() -> None:

    # Given an account that keeps calls 30 days: October's 30 flyer calls have left the calls
    # table by the review on 1 December, their counts are still in the rollups
    world = JobsWorld()
    world.add_account("brief", timezone="Asia/Tokyo")
    for day in range(1, 31):
        world.add_call("brief", tokyo(10, day, 11), "answered", channel="flyer")
    for day in range(1, 11):
        world.add_call("brief", tokyo(11, day, 11), "answered", channel="flyer")
    world.expired_before["brief"] = tokyo(11, 1, 9)
    # When November is reviewed
    world.run_job(mr, RUN)
    review = json.loads(world.blobs["reviews/brief/2026-11.json"][0])
    # Then flyer's calls went down from October's 30 (they read "up: 10 vs 0": increase spend)
    flyer = next(ch for ch in review["channels"] if ch["channel"] == "flyer")
    assert (flyer["calls"], flyer["previous_calls"]) == (10, 30)
    assert flyer["verdict"] == mr.REVIEW_AD_COPY and review["totals"]["previous_calls"] == 30
