"""Each Lambda declares what it uses (``NEEDS`` beside its handler) and that equals its wiring grants,
so the cold-start check (``calltrack.settings.get_settings(NEEDS)``) names exactly the variables the
stack sets for it."""

from __future__ import annotations

import importlib

import pytest

from calltrack.settings import Needs, Settings, SettingsError, check_needs
from infra.wiring import FUNCTIONS, STREAMS, LambdaFunction


def granted(fn: LambdaFunction) -> Needs:
    consumes_stream = any(stream.consumer == fn.name for stream in STREAMS)
    return Needs(
        tables=tuple(sorted({*fn.tables, *fn.read_only_tables, *fn.update_tables, *fn.append_tables})),
        buckets=tuple(sorted({*fn.buckets, *fn.read_only_buckets})),
        queues=tuple(sorted({*fn.sends_to_queues, *fn.redrives_queues})),
        secrets=tuple(sorted(fn.secrets)),
        ops_topic=fn.publishes_to_ops_topic,
        dead_letter_queues=tuple(sorted({*fn.redrives_queues, *fn.sweeps_dead_letters})),
        account_secrets=fn.account_secrets,
        user_pool=fn.user_pool,
        stream_failures=fn.name if consumes_stream else "",  # its stream's on-failure queue
    )


def declared(fn: LambdaFunction) -> Needs:
    module = importlib.import_module(fn.handler.rsplit(".", 1)[0])
    needs = module.NEEDS
    return Needs(
        tables=tuple(sorted(needs.tables)),
        buckets=tuple(sorted(needs.buckets)),
        queues=tuple(sorted(needs.queues)),
        secrets=tuple(sorted(needs.secrets)),
        ops_topic=needs.ops_topic,
        dead_letter_queues=tuple(sorted(needs.dead_letter_queues)),
        account_secrets=needs.account_secrets,
        user_pool=needs.user_pool,
        stream_failures=needs.stream_failures,
    )


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.name)
def test_what_a_function_declares_it_needs_is_what_its_wiring_grants(fn: LambdaFunction) -> None:
    assert declared(fn) == granted(fn)


@pytest.mark.parametrize("fn", FUNCTIONS, ids=lambda fn: fn.name)
def test_a_deployed_function_missing_a_granted_variable_fails_at_cold_start(fn: LambdaFunction) -> None:
    # Given the deployed environment of this function with one granted variable missing
    needs = declared(fn)
    if not needs.env_vars():  # nothing named by a variable (call_changes without subscribers)
        check_needs(Settings.from_env({}), needs, {})
        return
    env = {name: "set-by-the-stack" for name in needs.env_vars()}
    missing = needs.env_vars()[-1]
    del env[missing]
    # When the function checks its settings at cold start, Then the error names the variable
    with pytest.raises(SettingsError, match=missing):
        check_needs(Settings.from_env(env), needs, env)
    # With every variable set it starts; in local mode the local stack's names stand in
    check_needs(Settings.from_env({**env, missing: "x"}), needs, {**env, missing: "x"})
    local = {**env, "CALLTRACK_LOCAL": "1"}
    check_needs(Settings.from_env(local), needs, local)


def test_the_recording_queue_dead_letters_after_the_backoff_ladder() -> None:
    from infra.wiring import QUEUES
    from recording_ingest.backoff import MAX_RECEIVES, total_window_s

    [recording] = [q for q in QUEUES if q.name == "recording"]
    assert recording.max_receive_count == MAX_RECEIVES
    assert total_window_s() > 24 * 3600  # retries span a day of media-host outage before the DLQ


def test_a_recording_claim_outlives_the_invocation_and_ends_before_its_message_returns() -> None:
    from infra.wiring import QUEUES
    from recording_ingest.ingest import LEASE_SECONDS

    # Given the recordings function and its queue as wired
    [function] = [f for f in FUNCTIONS if f.name == "recording_ingest"]
    [recording] = [q for q in QUEUES if q.name == "recording"]
    # Then no invocation can outlast its claim (a duplicate would fetch and store the MP3 twice),
    # and a crashed invocation's message finds the claim ended when it comes back
    assert function.timeout_s < LEASE_SECONDS < recording.visibility_timeout_s


def test_the_conversions_queue_dead_letters_after_its_backoff_ladder() -> None:
    from calltrack.queue_retry import exponential_delay_s
    from conversions.runtime import BASE_DELAY_S, MAX_DELAY_S, MAX_RECEIVES
    from infra.wiring import CALL_CHANGE_SUBSCRIBERS, QUEUES

    [queue] = [q for q in QUEUES if q.name == "conversions"]
    assert queue.max_receive_count == MAX_RECEIVES and "conversions" in CALL_CHANGE_SUBSCRIBERS
    window = sum(exponential_delay_s(n, BASE_DELAY_S, MAX_DELAY_S) for n in range(1, MAX_RECEIVES))
    assert window > 3 * 3600  # an ad platform's outage of a few hours loses nothing
    assert queue.visibility_timeout_s >= 6 * 60  # six times the function's 60 s timeout


def test_the_webhooks_queue_dead_letters_after_24_hours_of_backoff() -> None:
    from infra.wiring import QUEUES
    from webhooks.backoff import MAX_RECEIVES, total_window_s

    [webhooks] = [q for q in QUEUES if q.name == "webhooks"]
    assert webhooks.max_receive_count == MAX_RECEIVES
    assert total_window_s() == 24 * 3600  # the "up to 24 hours", to the second
