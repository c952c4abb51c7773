"""Given the synthesized stack, every resource has the properties that keep data safe and calls flowing."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aws_cdk.assertions import Match

from infra.wiring import WIRING

# Actions without resource-level permissions (AWS service authorization reference).
# Actions without a resource type in IAM (Resource "*" is the only form AWS accepts)
XRAY_AND_STREAM_ACTIONS = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams", "ssm:DescribeParameters",
    "transcribe:StartTranscriptionJob",  # conditioned on its output bucket and key (test below)
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _functions_by_service(synth: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for res in synth.resources("AWS::Lambda::Function").values():
        env = res["Properties"].get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_SERVICE_NAME" in env:
            out[env["POWERTOOLS_SERVICE_NAME"]] = res
    return out


def test_every_table_is_on_demand_with_pitr_encryption_and_deletion_protection(synth):
    tables = synth.resources("AWS::DynamoDB::Table")
    assert tables
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert props["DeletionProtectionEnabled"] is True, logical_id
        assert table["DeletionPolicy"] == "Retain", logical_id
        assert "TableName" not in props, f"{logical_id}: names are generated and passed as env"


def test_calls_table_streams_new_and_old_images_and_lease_history_expires(synth):
    synth.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "call_sid", "KeyType": "HASH"}],
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
            "GlobalSecondaryIndexes": Match.array_with(
                [Match.object_like({"IndexName": "by-account", "Projection": {"ProjectionType": "ALL"}})]
            ),
        },
    )
    synth.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": Match.array_with([{"AttributeName": "number", "KeyType": "HASH"}]),
            "TimeToLiveSpecification": {"AttributeName": "expire_at", "Enabled": True},
        },
    )


def test_buckets_are_private_tls_only_encrypted_and_access_logged(synth):
    buckets = synth.resources("AWS::S3::Bucket")
    assert len(buckets) == 5  # recordings, exports, routing snapshot, access logs, console pages
    logging_targets = set()
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert bucket["DeletionPolicy"] == "Retain", logical_id
        if "LoggingConfiguration" in props:
            logging_targets.add(json.dumps(props["LoggingConfiguration"]["DestinationBucketName"]))
            rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            if logical_id.startswith("ConsolePages"):  # the console's static pages: SSE-S3, read by OAC
                assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
                continue
            assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", logical_id
            assert rule["BucketKeyEnabled"] is True
    assert len(logging_targets) == 1, "every data bucket logs to the one access-log bucket"
    policies = synth.resources("AWS::S3::BucketPolicy")
    tls_denied = [
        p
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(tls_denied) == len(buckets)


def test_recordings_bucket_is_versioned_with_noncurrent_expiry(synth):
    synth.assertions.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}})]
                )
            },
        },
    )


def test_transcribe_output_left_behind_in_the_recordings_bucket_expires(synth):
    # Transcribe's output JSON of a call erased (or re-recorded) while its job ran is never
    # deleted by the pipeline: the bucket expires what is left under the output prefix
    from infra.stack import TRANSCRIPT_OUTPUT_DAYS, TRANSCRIPT_OUTPUT_PREFIX
    from transcripts.engine import output_key

    assert output_key("recordings/acme/2026/11/CA1/RE1.mp3").startswith(TRANSCRIPT_OUTPUT_PREFIX)
    synth.assertions.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({
                "Prefix": TRANSCRIPT_OUTPUT_PREFIX,
                "ExpirationInDays": TRANSCRIPT_OUTPUT_DAYS,
                "Status": "Enabled",
            })])},
        },
    )


def test_each_wiring_queue_has_a_dlq_and_all_queues_are_encrypted_and_tls_only(synth):
    queues = synth.resources("AWS::SQS::Queue")
    for logical_id, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, logical_id
    with_dlq = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(with_dlq) == len(WIRING.queues)
    for wired, queue in zip(WIRING.queues, with_dlq, strict=True):
        assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == wired.max_receive_count
        assert queue["Properties"]["VisibilityTimeout"] == wired.visibility_timeout_s
    enforce = [
        s
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert len(enforce) == len(queues)


def test_queue_consumers_report_batch_item_failures(synth):
    mappings = synth.resources("AWS::Lambda::EventSourceMapping").values()
    assert len(mappings) == len(WIRING.queues) + len(WIRING.streams)
    for mapping in mappings:
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_a_queue_backlog_cannot_take_the_concurrency_the_voice_webhook_needs(synth):
    # Given the queues' event sources (a DLQ redriven after an outage puts its whole backlog back)
    queue_mappings = [m["Properties"] for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
                      if "StartingPosition" not in m["Properties"]]
    assert len(queue_mappings) == len(WIRING.queues)
    # Then each scales to a bounded number of consumers, and together to a small share of the
    # account's default concurrency (1,000; 10 on some new accounts: the webhook keeps headroom
    # over the stream consumers' one per shard)
    limits = [m.get("ScalingConfig", {}).get("MaximumConcurrency") for m in queue_mappings]
    assert all(isinstance(n, int) and 2 <= n <= 10 for n in limits), limits
    assert sum(limits) <= 20


def test_stream_consumers_retry_send_failures_to_a_queue_and_the_rollup_does_not_bisect(synth):
    functions = synth.resources("AWS::Lambda::Function").items()
    logical_ids = {
        res["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: logical_id
        for logical_id, res in functions
        if "POWERTOOLS_SERVICE_NAME" in res["Properties"].get("Environment", {}).get("Variables", {})
    }
    by_function = {
        m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if "StartingPosition" in m["Properties"]
    }
    assert len(by_function) == len(WIRING.streams)
    for stream in WIRING.streams:
        props = by_function[logical_ids[stream.consumer]]
        assert props["MaximumRetryAttempts"] == 5
        assert props["MaximumRecordAgeInSeconds"] == 20 * 3600
        assert props["StartingPosition"] == "TRIM_HORIZON"
        assert props["DestinationConfig"]["OnFailure"]["Destination"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        # The rollup counts exactly once per batch: a retry must start at the batch's first record
        # or at the record it reported, never inside a committed transaction (bisecting would)
        assert props["BisectBatchOnFunctionError"] is (stream.consumer != "rollup"), stream.consumer


def test_each_stream_consumer_replays_its_own_failures_queue(synth):
    # Given the synthesized stack, for every calls-stream consumer
    from calltrack.settings import stream_failures_env

    by_service = _functions_by_service(synth)
    functions = synth.resources("AWS::Lambda::Function")
    policies = synth.resources("AWS::IAM::Policy").values()
    destinations = set()
    for stream in WIRING.streams:
        fn = by_service[stream.consumer]
        fn_id = next(k for k, v in functions.items() if v is fn)
        [mapping] = [
            m["Properties"] for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["FunctionName"] == {"Ref": fn_id} and "StartingPosition" in m["Properties"]
        ]
        # Then Lambda records its skipped batches in a queue of its own
        queue_arn = mapping["DestinationConfig"]["OnFailure"]["Destination"]
        queue_id = queue_arn["Fn::GetAtt"][0]
        destinations.add(queue_id)
        # And the function is told that queue's URL (the hourly replay reads it)
        env = fn["Properties"]["Environment"]["Variables"]
        assert env[stream_failures_env(stream.consumer)] == {"Ref": queue_id}, stream.consumer
        # And its role may receive and delete there (ReceiveMessage, DeleteMessage, visibility)
        role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        actions = {
            action
            for policy in policies
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for st in policy["Properties"]["PolicyDocument"]["Statement"]
            if queue_arn in (st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]])
            for action in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
        }
        assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= actions
        # And a schedule runs its replay hourly
        assert any(s.function == stream.consumer and s.name.startswith("stream-failures-")
                   for s in WIRING.schedules), stream.consumer
    assert len(destinations) == len(WIRING.streams)  # one queue each: no consumer replays another's


def test_a_skipped_stream_batch_is_still_on_the_stream_for_the_replay():
    # Lambda skips records at the mapping's maximum age; the stream keeps them 24 hours, so the
    # hourly replay has hours left to read them back
    from infra.components.reporting import MAX_RECORD_AGE_HOURS

    assert MAX_RECORD_AGE_HOURS <= 24 - 3


def test_functions_are_python312_arm64_traced_with_the_layer_and_wiring_sizes(synth):
    by_service = _functions_by_service(synth)
    assert set(by_service) == {fn.name for fn in WIRING.functions}
    for fn in WIRING.functions:
        props = by_service[fn.name]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Handler"] == fn.handler
        assert props["MemorySize"] == fn.memory_mb
        assert props["Timeout"] == fn.timeout_s
        assert len(props["Layers"]) == 1
        assert "LoggingConfig" in props, "each function logs to its own log group"


def test_log_groups_have_retention(synth):
    groups = synth.resources("AWS::Logs::LogGroup")
    assert len(groups) >= len(WIRING.functions) + 2  # + fallback + API access logs
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == 90, logical_id


def test_each_function_gets_env_for_exactly_the_tables_it_is_wired_to(synth):
    by_service = _functions_by_service(synth)
    for fn in WIRING.functions:
        env = by_service[fn.name]["Properties"]["Environment"]["Variables"]
        tables = {k.removeprefix("CALLTRACK_TABLE_").lower() for k in env if k.startswith("CALLTRACK_TABLE_")}
        wired = {*fn.tables, *fn.read_only_tables, *fn.update_tables, *fn.append_tables}
        assert tables == wired | ({"idempotency"} if fn.idempotency else set())
        assert ("CALLTRACK_OPS_TOPIC_ARN" in env) == fn.publishes_to_ops_topic
        for queue in fn.sends_to_queues:
            assert f"CALLTRACK_{queue.upper()}_QUEUE_URL" in env
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "calltrack"
        assert "CALLTRACK_PUBLIC_URL" in env
        assert env["TWILIO_ACCOUNT_SID"].startswith("AC")
        assert not any(
            k in env for k in ("TWILIO_AUTH_TOKEN", "TWILIO_API_SECRET", "CALLTRACK_ADMIN_TOKEN")
        ), "secret values never reach the template; only parameter names do"


def test_secrets_are_parameter_names_granted_per_function(synth):
    by_service = _functions_by_service(synth)
    env = by_service["voice_webhook"]["Properties"]["Environment"]["Variables"]
    assert env["TWILIO_AUTH_TOKEN_PARAM"] == "/calltrack/twilio-auth-token"
    policies = json.dumps(synth.resources("AWS::IAM::Policy"))
    assert "parameter/calltrack/twilio-auth-token" in policies
    assert "parameter/calltrack/twilio-api-secret" in policies


def test_account_secrets_are_granted_by_path_and_never_the_stacks_own_parameters(synth):
    from infra.wiring import FUNCTIONS

    ssm_statements: dict[str, list[tuple[list[str], str]]] = {}
    for logical_id, statement in _statements(synth):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            if action.startswith("ssm:"):
                ssm_statements.setdefault(logical_id, []).append((actions, json.dumps(statement["Resource"])))
    for fn in FUNCTIONS:
        prefix = f"Functions{''.join(p.capitalize() for p in fn.name.split('_'))}Role"
        grants = [g for lid, gs in ssm_statements.items() if lid.startswith(prefix) for g in gs]
        account_grants = [(a, r) for a, r in grants if "parameter/calltrack/*/*" in r]
        if fn.account_secrets == "":
            assert not account_grants, fn.name
            continue
        actions = {a for acts, _ in account_grants for a in acts}
        # Then readers may only read, the admin API only write and account deletion only delete
        # (listing names is metadata only): nobody but a reader sees a value
        expected = {"read": {"ssm:GetParameter"}, "write": {"ssm:PutParameter"},
                    "erase": {"ssm:DeleteParameter", "ssm:DeleteParameters"}}[fn.account_secrets]
        assert actions == expected, fn.name
        # And no account-secret grant is a bare /calltrack/* that would cover /calltrack/admin-token
        assert not any(r.endswith('parameter/calltrack/*"]]}') for _, r in grants), fn.name


def _statements(synth: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            out.append((logical_id, statement))
    return out


def test_iam_has_no_star_resource_where_a_resource_name_exists(synth):
    for logical_id, statement in _statements(synth):
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if "*" in resources:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert set(actions) <= XRAY_AND_STREAM_ACTIONS, (logical_id, actions)
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            assert not action.endswith(":*"), (logical_id, action)
    assert not synth.resources("AWS::IAM::ManagedPolicy")
    for logical_id, role in synth.resources("AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{logical_id}: no managed policies"


@pytest.mark.parametrize("role", ["FunctionsVoiceWebhookRole", "FunctionsWebhookReplayRole"])
def test_webhook_roles_may_only_advance_counters_on_the_numbers_table(synth, role):
    # Given the voice webhook and its replay advance a flow's round-robin turn on the number's
    # row (UpdateItem ADD, in the call's own write), when we look at their policies,
    # then UpdateItem is the one write they may make to the numbers table (it was none: every
    # round-robin call's write was refused in AWS and went to the outbox for good)
    stack = synth.stack
    numbers_id = stack.resolve(stack.data.tables["numbers"].table_arn)["Fn::GetAtt"][0]
    policy = next(p for lid, p in synth.resources("AWS::IAM::Policy").items() if lid.startswith(role))
    writes = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if numbers_id in json.dumps(statement["Resource"]):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            writes |= {a for a in actions if re.search(r"Put|Update|Delete|BatchWrite", a)}
    assert writes == {"dynamodb:UpdateItem"}


def test_http_api_stage_is_throttled_and_access_logged(synth):
    synth.assertions.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AutoDeploy": True,
            "DefaultRouteSettings": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100},
            "AccessLogSettings": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("requestId"),
            },
        },
    )
    for integration in synth.resources("AWS::ApiGatewayV2::Integration").values():
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"


def test_routes_have_no_gateway_authorizer_consistently(synth):
    for route in synth.resources("AWS::ApiGatewayV2::Route").values():
        assert route["Properties"].get("AuthorizationType", "NONE") == "NONE"


_DOW = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def _field_matches(field: str, value: int) -> bool:
    """One EventBridge cron field (*, ?, n, a-b, a/b, lists, day names) against a value."""
    for part in field.split(","):
        if part in ("*", "?"):
            return True
        base, _, step = part.partition("/")
        for name, number in _DOW.items():
            base = base.replace(name, str(number))
        if base == "*":
            lo, hi = 0, 59
        elif "-" in base:
            lo, hi = (int(x) for x in base.split("-"))
        else:
            lo = hi = int(base)
        if step:
            hi = 59 if "-" not in base else hi
        if lo <= value <= hi and (value - lo) % int(step or 1) == 0:
            return True
    return False


def cron_fires_at(expression: str, when: datetime) -> bool:
    """Whether an EventBridge ``cron(min hour dom month dow year)`` fires at ``when`` (UTC)."""
    minute, hour, dom, month, dow, _year = expression.removeprefix("cron(").removesuffix(")").split()
    return (
        _field_matches(minute, when.minute)
        and _field_matches(hour, when.hour)
        and _field_matches(dom, when.day)
        and _field_matches(month, when.month)
        and _field_matches(dow, when.isoweekday() % 7 + 1)
    )


def test_cron_matcher_understands_eventbridge_fields():
    monday_0000 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert cron_fires_at("cron(0 0 ? * MON *)", monday_0000)
    assert cron_fires_at("cron(0 * ? * SUN-TUE *)", monday_0000)
    assert not cron_fires_at("cron(0 0 ? * TUE *)", monday_0000)
    assert not cron_fires_at("cron(5 * * * ? *)", monday_0000)


def test_schedules_fire_at_09_jst_on_their_day_with_the_job_input(synth):
    # Given the weekly and monthly jobs, when it is 09:00 in Tokyo (00:00 UTC) on a Monday /
    # on the 1st, then their rule fires and sends {"job", "time": <event time>, "force": false}.
    rules = {}
    for rule in synth.resources("AWS::Events::Rule").values():
        if "ScheduleExpression" not in rule["Properties"]:
            continue  # an event rule (AWS service events onto a queue)
        target = rule["Properties"]["Targets"][0]
        transformer = target["InputTransformer"]
        assert transformer["InputPathsMap"] == {"time": "$.time"}
        payload = json.loads(transformer["InputTemplate"].replace("<time>", '"T"'))
        assert payload["time"] == "T" and payload["force"] is False
        rules[payload["job"]] = rule["Properties"]["ScheduleExpression"]
    tokyo = ZoneInfo("Asia/Tokyo")
    monday_9_jst = datetime(2026, 11, 30, 9, 0, tzinfo=tokyo).astimezone(UTC)
    first_9_jst = datetime(2026, 12, 1, 9, 0, tzinfo=tokyo).astimezone(UTC)
    assert (monday_9_jst.hour, monday_9_jst.minute) == (0, 0)
    assert cron_fires_at(rules["weekly-unanswered-alert"], monday_9_jst)
    assert cron_fires_at(rules["monthly-channel-review"], first_9_jst)


def test_ops_topic_is_kms_encrypted_and_tls_only(synth):
    synth.assertions.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    synth.assertions.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )
    synth.assertions.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_alarms_notify_the_ops_topic(synth):
    alarms = synth.resources("AWS::CloudWatch::Alarm")
    by_metric = {
        (a["Properties"].get("Namespace"), a["Properties"].get("MetricName")): a for a in alarms.values()
    }
    assert ("AWS/Lambda", "Errors") in by_metric
    assert ("AWS/ApiGateway", "5xx") in by_metric
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in by_metric
    missed = by_metric[("calltrack", "CallsMissed")]["Properties"]
    assert missed["Dimensions"] == [{"Name": "service", "Value": "voice_webhook"}]
    assert missed["Period"] == 3600 and missed["Statistic"] == "Sum"
    sqs_alarms = [
        a
        for a in alarms.values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(sqs_alarms) == len(WIRING.queues) + len(WIRING.streams)  # each DLQ + stream failures
    # every scheduled job's function: a failed run (a retention sweep, an export) pages ops
    by_service = _functions_by_service(synth)
    functions = synth.resources("AWS::Lambda::Function")
    erroring = {
        json.dumps(a["Properties"]["Dimensions"]) for a in alarms.values()
        if a["Properties"].get("MetricName") == "Errors"
    }
    for schedule in WIRING.schedules:
        fn_id = next(k for k, v in functions.items() if v is by_service[schedule.function])
        assert json.dumps([{"Name": "FunctionName", "Value": {"Ref": fn_id}}]) in erroring, schedule.name
    topic_id = next(iter(synth.resources("AWS::SNS::Topic")))
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], logical_id


def test_every_alarm_has_a_row_in_the_readmes_runbook(synth):
    # Given the README's "When an alarm fires" table (what happened, what to do)
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    runbook = text[text.index("### When an alarm fires"):text.index("\n## Performance")]
    # Then every alarm of the stack is named there (a scheduled function's Errors by its function)
    for logical_id in synth.resources("AWS::CloudWatch::Alarm"):
        alarm = re.sub(r"^Monitoring|[0-9A-F]{8}$", "", logical_id)
        function = alarm.removesuffix("Errors")
        assert f"`{alarm}`" in runbook or (function != alarm and f"`{function}`" in runbook), alarm


def test_quiet_failures_and_stream_lag_alarm(synth):
    alarms = [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]

    def custom(name: str) -> dict[str, Any]:
        [alarm] = [a for a in alarms if a.get("Namespace") == "calltrack" and a.get("MetricName") == name]
        return alarm

    # The webhook's fail-open answers (200 to Twilio, so no Errors or 5xx) and its lost callbacks
    for name in ("WebhookFailures", "WebhookCallbacksLost"):
        alarm = custom(name)
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "voice_webhook"}]
        assert alarm["Threshold"] == 1 and alarm["Statistic"] == "Sum"
    # Scheduled jobs that failed for an account
    assert custom("JobAccountFailures")["Dimensions"] == [{"Name": "service", "Value": "ops_jobs"}]
    # Every stream consumer falling 5 minutes behind
    lag = [a for a in alarms if a.get("MetricName") == "IteratorAge"]
    lagging = {json.dumps(a["Dimensions"]) for a in lag}
    by_service = _functions_by_service(synth)
    for stream in WIRING.streams:
        fn_id = next(k for k, v in synth.resources("AWS::Lambda::Function").items()
                     if v is by_service[stream.consumer])
        assert json.dumps([{"Name": "FunctionName", "Value": {"Ref": fn_id}}]) in lagging, stream.consumer
    assert all(a["Threshold"] == 300_000 and a["Statistic"] == "Maximum" for a in lag)


def test_one_ops_dashboard_shows_traffic_quiet_failures_latency_recordings_dead_letters_and_pools(synth):
    [dashboard] = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for title in ("Calls per minute", "Fail-open answers", "Voice webhook latency", "Recording ingest",
                  "Dead-letter queue depth", "DNI pool exhaustions"):
        assert title in body, title
    for metric in ("CallsReceived", "WebhookFailures", "RecordingIngestFailures", "PoolExhausted",
                   "AddressCapped", "ApproximateNumberOfMessagesVisible"):
        assert metric in body, metric
    assert "p99" in body
    # every dead-letter queue is on it
    assert body.count("ApproximateNumberOfMessagesVisible") >= len(WIRING.queues) + 1


def test_outputs_give_the_twilio_and_dni_urls(synth):
    outputs = synth.template["Outputs"]
    by_suffix = {}
    for key, output in outputs.items():
        by_suffix[re.sub(r"[0-9A-F]{8}$", "", key)] = json.dumps(output["Value"])
    for name, path in (
        ("VoiceVoiceWebhookUrl", "/twilio/voice"),
        ("VoiceCallStatusCallbackUrl", "/twilio/call-status"),
        ("VoiceFallbackTwimlUrl", "/twilio/fallback"),
        ("DniDniScriptUrl", "/dni.js"),
    ):
        assert name in by_suffix, sorted(by_suffix)
        assert path in by_suffix[name]


FALLBACK_URL = "https://calls.example.jp/twilio/fallback"
TWILIO_TOKEN = "fallback-test-auth-token"


@pytest.fixture
def fallback(monkeypatch):
    """The fallback function's module, configured as deployed, its auth token already read."""
    from infra.components import fallback_twiml

    monkeypatch.setenv("FALLBACK_FORWARD_TO", "+81312345678")
    monkeypatch.setenv("PUBLIC_URL", "https://calls.example.jp/")
    monkeypatch.setattr(fallback_twiml, "_token", [[TWILIO_TOKEN], time.time()])
    return fallback_twiml


