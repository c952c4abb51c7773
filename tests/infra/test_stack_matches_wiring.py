"""The synthesized stack is the wiring declaration and the models, nothing more and nothing less."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from infra.components.data import model_specs
from infra.components.voice import FALLBACK_ROUTE
from infra.wiring import WIRING, LambdaFunction, Route
from tests.infra.conftest import synthesize_offline


def _function_names(synth: Any) -> dict[str, str]:
    """logical id -> wiring function name (POWERTOOLS_SERVICE_NAME), plus the fallback."""
    out = {}
    for logical_id, res in synth.resources("AWS::Lambda::Function").items():
        env = res["Properties"].get("Environment", {}).get("Variables", {})
        out[logical_id] = env.get("POWERTOOLS_SERVICE_NAME") or (
            FALLBACK_ROUTE.function if "FALLBACK_FORWARD_TO" in env else logical_id
        )
    return out


def _ref_id(value: Any) -> str:
    """Logical id inside a Ref / Fn::GetAtt / Fn::Join(... Ref ...)."""
    text = json.dumps(value)
    for res_key in ('"Ref": "', '"Fn::GetAtt": ["'):
        if res_key in text:
            return text.split(res_key, 1)[1].split('"', 1)[0]
    raise AssertionError(f"no reference in {text}")


def synthesized_routes(synth: Any) -> set[tuple[str, str, str]]:
    names = _function_names(synth)
    integrations = {
        lid: names[_ref_id(res["Properties"]["IntegrationUri"])]
        for lid, res in synth.resources("AWS::ApiGatewayV2::Integration").items()
    }
    routes = set()
    for res in synth.resources("AWS::ApiGatewayV2::Route").values():
        method, path = res["Properties"]["RouteKey"].split(" ", 1)
        routes.add((method, path, integrations[_ref_id(res["Properties"]["Target"])]))
    return routes


def expected_routes(routes: tuple[Route, ...]) -> set[tuple[str, str, str]]:
    return {(r.method, r.path, r.function) for r in routes + (FALLBACK_ROUTE,)}


def test_routes_equal_the_wiring_plus_the_deployment_only_fallback(synth):
    assert synthesized_routes(synth) == expected_routes(WIRING.routes)


def test_queue_and_stream_consumers_equal_the_wiring(synth):
    names = _function_names(synth)
    queues = {
        lid: res
        for lid, res in synth.resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in res["Properties"]
    }
    tables = {
        lid: spec.logical
        for spec in model_specs()
        for lid in [synth.stack.resolve(synth.stack.data.tables[spec.logical].table_arn)["Fn::GetAtt"][0]]
    }
    got_queues, got_streams = set(), set()
    for mapping in synth.resources("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        consumer = names[_ref_id(props["FunctionName"])]
        source = _ref_id(props["EventSourceArn"])
        if source in queues:
            got_queues.add((consumer, props["BatchSize"]))
        else:
            got_streams.add((tables[source], consumer, props["BatchSize"]))
    assert got_queues == {(q.consumer, q.batch_size) for q in WIRING.queues}
    assert got_streams == {(s.table, s.consumer, s.batch_size) for s in WIRING.streams}


def test_schedules_equal_the_wiring(synth):
    names = _function_names(synth)
    got = set()
    for rule in synth.resources("AWS::Events::Rule").values():
        if "ScheduleExpression" not in rule["Properties"]:
            continue  # an event rule (below)
        target = rule["Properties"]["Targets"][0]
        job = json.loads(target["InputTransformer"]["InputTemplate"].replace("<time>", '""'))["job"]
        got.add((job, names[_ref_id(target["Arn"])], rule["Properties"]["ScheduleExpression"]))
    assert got == {(s.name, s.function, f"cron({s.cron_utc})") for s in WIRING.schedules}


def test_event_rules_equal_the_wiring_and_deliver_to_their_queue_with_its_dead_letter_queue(synth):
    # Given the wiring's event rules (Transcribe's job state change -> the transcripts queue)
    assert WIRING.event_rules
    queue_ids = {synth.stack.resolve(q.queue_arn)["Fn::GetAtt"][0]: name
                 for name, q in synth.stack.queues.queues.items()}
    dlq_ids = {synth.stack.resolve(q.queue_arn)["Fn::GetAtt"][0]: name
               for name, q in synth.stack.queues.dlqs.items()}
    got = {}
    for rule in synth.resources("AWS::Events::Rule").values():
        props = rule["Properties"]
        if "EventPattern" not in props:
            continue
        [target] = props["Targets"]
        queue = queue_ids[_ref_id(target["Arn"])]
        assert dlq_ids[_ref_id(target["DeadLetterConfig"]["Arn"])] == queue
        got[json.dumps(props["EventPattern"], sort_keys=True)] = queue
    # Then each rule's pattern is the wiring's, onto its queue (and that queue's DLQ)
    assert got == {json.dumps(r.pattern(), sort_keys=True): r.queue for r in WIRING.event_rules}
    # ... and the queue lets EventBridge send to it (a queue policy for events.amazonaws.com)
    policies = json.dumps(synth.resources("AWS::SQS::QueuePolicy"))
    assert "events.amazonaws.com" in policies


def test_tables_equal_the_models(synth):
    tables = synth.stack.data.tables
    specs = model_specs()
    assert set(tables) == {s.logical for s in specs}
    for spec in specs:
        logical_id = synth.stack.resolve(tables[spec.logical].table_arn)["Fn::GetAtt"][0]
        props = synth.template["Resources"][logical_id]["Properties"]
        keys = [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]]
        expected = [(spec.hash_key[0], "HASH")] + ([(spec.range_key[0], "RANGE")] if spec.range_key else [])
        assert keys == expected, spec.logical
        types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
        assert types[spec.hash_key[0]] == spec.hash_key[1]
        gsis = {g["IndexName"]: g for g in props.get("GlobalSecondaryIndexes", [])}
        assert set(gsis) == {g["name"] for g in spec.gsis}, spec.logical
        for gsi in spec.gsis:
            got = [(k["AttributeName"], k["KeyType"]) for k in gsis[gsi["name"]]["KeySchema"]]
            want = [(gsi["hash_key"][0], "HASH")] + (
                [(gsi["range_key"][0], "RANGE")] if gsi["range_key"] else []
            )
            assert got == want
            assert gsis[gsi["name"]]["Projection"]["ProjectionType"] == gsi["projection"]
        assert props.get("StreamSpecification", {}).get("StreamViewType") == spec.stream, spec.logical
        assert props.get("TimeToLiveSpecification", {}).get("AttributeName") == spec.ttl, spec.logical


def test_synthesis_made_no_lookups(synth):
    assert not synth.manifest.get("missing"), "no context lookups: synth needs no AWS account"


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """The stack built from a wiring with one more route and a function using idempotency."""
    extra = Route("GET", "/v1/extra/{thing}", "report_api", "token")
    functions = tuple(
        dataclasses.replace(fn, idempotency=True) if fn.name == "admin" else fn for fn in WIRING.functions
    )
    wiring = dataclasses.replace(WIRING, routes=WIRING.routes + (extra,), functions=functions)
    return wiring, synthesize_offline(tmp_path_factory.mktemp("cdk-out-extended"), nag=False, wiring=wiring)


def test_a_route_added_to_the_wiring_is_in_the_template(extended):
    wiring, synth = extended
    assert ("GET", "/v1/extra/{thing}", "report_api") in synthesized_routes(synth)
    assert synthesized_routes(synth) == expected_routes(wiring.routes)


def test_a_function_using_idempotency_gets_the_powertools_table(extended):
    _, synth = extended
    synth.assertions.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )
    admin = next(
        r
        for r in synth.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
        == "admin"
    )
    assert "CALLTRACK_TABLE_IDEMPOTENCY" in admin["Properties"]["Environment"]["Variables"]


def test_default_wiring_has_no_idempotency_table(synth):
    assert "idempotency" not in synth.stack.data.tables


def test_a_wiring_naming_an_unknown_table_fails_synthesis_with_the_name(tmp_path):
    from infra.app import build_app

    bad = dataclasses.replace(
        WIRING,
        functions=WIRING.functions
        + (LambdaFunction("ghost", "admin", "admin.handler.handler", tables=("nope",)),),
    )
    with pytest.raises(KeyError, match="ghost.*nope"):
        build_app({"calltrack:stubLayer": True}, outdir=str(tmp_path), wiring=bad, nag=False)


def test_every_message_of_a_slow_consumers_batch_has_its_whole_budget_inside_the_timeout():
    # Given the consumers whose one message may take long (a recording download, an ad platform's
    # slow answers): a message left for lack of time spends a receive the retry ladder counts as a try
    from conversions.handler import MESSAGE_BUDGET_MS
    from recording_ingest.handler import FETCH_DEADLINE_S, RESERVE_S

    budget_s = {"recording_ingest": FETCH_DEADLINE_S + RESERVE_S, "conversions": MESSAGE_BUDGET_MS / 1000}
    for queue in WIRING.queues:
        if queue.consumer in budget_s:
            timeout = next(f.timeout_s for f in WIRING.functions if f.name == queue.consumer)
            # Then a whole batch fits in the function's timeout, each message with its budget
            assert queue.batch_size * budget_s[queue.consumer] <= timeout, queue.name
