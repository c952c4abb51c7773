"""Webhooks without the stack: the SSRF rule, the backoff ladder, signing, planning and the
delivery state machine over in-memory ports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from calltrack.account_config import parse_config
from calltrack.accounts import UnknownAccount
from calltrack.outbound import RefusedDestination, address_refusal, check_url, public_addresses
from tests.support.accounts import account_config
from tests.support.receiver import readme_verify
from webhooks import plan
from webhooks.backoff import MAX_RECEIVES, delay_s, total_window_s
from webhooks.deliver import Ports, RetryLater, plan_message, send_delivery, signature
from webhooks.outgoing import Answer

INTERNAL = ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
            "0.0.0.0", "::1", "fe80::1", "fd00::5", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "224.0.0.1",
            # 6to4 (of 10.0.0.1, 169.254.169.254, 127.0.0.1 and a public address): a relay's target
            "2002:a00:1::", "2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:5db8:d822::1"]


@pytest.mark.parametrize("address", INTERNAL)
def test_internal_addresses_are_refused_outside_local_mode(address: str) -> None:
    assert address_refusal(address, local_mode=False) is not None


def test_local_mode_allows_only_loopback() -> None:
    assert address_refusal("127.0.0.1", local_mode=True) is None
    assert address_refusal("169.254.169.254", local_mode=True) is not None
    assert address_refusal("10.0.0.1", local_mode=True) is not None
    assert address_refusal("93.184.216.34", local_mode=False) is None


def test_urls_must_be_https_outside_local_mode() -> None:
    with pytest.raises(RefusedDestination, match="https"):
        check_url("http://hooks.example.jp/x", local_mode=False)
    assert check_url("https://hooks.example.jp:8443/x?a=1", local_mode=False).path == "/x?a=1"
    with pytest.raises(RefusedDestination):
        check_url("https://metadata.google.internal/", local_mode=False)


@pytest.mark.parametrize("url", ["https://metadata.google.internal./", "https://localhost./x",
                                 "https://127.0.0.1./x", "https://169.254.169.254./latest", "https://./"])
def test_a_fully_qualified_names_trailing_dot_does_not_get_an_internal_host_past_apply(url) -> None:
    with pytest.raises(RefusedDestination):
        check_url(url, local_mode=False)


def test_a_url_with_japanese_or_spaces_in_its_path_is_sent_percent_encoded_as_a_browser_does() -> None:
    # Given webhook URLs people write (an IRI), and one already encoded
    iri = check_url("https://hooks.example.jp/通知/calls?name=山田 太郎", local_mode=False)
    encoded = check_url("https://hooks.example.jp/%E9%80%9A%E7%9F%A5?a=b&c=%2F", local_mode=False)
    # Then the request line is ASCII (http.client refuses anything else: every send raised), and
    # what was encoded or reserved stays as written
    assert iri.path == "/%E9%80%9A%E7%9F%A5/calls?name=%E5%B1%B1%E7%94%B0%20%E5%A4%AA%E9%83%8E"
    assert encoded.path == "/%E9%80%9A%E7%9F%A5?a=b&c=%2F"


def test_a_host_resolving_to_an_internal_address_is_refused_at_send_time() -> None:
    target = check_url("https://hooks.example.jp/x", local_mode=False)
    public = public_addresses(target, local_mode=False, resolver=lambda h, p: ["93.184.216.34"])
    assert public == ["93.184.216.34"]
    with pytest.raises(RefusedDestination, match="not resolve to public addresses") as refused:
        public_addresses(target, local_mode=False, resolver=lambda h, p: ["93.184.216.34", "169.254.169.254"])
    # and the refusal, which the account's admin reads as a delivery's reason, does not tell them
    # how the name resolves inside this network (the operator's log does)
    assert "169.254" not in str(refused.value)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001", "127.1", "0", "169.254.43518",
                                  "0xa9fea9fe"])
def test_an_address_written_as_a_number_is_refused_at_apply_like_its_dotted_form(host: str) -> None:
    # Given a URL whose host a resolver reads as an IPv4 address (127.0.0.1, 0.0.0.0, the metadata)
    # Then apply refuses it at once, as it refuses the address written as usual
    with pytest.raises(RefusedDestination, match="loopback|not a public|link-local"):
        check_url(f"https://{host}/hook", local_mode=False)
    # while names that merely start with digits stay names
    assert check_url("https://123.example.jp/hook", local_mode=False).host == "123.example.jp"
    assert check_url("https://1.dead.beef/hook", local_mode=False).host == "1.dead.beef"


def test_a_dual_stack_host_is_tried_ipv4_first_then_each_checked_address_in_turn(monkeypatch) -> None:
    import socket

    from webhooks import outgoing

    # Given a host with an IPv6 address that sorts first as text, and two IPv4 addresses
    target = check_url("https://hooks.example.jp/x", local_mode=False)
    answers = ["2406:da14:1::1", "52.192.0.1", "13.112.0.9"]
    # Then IPv4 comes first (a Lambda outside a VPC has no IPv6 route), in a stable order
    ordered = public_addresses(target, local_mode=False, resolver=lambda h, p: answers)
    assert ordered == ["13.112.0.9", "52.192.0.1", "2406:da14:1::1"]
    # When the first address does not answer, the connection goes to the next checked one
    tried: list[str] = []

    def create_connection(address: tuple[str, int], timeout: float | None = None) -> str:
        tried.append(address[0])
        if address[0] == "13.112.0.9":
            raise ConnectionRefusedError("down")
        return "socket"

    monkeypatch.setattr(socket, "create_connection", create_connection)
    assert outgoing._connect(ordered, 443, 1.0) == "socket"  # type: ignore[comparison-overlap]
    assert tried == ["13.112.0.9", "52.192.0.1"]
    # and when none answers, the last failure is raised (network trouble: retried)
    tried.clear()
    with pytest.raises(ConnectionRefusedError):
        outgoing._connect(["13.112.0.9"], 443, 1.0)
    # and addresses that time out share one timeout: the later ones get what is left
    clock = [0.0]
    timeouts: list[float] = []

    def slow(address: tuple[str, int], timeout: float | None = None) -> str:
        timeouts.append(float(timeout or 0))
        clock[0] += float(timeout or 0)
        raise TimeoutError("no answer")

    monkeypatch.setattr(socket, "create_connection", slow)
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    with pytest.raises(TimeoutError):
        outgoing._connect(["13.112.0.9", "52.192.0.1", "2406:da14:1::1"], 443, 10.0)
    assert timeouts == [10.0]  # the first used the whole budget: the others are not tried


def test_backoff_doubles_from_a_minute_and_spans_24_hours() -> None:
    assert [delay_s(n) for n in (1, 2, 3)] == [60, 120, 240]
    assert total_window_s() == 24 * 3600
    assert delay_s(MAX_RECEIVES) == 0


def test_the_signature_verifies_with_the_readme_recipe() -> None:
    body = b'{"id":"evt_1"}'
    now = int(datetime.now(UTC).timestamp())
    header = signature("s3cret", now, body)
    verify = readme_verify()
    assert verify("s3cret", header, body)
    assert not verify("s3cret", header, body + b"x")
    assert not verify("s3cret", signature("s3cret", now - 3600, body), body)  # too old


def config(**overrides: Any) -> Any:
    hook = {"id": "bridge", "url": "https://hooks.example.jp/x",
            "events": ["call.updated", "recording.ready"], "secret": "bridge"}
    return parse_config(account_config("acme", webhooks=[hook], **overrides), local_mode=False)


def call_event(kind: str, changed: list[str], **call: Any) -> dict[str, Any]:
    base = {"call_sid": "CA1", "account": "acme", "caller": "+819011112222", "caller_name": "YAMADA",
            "status": "answered", "version": 3}
    return {"type": kind, "account": "acme", "call_sid": "CA1", "version": 3, "changed": changed,
            "call": {**base, **call}}


def present(call: Any) -> dict[str, Any]:
    return dict(call)


def test_recording_ready_follows_a_stored_recording_and_caller_is_removed() -> None:
    event = call_event("call.updated", ["recording"], recording={"status": "stored", "duration_seconds": 30})
    planned = plan.plan_call_event(event, config(), present, "2026-11-30T00:00:00Z")
    assert [p.event_type for p in planned] == ["call.updated", "recording.ready"]
    for p in planned:
        assert "9011112222" not in p.payload_text() and "YAMADA" not in p.payload_text()
    again = plan.plan_call_event(event, config(), present, "2026-11-30T01:00:00Z")
    assert [p.delivery_id for p in again] == [p.delivery_id for p in planned]  # duplicates dedupe


def test_a_retrying_recording_is_not_ready() -> None:
    event = call_event("call.updated", ["recording"], recording={"status": "retrying"})
    assert [p.event_type for p in plan.plan_call_event(event, config(), present, "t")] == ["call.updated"]


def test_crm_pushes_on_completion_and_on_a_stage_change_only() -> None:
    cfg = config(crm_push={"hubspot": {"token_secret": "hs"}})
    completed = plan.plan_call_event(call_event("call.completed", ["ended_at"]), cfg, present, "t")
    assert [(p.kind, p.payload["action"]) for p in completed if p.kind != "webhook"] == [("hubspot", "add")]
    staged = plan.plan_call_event(call_event("call.updated", ["stage"]), cfg, present, "t")
    assert [(p.kind, p.payload["action"]) for p in staged if p.kind != "webhook"] == [("hubspot", "update")]
    tagged_recording = plan.plan_call_event(call_event("call.updated", ["recording"]), cfg, present, "t")
    assert [p for p in tagged_recording if p.kind != "webhook"] == []


@pytest.mark.parametrize("hook_id", ["hubspot", "kintone"])
def test_a_webhook_named_like_a_crm_does_not_take_the_crm_push_delivery(hook_id: str) -> None:
    # Given a webhook (a Zapier hook, say) whose id is "hubspot", and the HubSpot push
    hook = {"id": hook_id, "url": "https://hooks.example.jp/x", "events": ["call.completed"], "secret": "z"}
    crm = {"hubspot": {"token_secret": "hs"}} if hook_id == "hubspot" else {
        "kintone": {"domain": "acme.cybozu.com", "app": 1, "token_secret": "k", "fields": {"call_sid": "id"}}}
    cfg = parse_config(account_config("acme", webhooks=[hook], crm_push=crm), local_mode=False)
    # When a call completes
    planned = plan.plan_call_event(call_event("call.completed", ["ended_at"]), cfg, present, "t")
    # Then both are planned under their own ids (one id: the store kept the webhook, the CRM got nothing)
    assert sorted(p.kind for p in planned) == sorted(["webhook", hook_id])
    assert len({p.delivery_id for p in planned}) == 2


def test_the_crm_hears_the_answer_that_lands_after_a_provisional_completion() -> None:
    # Given the status callback ended the call first: call.completed carried "missed, 0 s"
    cfg = config(crm_push={"hubspot": {"token_secret": "hs"}})
    # When the <Dial> action's answer lands as an update of the ended call
    answer = call_event("call.updated", ["ended_at", "outcome_reason", "status", "talk_seconds"],
                        status="answered", talk_seconds=300, ended_at="2026-11-30T00:06:01Z")
    planned = plan.plan_call_event(answer, cfg, present, "t")
    # Then the CRM's record of the call is updated with it
    assert [(p.kind, p.payload["action"], p.payload["call"]["talk_seconds"]) for p in planned
            if p.kind != "webhook"] == [("hubspot", "update", 300)]
    # And a change of the CRM's fields before the call ended waits for the add (no update)
    ringing = call_event("call.updated", ["channel"], status="ringing")
    assert [p for p in plan.plan_call_event(ringing, cfg, present, "t") if p.kind != "webhook"] == []


class Store:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def get(self, account: str, delivery: str) -> dict[str, Any] | None:
        return self.row

    def update(self, account: str, delivery: str, **fields: Any) -> bool:
        if self.row is None:  # as DynamoDeliveries: a row that went is not written back
            return False
        self.row.update(fields)
        return True

    def claim(self, account: str, delivery: str, now: datetime) -> bool:
        return self.row.get("status") in ("pending", "retrying")


def ports(answers: list[Any], sent: list[dict[str, Any]]) -> Ports:
    def send(method: str, url: str, body: bytes | None, headers: Any) -> Answer:
        sent.append({"url": url, "body": body, "headers": dict(headers)})
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Answer(answer)

    planned = plan.plan_ping(config(), "bridge", "n1", "2026-11-30T00:00:00Z")
    row = {"delivery_id": planned.delivery_id, "kind": "webhook", "destination": "bridge",
           "event_type": "ping", "status": "pending", "attempts": 0, "payload": planned.payload_text()}
    return Ports(store=Store(row), config=lambda a: config(), secret=lambda a, n: "s3cret", send=send,
                 enqueue=lambda m: None, present=present, now=lambda: datetime(2026, 11, 30, tzinfo=UTC))


def test_5xx_and_network_errors_back_off_then_fail_for_good() -> None:
    sent: list[dict[str, Any]] = []
    p = ports([503, ConnectionRefusedError(), 503], sent)
    message = {"delivery": p.store.row["delivery_id"], "account": "acme"}
    with pytest.raises(RetryLater) as first:
        send_delivery(message, p, 1)
    assert first.value.delay_s == 60 and p.store.row["status"] == "retrying"
    with pytest.raises(RetryLater) as second:
        send_delivery(message, p, 2)
    assert second.value.delay_s == 120 and p.store.row["reason"] == "network: ConnectionRefusedError"
    with pytest.raises(RetryLater) as last:
        send_delivery(message, p, MAX_RECEIVES)
    assert last.value.delay_s == 0
    assert p.store.row["status"] == "failed" and p.store.row["reason"] == "gave up after 24 h: http-503"
    # every try carried the same delivery id and body
    assert len({s["headers"]["X-Calltrack-Delivery"] for s in sent}) == 1
    assert len({s["body"] for s in sent}) == 1


def test_an_unforeseen_error_is_recorded_and_retried_without_its_text() -> None:
    # Given a send that fails in a way no branch names (http.client quotes the header it refuses)
    p = ports([ValueError("Invalid header value b'Bearer pat-na1-secret\\n'")], [])
    # When the delivery is tried
    with pytest.raises(RetryLater) as err:
        send_delivery({"delivery": p.store.row["delivery_id"], "account": "acme"}, p, 1)
    # Then the try is counted and backed off like any failure (not left "pending" for the DLQ),
    # and neither the row nor the retry's reason carries the secret
    assert p.store.row["status"] == "retrying" and p.store.row["attempts"] == 1
    assert p.store.row["reason"] == err.value.reason == "error: ValueError"


def test_a_crm_token_with_a_line_break_inside_is_named_not_sent() -> None:
    # Given a HubSpot token pasted with a line break in its middle
    cfg = config(crm_push={"hubspot": {"token_secret": "hs"}})
    completed = call_event("call.completed", ["ended_at"])
    [crm] = [row for row in plan.plan_call_event(completed, cfg, present, "t") if row.kind == "hubspot"]
    sent: list[dict[str, Any]] = []
    p = ports([201], sent)
    p.store.row.update({"delivery_id": crm.delivery_id, "kind": "hubspot", "destination": "hubspot",
                        "payload": crm.payload_text()})
    p.config = lambda a: cfg
    p.secret = lambda a, n: "pat-na1-\nrest"
    # When it is tried, then nothing is sent and the row says which secret to set again
    with pytest.raises(RetryLater):
        send_delivery({"delivery": crm.delivery_id, "account": "acme"}, p, 1)
    assert sent == [] and "secret 'hs' holds a line break" in p.store.row["reason"]
    assert "rest" not in p.store.row["reason"]


@pytest.mark.parametrize("answer", [200, 503, 400])
def test_a_delivery_whose_row_went_while_it_was_sent_is_not_written_back(answer: int) -> None:
    # Given a delivery whose caller is erased while it is being sent (the erasure deletes its row)
    sent: list[dict[str, Any]] = []
    p = ports([answer], sent)
    message = {"delivery": p.store.row["delivery_id"], "account": "acme"}
    plain_send = p.send

    def send_while_erased(*args: Any) -> Answer:
        p.store.row = None
        return plain_send(*args)

    p.send = send_while_erased
    # When the answer comes back (delivered, to retry, or failed), Then nothing is written and
    # nothing retried: the row stays gone
    assert send_delivery(message, p, 1) == "gone"
    assert p.store.row is None and len(sent) == 1


@pytest.mark.parametrize("status, reason", [(400, "http-400"), (410, "http-410"),
                                            (301, "redirect not followed (http-301)")])
def test_other_answers_fail_at_once(status: int, reason: str) -> None:
    sent: list[dict[str, Any]] = []
    p = ports([status], sent)
    assert send_delivery({"delivery": p.store.row["delivery_id"], "account": "acme"}, p, 1) == "failed"
    assert p.store.row["reason"] == reason and p.store.row["attempts"] == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_timeouts_throttling_and_server_errors_are_retried(status: int) -> None:
    p = ports([status], [])
    with pytest.raises(RetryLater):
        send_delivery({"delivery": p.store.row["delivery_id"], "account": "acme"}, p, 1)


def test_a_delivered_delivery_is_not_sent_again() -> None:
    sent: list[dict[str, Any]] = []
    p = ports([200], sent)
    message = {"delivery": p.store.row["delivery_id"], "account": "acme"}
    assert send_delivery(message, p, 1) == "delivered"
    assert send_delivery(message, p, 1) == "skipped"
    assert len(sent) == 1
    body = json.loads(sent[0]["body"])
    assert body["type"] == "ping" and body["data"]["webhook"] == "bridge"


def test_events_and_deliveries_of_a_deleted_account_end_without_a_retry() -> None:
    # Given an account deleted after its call event and a delivery were queued
    def gone(account: str) -> Any:
        raise UnknownAccount(account)

    sent: list[dict[str, Any]] = []
    p = ports([200], sent)
    p.config = gone
    queued: list[Any] = []
    p.enqueue = queued.append
    # When the event is planned and the delivery tried
    planned = plan_message(call_event("call.completed", ["ended_at"]), p)
    outcome = send_delivery({"delivery": p.store.row["delivery_id"], "account": "acme"}, p, 1)
    # Then nothing is queued or sent, nothing raises (no retries into the DLQ), and the row says why
    assert (planned, queued, sent) == (0, [], [])
    assert outcome == "failed" and p.store.row["reason"] == "the account no longer exists"


@pytest.mark.parametrize(
    "webhooks_yaml, expected",
    [
        ("  - {id: a, url: 'http://169.254.169.254/x', events: [call.completed], secret: s}",
         "webhooks[0].url: 169.254.169.254 is link-local"),
        ("  - {id: a, url: 'https://10.0.0.8/x', events: [call.completed], secret: s}",
         "webhooks[0].url: 10.0.0.8 is not a public address"),
        ("  - {id: a, url: 'https://hooks.example.jp/x', events: [call.finished], secret: s}",
         "webhooks[0].events[0]: Input should be"),
        ("  - {id: a, url: 'https://hooks.example.jp/x', events: [call.completed]}",
         "webhooks[0].secret: required"),
    ],
)
def test_calltrack_apply_refuses_bad_webhooks_naming_the_field(tmp_path: Any, webhooks_yaml: str,
                                                               expected: str) -> None:
    from tests.support.cli import run_cli

    path = tmp_path / "acme.yaml"
    text = f'account: acme\nforward_to: "+81312345678"\nwebhooks:\n{webhooks_yaml}\n'
    path.write_text(text, encoding="utf-8")
    result = run_cli("apply", str(path), "--token", "t", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert expected in result.stderr


def test_kintone_mapping_names_call_fields_only() -> None:
    from calltrack.account_config import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config(account_config("acme", crm_push={"kintone": {
            "domain": "acme.cybozu.com", "app": 1, "token_secret": "k", "fields": {"password": "x"}}}),
            local_mode=False)
    assert err.value.field == "crm_push.kintone.fields"


def test_a_copy_of_a_delivery_being_sent_elsewhere_is_skipped() -> None:
    sent: list[dict[str, Any]] = []
    p = ports([200], sent)
    p.store.claim = lambda account, delivery, now: False  # another sender holds the lease
    assert send_delivery({"delivery": p.store.row["delivery_id"], "account": "acme"}, p, 1) == "skipped"
    assert sent == [] and p.store.row["status"] == "pending"


@pytest.mark.parametrize("limit", ["abc", "0", "-1", "501", "²", "１"])
def test_a_bad_deliveries_limit_is_a_400_naming_it(monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    from calltrack.settings import reset_settings
    from tests.support.events import http_event
    from webhooks.api import app

    # Given the operator's token, When the deliveries are listed with a limit that is no integer
    # in ASCII digits from 1 to 200 (a superscript digit passes str.isdigit but not int)
    monkeypatch.setenv("CALLTRACK_ADMIN_TOKEN", "op")
    reset_settings()
    event = http_event("GET", "/v1/webhooks/deliveries", headers={"authorization": "Bearer op"})
    event["queryStringParameters"] = {"account": "acme", "limit": limit}
    response = app.resolve(event, None)
    reset_settings()
    # Then a 400 names the parameter
    assert response["statusCode"] == 400 and "limit" in response["body"]