def _twilio_post(params: dict[str, str], signature: str | None) -> dict[str, Any]:
    from urllib.parse import urlencode

    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    return {"rawPath": "/twilio/fallback", "rawQueryString": "", "headers": headers,
            "body": urlencode(params)}


def test_the_fallback_dials_the_business_for_a_request_twilio_signed(fallback):
    from twilio.request_validator import RequestValidator

    # Given Twilio's fallback request, signed by Twilio's own library with the account's token
    params = {"CallSid": "CA" + "1" * 32, "From": "+819011112222", "To": "+815011112222"}
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(FALLBACK_URL, params)
    # When the fallback function answers it
    response = fallback.handler(_twilio_post(params, signed), None)
    # Then it is TwiML dialling the business directly
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/xml")
    assert ">+81312345678</Dial>" in response["body"]
    # And its <Dial> result comes back to the webhook, so an answered call is stored answered
    assert '<Dial action="https://calls.example.jp/twilio/dial-status?t=' in response["body"]


def test_the_fallback_hangs_up_when_twilio_falls_back_from_the_dial_result(fallback):
    from twilio.request_validator import RequestValidator

    # Given the <Dial> result of a call the fallback put through, which the failing webhook could
    # not take either, so Twilio posts it to the fallback URL
    params = {"CallSid": "CA" + "1" * 32, "DialCallStatus": "completed", "DialCallDuration": "42"}
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(FALLBACK_URL, params)
    # When the fallback answers it, then the call ends: the business is not rung a second time
    response = fallback.handler(_twilio_post(params, signed), None)
    assert response["statusCode"] == 200 and "<Hangup/>" in response["body"]
    assert "<Dial" not in response["body"]
    # But a ring group's unanswered member whose next-member request failed rings the business (the
    # caller reached nobody yet), and one who answered ends the call
    for status, ends in (("no-answer", False), ("completed", True)):
        ring = {"CallSid": "CA" + "1" * 32, "DialCallStatus": status,
                "ErrorUrl": "https://calls.example.jp/twilio/ring-next?g=desk&i=1"}
        signed = RequestValidator(TWILIO_TOKEN).compute_signature(FALLBACK_URL, ring)
        body = fallback.handler(_twilio_post(ring, signed), None)["body"]
        assert ("<Hangup/>" in body) is ends and (">+81312345678</Dial>" in body) is not ends


