"""As-deployed mode proves what in-process tests cannot: the synthesized roles and limits.

Runs only when the session's stack is an ``AsDeployedStack`` (``CALLTRACK_AS_DEPLOYED=1``,
``make as-deployed``): each function in its own Python 3.12 worker from its synthesized asset and
environment, calling the emulator with its own role's credentials while IAM is enforced.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest

from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID
from tests.support import unique_account, unique_number
from tests.support.accounts import account_config
from tests.support.twilio import voice_form

pytestmark = pytest.mark.skipif(
    os.environ.get("CALLTRACK_AS_DEPLOYED") != "1", reason="as-deployed mode only (CALLTRACK_AS_DEPLOYED=1)"
)

CALLS_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/calltrack-calls"


@pytest.fixture(scope="module")
def stack(local_stack) -> Any:
    return local_stack.stack


@pytest.fixture(scope="module")
def clinic(local_stack) -> tuple[str, str]:
    """(account, its static tracking number)"""
    account, static = unique_account("deployed"), unique_number()
    local_stack.apply(account_config(
        account, forward_to="+81312345678",
        numbers=[{"number": static, "channel": "newspaper", "campaign": "c", "medium": "offline"}],
    ))
    return account, static


@pytest.fixture(scope="module")
def number(clinic) -> str:
    return clinic[1]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def without_action(statements: list[dict[str, Any]], action: str, resource: str) -> list[dict[str, Any]]:
    """The statements with ``action`` no longer granted on ``resource`` (other grants unchanged)."""
    out = []
    for statement in copy.deepcopy(statements):
        resources = _listed(statement["Resource"])
        actions = _listed(statement["Action"])
        if resource not in resources or action not in actions:
            out.append(statement)
            continue
        rest = [r for r in resources if r != resource]
        if rest:
            out.append({**statement, "Resource": rest})
        out.append({**statement, "Resource": resource, "Action": [a for a in actions if a != action]})
    return out


def test_a_call_runs_in_the_webhooks_own_worker_with_its_own_role(local_stack, stack, number):
    # When a call comes in
    form = voice_form(number)
    assert local_stack.twilio_post("/twilio/voice", form).status_code == 200
    # Then the voice webhook's worker served it with its synthesized limits, under its own role
    worker = stack.invoker.workers["voice_webhook"]
    assert worker.process is not None and worker.process.poll() is None
    assert worker.spec.memory_mb == 512 and worker.spec.python.endswith("3.12")
    assert worker.spec.env["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # assumed-role credentials
    used = {(d.role, d.action) for d in stack_used()}
    assert ("calltrack-voice_webhook", "dynamodb:BatchGetItem") in used
    assert form["AccountSid"] == LOCAL_TWILIO_ACCOUNT_SID


def stack_used() -> set[Any]:
    from calltrack_cli.local import emulator_iam

    return set(emulator_iam.USED)


def test_a_missing_grant_fails_the_session_naming_action_and_resource_though_the_webhook_answered_200(
    local_stack, stack, number
):
    from calltrack_cli.local import emulator_iam
    from calltrack_cli.local.as_deployed import AccessDenied, assert_no_denials

    synthesized = stack.statements["voice_webhook"]
    before = len(emulator_iam.DENIALS)
    # Given the voice webhook's synthesized policy without UpdateItem on the calls table
    stack.put_policy("voice_webhook", without_action(synthesized, "dynamodb:UpdateItem", CALLS_TABLE))
    try:
        # When a call comes in
        response = local_stack.twilio_post("/twilio/voice", voice_form(number))
        new = emulator_iam.DENIALS[before:]
    finally:
        stack.put_policy("voice_webhook", synthesized)
        del emulator_iam.DENIALS[before:]  # this test's denials are its subject, not a session failure
    # Then the webhook still answers Twilio 200 (it fails open) ...
    assert response.status_code == 200
    # ... but the session's check fails, naming the function, the action and the resource
    with pytest.raises(AccessDenied) as failure:
        assert_no_denials(new)
    assert f"calltrack-voice_webhook was denied dynamodb:UpdateItem on {CALLS_TABLE}" in str(failure.value)


def test_a_scoped_grant_is_checked_against_the_real_table_arn(stack):
    from botocore.exceptions import ClientError

    # Given the credentials of the voice webhook's role (read-only on the leases table, nothing on
    # the accounts table: every call reads its number's row, never an account's config)
    env = stack.invoker.workers["voice_webhook"].spec.env
    import boto3

    ddb = boto3.session.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url=stack.moto_url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    from calltrack_cli.local import emulator_iam

    before = len(emulator_iam.DENIALS)
    try:
        # When it reads a table it is granted, then writes one it may only read, then reads the
        # accounts table (webhook URLs, every account's config)
        ddb.get_item(TableName="calltrack-leases", Key={"number": {"S": "+815000000000"}})
        with pytest.raises(ClientError) as denied:
            ddb.put_item(TableName="calltrack-leases", Item={"number": {"S": "+815000000000"}})
        with pytest.raises(ClientError) as unread:
            ddb.get_item(TableName="calltrack-accounts", Key={"account": {"S": "nobody"}})
        # Then the read is allowed on the table ARN and the write and the accounts read are denied
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert unread.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert [str(d) for d in emulator_iam.DENIALS[before:]] == [
            "calltrack-voice_webhook was denied dynamodb:PutItem on "
            "arn:aws:dynamodb:us-east-1:123456789012:table/calltrack-leases",
            "calltrack-voice_webhook was denied dynamodb:GetItem on "
            "arn:aws:dynamodb:us-east-1:123456789012:table/calltrack-accounts",
        ]
    finally:
        del emulator_iam.DENIALS[before:]


def test_a_function_that_outlives_its_timeout_is_killed_and_the_api_answers_500(local_stack, stack):
    worker = stack.invoker.workers["report_api"]
    assert local_stack.request("GET", "/openapi.json").status_code == 200  # warm
    timeout, starts = worker.spec.timeout_s, worker.cold_starts
    # Given the report API's Timeout shorter than any request can take
    worker.spec.timeout_s = 0.000001
    try:
        # When a request arrives
        response = local_stack.request("GET", "/openapi.json")
    finally:
        worker.spec.timeout_s = timeout
    # Then its worker was killed and the client got the HTTP API's answer to a failed function
    assert response.status_code == 500 and response.json() == {"message": "Internal Server Error"}
    assert worker.process is None
    # And the next request starts a fresh environment (a cold start) and is served
    assert local_stack.request("GET", "/openapi.json").status_code == 200
    assert worker.cold_starts == starts + 1


def test_the_iam_report_lists_granted_actions_the_run_never_used(local_stack, number):
    # Given a call the voice webhook has served
    assert local_stack.twilio_post("/twilio/voice", voice_form(number)).status_code == 200
    # When the operator asks the running stack for its IAM report
    report = local_stack._local("GET", "/_local/iam")
    # Then what the webhook used is not advice, what it never used is (it never scans a table)
    assert report["denials"] == []
    unused = report["unused"]["voice_webhook"]
    assert "dynamodb:BatchGetItem" not in unused and "dynamodb:Scan" in unused
    # ... and each function's limits from the template are shown with its peak memory
    webhook = next(f for f in report["functions"] if f["function"] == "voice_webhook")
    from infra.wiring import FUNCTIONS

    wired = next(f for f in FUNCTIONS if f.name == "voice_webhook")
    assert (webhook["memory_mb"], webhook["timeout_s"]) == (wired.memory_mb, wired.timeout_s) == (512, 12)
    assert webhook["peak_memory_mb"] > 0


def test_the_outbox_redrive_moves_a_dead_letter_back_under_its_own_role_and_the_call_is_recorded(
    local_stack, stack, clinic
):
    import time

    from calltrack.twilio_edge import TwilioRequest
    from voice_webhook.outbox import message

    # Given an incoming call whose callback outlasted the outbox's retries (in its dead-letter queue)
    account, number = clinic
    form = voice_form(number)
    req = TwilioRequest(method="POST", path="/twilio/voice", query="", headers={}, params=form)
    dead_letter = message(req, time.time() - 3 * 3600)
    stack.client("sqs").send_message(QueueUrl=stack.dlq_urls["webhook_outbox"], MessageBody=dead_letter)
    # When the hourly redrive runs in its own worker, under its own role, and the replay after it
    out = local_stack.run_job("webhook-outbox-dlq-redrive", "2026-12-03T10:40:00Z")
    local_stack.drain()
    # Then the message went back (no denial: the session fails on any) and the call is recorded
    assert out["result"]["redriven"] == 1, out
    used = {(d.role, d.action) for d in stack_used()}
    assert ("calltrack-webhook_outbox_redrive", "sqs:DeleteMessage") in used
    manager = local_stack.create_token(account, "manager")
    call = local_stack.request("GET", f"/v1/calls/{form['CallSid']}", token=manager)
    assert call.status_code == 200 and call.json()["channel"] == "newspaper"
