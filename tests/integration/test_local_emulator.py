"""The embedded emulator's transactions keep their promise with the light backup patch."""

from __future__ import annotations

import pytest

from tests.support import unique_account, unique_call_sid

TABLE = "calltrack-calls"


def _item(sid: str, **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        "call_sid": {"S": sid},
        "account": {"S": unique_account()},
        "started_at": {"S": "2026-11-02T01:00:00Z"},
        **extra,
    }


def test_a_cancelled_transaction_leaves_every_item_as_it_was(local_stack):
    ddb = local_stack.stack.client("dynamodb")
    updated, existing, created = unique_call_sid(), unique_call_sid(), unique_call_sid()
    # Given two calls, one of which the transaction's condition will find
    ddb.put_item(TableName=TABLE, Item=_item(updated, status={"S": "ringing"}))
    ddb.put_item(TableName=TABLE, Item=_item(existing))
    # When a transaction updates one, creates another and then fails its condition on the third
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"call_sid": {"S": updated}},
                        "UpdateExpression": "SET #s = :a",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":a": {"S": "answered"}},
                    }
                },
                {"Put": {"TableName": TABLE, "Item": _item(created)}},
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": _item(existing),
                        "ConditionExpression": "attribute_not_exists(call_sid)",
                    }
                },
            ]
        )
    # Then the update is undone and the new item was never created
    got = ddb.get_item(TableName=TABLE, Key={"call_sid": {"S": updated}}, ConsistentRead=True)["Item"]
    assert got["status"] == {"S": "ringing"}
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={"call_sid": {"S": created}}, ConsistentRead=True)


def test_a_transaction_that_succeeds_applies_every_write(local_stack):
    ddb = local_stack.stack.client("dynamodb")
    first, second = unique_call_sid(), unique_call_sid()
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": _item(first)}},
            {"Put": {"TableName": TABLE, "Item": _item(second)}},
        ]
    )
    for sid in (first, second):
        assert "Item" in ddb.get_item(TableName=TABLE, Key={"call_sid": {"S": sid}}, ConsistentRead=True)


# -- the emulator's HTTP server (calltrack_cli.local.emulator_server) ------------------------------

LIST_TABLES = {
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261203/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


@pytest.fixture
def emulator_server():
    from calltrack_cli.local.emulator_server import EmulatorServer

    server = EmulatorServer("127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def _connection(server):
    import http.client

    host, port = server.get_host_and_port()
    return http.client.HTTPConnection(host, port, timeout=10)


def test_one_connection_carries_request_after_request(emulator_server):
    conn = _connection(emulator_server)
    # Given a request the application answers, one it answers without reading its body, and a HEAD
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    first = conn.getresponse()
    first_body = first.read()
    conn.request("GET", "/moto-api/nothing-here", body=b"x" * 5000)
    conn.getresponse().read()
    conn.request("HEAD", "/moto-api/nothing-here")
    conn.getresponse().read()
    # When the connection is used once more
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    last = conn.getresponse()
    # Then every answer came on the one connection, each one whole
    assert first.status == last.status == 200
    assert first.getheader("Connection") is None
    assert int(first.getheader("Content-Length")) == len(first_body) and b"TableNames" in first_body
    assert b"TableNames" in last.read()
    assert conn.sock is not None  # never reconnected: http.client drops its socket on a close


def test_a_chunked_request_body_is_read_whole(emulator_server):
    conn = _connection(emulator_server)
    chunked = {**LIST_TABLES, "Transfer-Encoding": "chunked"}
    conn.request("POST", "/", body=iter([b"{", b"}"]), headers=chunked, encode_chunked=True)
    assert conn.getresponse().read().startswith(b'{"TableNames"')
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    assert conn.getresponse().status == 200


def test_a_stopped_emulator_answers_nobody_not_even_on_a_kept_connection(emulator_server):
    import http.client

    address = emulator_server.get_host_and_port()
    conn = _connection(emulator_server)
    conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
    assert conn.getresponse().read()
    # When the emulator stops (a storage outage in the tests)
    emulator_server.stop()
    # Then the connection a client kept is closed, and a new one is refused
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        conn.request("POST", "/", body=b"{}", headers=LIST_TABLES)
        conn.getresponse().read()
    with pytest.raises(ConnectionError):
        http.client.HTTPConnection(*address, timeout=10).request("POST", "/", body=b"{}", headers=LIST_TABLES)


def test_a_message_past_its_queues_retention_is_not_received(local_stack):
    from moto.sqs.models import sqs_backends

    from calltrack_cli.local.events import ACCOUNT_ID, REGION

    sqs = local_stack.stack.client("sqs")
    names = [f"retention-{unique_call_sid()[-12:]}" for _ in range(2)]
    kept_a_minute = {"MessageRetentionPeriod": "60"}
    urls = [sqs.create_queue(QueueName=n, Attributes=kept_a_minute)["QueueUrl"] for n in names]
    # Given a queue that keeps messages a minute, one holding a message sent two minutes ago and
    # one holding a message sent now
    for url, body in zip(urls, ("old", "new"), strict=True):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs_backends[ACCOUNT_ID][REGION].get_queue(names[0])._messages[0].sent_timestamp -= 120_000
    # When each is read, Then only the one within its retention comes
    got = [sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) for url in urls]
    assert got[0] == [] and [m["Body"] for m in got[1]] == ["new"]