def test_the_fallback_accepts_what_twilios_validator_accepts(fallback):
    from twilio.request_validator import RequestValidator

    # Given requests Twilio signed over the URL with its default port, and with a repeated value
    validator = RequestValidator(TWILIO_TOKEN)
    params = {"CallSid": "CA" + "1" * 32}
    with_port = validator.compute_signature("https://calls.example.jp:443/twilio/fallback", params)
    repeated = {"CallSid": "CA" + "1" * 32, "A": "1"}
    event = _twilio_post(repeated, validator.compute_signature(FALLBACK_URL, repeated))
    event["body"] += "&A=1"
    # When the fallback answers them, Then both are put through, as twilio's own validator would
    assert validator.validate(FALLBACK_URL, params, with_port)
    assert fallback.handler(_twilio_post(params, with_port), None)["statusCode"] == 200
    assert fallback.handler(event, None)["statusCode"] == 200
    # And a public URL naming its own port keeps it (and is also tried without it)
    assert fallback.urls("https://Calls.example.jp:8443/twilio/fallback") == (
        "https://Calls.example.jp/twilio/fallback", "https://Calls.example.jp:8443/twilio/fallback")


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "é"])
def test_the_fallback_refuses_an_unsigned_or_forged_request(fallback, signature):
    from twilio.request_validator import RequestValidator

    params = {"CallSid": "CA" + "1" * 32}
    other = RequestValidator("another-token").compute_signature(FALLBACK_URL, params)
    for given in (signature, other):
        response = fallback.handler(_twilio_post(params, given), None)
        assert response["statusCode"] == 403 and "+81312345678" not in response["body"]


def test_the_fallback_apologises_without_a_number_and_puts_calls_through_when_ssm_is_down(
    fallback, monkeypatch
):
    from twilio.request_validator import RequestValidator

    params = {"CallSid": "CA" + "1" * 32}
    signed = RequestValidator(TWILIO_TOKEN).compute_signature(FALLBACK_URL, params)
    monkeypatch.delenv("FALLBACK_FORWARD_TO")
    apology = fallback.handler(_twilio_post(params, signed), None)["body"]
    assert "<Say" in apology and "<Dial" not in apology
    # And when the auth token cannot be read (an outage), the caller is still put through
    monkeypatch.setenv("FALLBACK_FORWARD_TO", "+81312345678")
    monkeypatch.setattr(fallback, "_token", [])
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_PARAM", "/calltrack/twilio-auth-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    response = fallback.handler(_twilio_post(params, None), None)
    assert response["statusCode"] == 200 and ">+81312345678</Dial>" in response["body"]


def test_the_fallback_takes_the_new_auth_token_and_the_old_one_while_it_is_rotated(fallback, monkeypatch):
    from moto import mock_aws
    from twilio.request_validator import RequestValidator

    params = {"CallSid": "CA" + "1" * 32}
    old, new = (RequestValidator(t).compute_signature(FALLBACK_URL, params) for t in ("old-tok", "new-tok"))
    monkeypatch.setenv("TWILIO_AUTH_TOKEN_PARAM", "/calltrack/twilio-auth-token")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")
    with mock_aws():
        import boto3

        ssm = boto3.client("ssm", region_name="ap-northeast-1")
        # Given a fallback container that read the old token alone, a minute and more ago
        monkeypatch.setattr(fallback, "_token", [["old-tok"], time.time() - 61])
        # and the operator puts the new token beside the old one (README: rotating the auth token)
        ssm.put_parameter(Name="/calltrack/twilio-auth-token", Value="new-tok old-tok", Type="SecureString")
        # When Twilio, the new token promoted, signs with it, Then the fallback reads again: put through
        assert fallback.handler(_twilio_post(params, new), None)["statusCode"] == 200
        # And both tokens are taken until the old one is taken out of the parameter (read hourly)
        assert fallback.handler(_twilio_post(params, old), None)["statusCode"] == 200
        ssm.put_parameter(Name="/calltrack/twilio-auth-token", Value="new-tok", Type="SecureString",
                          Overwrite=True)
        fallback._token[1] -= 3600
        assert fallback.handler(_twilio_post(params, old), None)["statusCode"] == 403
        assert fallback.handler(_twilio_post(params, new), None)["statusCode"] == 200
        # But a forged request makes it read SSM once a minute at most
        reads = []
        monkeypatch.setattr(boto3, "client", lambda *a, **k: reads.append(1) or ssm)
        for _ in range(3):
            assert fallback.handler(_twilio_post(params, "Zm9yZ2Vk"), None)["statusCode"] == 403
        assert reads == []


def test_the_fallback_source_fits_cloudformations_inline_code():
    from infra.components.voice import FALLBACK_CODE

    assert 0 < len(FALLBACK_CODE) <= 4096


def test_fallback_function_gets_the_number_from_context_and_reads_only_the_auth_token(synth):
    synth.assertions.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "index.handler", "Environment": {"Variables": {
            "FALLBACK_FORWARD_TO": "+81312345678", "TWILIO_AUTH_TOKEN_PARAM": "/calltrack/twilio-auth-token",
            "PUBLIC_URL": Match.any_value(),  # the URL it checks signatures against
        }}},
    )
    fallback_role = next(
        fn["Properties"]["Role"]["Fn::GetAtt"][0]
        for fn in synth.resources("AWS::Lambda::Function").values()
        if fn["Properties"].get("Handler") == "index.handler"
    )
    grants = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": fallback_role} in policy["Properties"].get("Roles", [])
    ]
    text = json.dumps(grants)
    assert "parameter/calltrack/twilio-auth-token" in text
    assert "twilio-api-secret" not in text and "dynamodb" not in text


def _statements_on(synth, role: str, resource_id: str) -> set[str]:
    """The actions the role's policy allows on the resource (a logical id in Fn::GetAtt)."""
    policy = next(p for lid, p in synth.resources("AWS::IAM::Policy").items() if lid.startswith(role))
    actions: set[str] = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if resource_id in json.dumps(statement["Resource"]):
            listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            actions |= set(listed)
    return actions


def test_the_internet_facing_functions_get_no_write_they_do_not_make(synth):
    # Given the report API only presigns GETs of recordings and reads the stored reviews, and the
    # voice webhook never touches the recordings table, when we look at their policies,
    stack = synth.stack
    recordings = stack.resolve(stack.recordings_bucket.bucket_arn)["Fn::GetAtt"][0]
    exports = stack.resolve(stack.reporting.exports.bucket_arn)["Fn::GetAtt"][0]
    recordings_table = stack.resolve(stack.data.tables["recordings"].table_arn)["Fn::GetAtt"][0]
    # then a bug in any API route cannot overwrite or delete recordings or exports
    for bucket in (recordings, exports):
        api = _statements_on(synth, "FunctionsReportApiRole", bucket)
        assert "s3:GetObject*" in api
        assert not {a for a in api if re.search(r"Put|Delete|Abort", a)}, api
    # and the voice webhook has no grant on the recordings table
    assert _statements_on(synth, "FunctionsVoiceWebhookRole", recordings_table) == set()


def test_the_public_functions_hold_no_token_and_read_no_account_config_they_do_not_need(synth):
    # Given the anonymous DNI function (browsers) and the voice webhook (Twilio)
    stack = synth.stack
    tokens = stack.resolve(stack.data.tables["tokens"].table_arn)["Fn::GetAtt"][0]
    accounts = stack.resolve(stack.data.tables["accounts"].table_arn)["Fn::GetAtt"][0]
    policy = next(p for lid, p in synth.resources("AWS::IAM::Policy").items()
                  if lid.startswith("FunctionsDniLeaseRole"))
    # then the DNI function can neither read the token table nor the operator's token (the pools
    # report that needed them is report_api's)
    assert _statements_on(synth, "FunctionsDniLeaseRole", tokens) == set()
    assert "admin-token" not in json.dumps(policy)
    env = _functions_by_service(synth)["dni_lease"]["Properties"]["Environment"]["Variables"]
    assert not [k for k in env if "ADMIN_TOKEN" in k or "TOKENS" in k]
    # and the voice webhook cannot read any account's config (webhook URLs and secrets' names)
    assert _statements_on(synth, "FunctionsVoiceWebhookRole", accounts) == set()


def test_the_webhook_dead_letter_sweep_reads_dead_letters_and_cannot_delete_or_resend_them(synth):
    # Given the hourly sweep only reads the webhooks DLQ (then shows it again) and fails rows,
    stack = synth.stack
    dlq = stack.resolve(stack.queues.dlqs["webhooks"].queue_arn)["Fn::GetAtt"][0]
    queue = stack.resolve(stack.queues.queues["webhooks"].queue_arn)["Fn::GetAtt"][0]
    rows = stack.resolve(stack.data.tables["webhook_deliveries"].table_arn)["Fn::GetAtt"][0]
    # when we look at its policy, then it may receive and re-show dead letters, never delete them
    # (the operator's queue) nor send anything to the webhooks queue
    on_dlq = _statements_on(synth, "FunctionsWebhookDeadLettersRole", dlq)
    assert {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"} <= on_dlq
    assert not {a for a in on_dlq if re.search(r"Delete|Send|Purge", a)}, on_dlq
    assert _statements_on(synth, "FunctionsWebhookDeadLettersRole", queue) == set()
    # and it changes delivery rows only by UpdateItem (no put, delete or batch write)
    on_rows = _statements_on(synth, "FunctionsWebhookDeadLettersRole", rows)
    assert "dynamodb:UpdateItem" in on_rows
    assert not {a for a in on_rows if re.search(r"Put|Delete|BatchWrite", a)}, on_rows
    # and a run ends before the dead letters it hid come back (each is read once per run)
    from infra.wiring import FUNCTIONS
    from webhooks.dead_letters import HIDE_S

    assert next(f for f in FUNCTIONS if f.name == "webhook_dead_letters").timeout_s <= HIDE_S


def test_cloudwatch_alarms_may_publish_to_the_tls_only_ops_topic(synth):
    # Given the ops topic's policy (enforce_ssl writes one, which replaces SNS's default policy),
    [policy] = synth.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    # then CloudWatch alarms of this account may publish to it (else no alarm ever reaches anyone)
    allowed = [s for s in statements if s["Effect"] == "Allow"
               and s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert len(allowed) == 1 and allowed[0]["Action"] == "sns:Publish"
    assert set(allowed[0]["Condition"]) == {"StringEquals", "ArnLike"}
    assert "aws:SourceAccount" in allowed[0]["Condition"]["StringEquals"]
    # and the TLS-only Deny stays
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in statements)


def test_transcription_jobs_may_only_write_to_the_recordings_bucket_under_the_stacks_key(synth):
    # Given StartTranscriptionJob has no resource type in IAM (a job-name ARN matches nothing)
    stack = synth.stack
    policy = next(p for lid, p in synth.resources("AWS::IAM::Policy").items()
                  if lid.startswith("FunctionsTranscriptsRole"))
    [start] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
               if s["Action"] == "transcribe:StartTranscriptionJob"]
    # then it is granted on "*", only with the recordings bucket as output, encrypted by the key
    assert start["Resource"] == "*"
    condition = start["Condition"]["StringEquals"]
    assert condition["transcribe:OutputBucketName"] == stack.resolve(stack.recordings_bucket.bucket_name)
    key_arn = stack.resolve(stack.recordings_bucket.encryption_key.key_arn)
    assert condition["transcribe:OutputEncryptionKMSKeyId"] == key_arn
    # and the function names that key to Transcribe (its output would be SSE-S3 otherwise)
    env = _functions_by_service(synth)["transcripts"]["Properties"]["Environment"]["Variables"]
    assert env["CALLTRACK_RECORDINGS_KMS_KEY_ID"] == key_arn
    # and it may look up (a completion event may be lost) and delete (a retry of a spent job) the
    # stack's own jobs, named as the function names them, none of another application's
    # (both have the resource type transcriptionjob: arn:...:transcription-job/${JobName},
    # Service Authorization Reference)
    from infra.components.functions import TRANSCRIPTION_JOB_PREFIX
    from transcripts.engine import JOB_PREFIX, job_name

    [look] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
              if "transcribe:GetTranscriptionJob" in _listed(s["Action"])]
    assert sorted(_listed(look["Action"])) == [
        "transcribe:DeleteTranscriptionJob", "transcribe:GetTranscriptionJob"]
    assert "Condition" not in look
    arn = json.dumps(look["Resource"])
    assert ":transcription-job/" + TRANSCRIPTION_JOB_PREFIX + '*"' in arn and ":transcribe:" in arn
    assert TRANSCRIPTION_JOB_PREFIX == JOB_PREFIX and job_name("CA1", "RE1").startswith(JOB_PREFIX)
    # and watches it on its own queue
    assert env["CALLTRACK_TRANSCRIPTS_QUEUE_URL"]


TOKEN_CHECKERS = ["FunctionsReportApiRole", "FunctionsWebhookApiRole"]


@pytest.mark.parametrize("role", TOKEN_CHECKERS)
def test_functions_that_only_check_tokens_cannot_mint_them_nor_alter_the_audit_trail(synth, role):
    stack = synth.stack
    tokens = stack.resolve(stack.data.tables["tokens"].table_arn)["Fn::GetAtt"][0]
    audit = stack.resolve(stack.data.tables["audit"].table_arn)["Fn::GetAtt"][0]
    # Given a function that checks bearer tokens and notes their "last used", when we look at its
    # policy, then it may read tokens and update them, but not put or delete one (a public
    # function could otherwise write an admin token for any account)
    on_tokens = _statements_on(synth, role, tokens)
    assert "dynamodb:UpdateItem" in on_tokens and "dynamodb:GetItem" in on_tokens
    assert not {a for a in on_tokens if re.search(r"PutItem|DeleteItem|BatchWrite", a)}, on_tokens
    # and the audit trail, where it may write at all, takes only new items
    on_audit = _statements_on(synth, role, audit)
    assert on_audit <= {"dynamodb:PutItem"}


def test_the_voice_webhooks_last_resort_dials_the_deployments_fallback_number(synth):
    # Given the stack deployed with -c fallbackForwardTo (tests/infra/conftest.py), when the voice
    # webhook and its replay can read neither storage nor routing, then they dial that number
    by_service = _functions_by_service(synth)
    for name in ("voice_webhook", "webhook_replay"):
        env = by_service[name]["Properties"]["Environment"]["Variables"]
        assert env["CALLTRACK_FALLBACK_FORWARD_TO"] == "+81312345678", name


def test_a_fallback_that_put_a_call_through_unchecked_pages_ops(synth):
    from infra.components.voice import FALLBACK_CODE

    # Given the fallback's EMF line for an unreadable auth token, when we look at the alarms,
    # then one watches exactly that metric (namespace and dimension as the fallback writes them)
    alarms = [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]
    [alarm] = [a for a in alarms if a.get("MetricName") == "FallbackUnchecked"]
    assert alarm["Namespace"] == "calltrack" and '"Namespace": "calltrack"' in FALLBACK_CODE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "fallback"}]
    assert '"service": "fallback"' in FALLBACK_CODE and '"Dimensions": [["service"]]' in FALLBACK_CODE
