"""The demo waits for its backlog as long as it goes down (``calltrack_cli.demo.runner.settle``).

CI, 2026-12-03: `make demo` beside `make test` on a loaded machine gave up after 20 drain rounds
("queues and streams still busy") while every round was still processing records. The stack's
drain now says how many records a busy round processed; the demo goes on while that is not 0.
Here the client's requests go to the local gateway's control routes in process (no sockets).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from calltrack_cli.demo.player import DemoError
from calltrack_cli.demo.runner import SETTLE_STALLED_ROUNDS, settle
from calltrack_cli.local.client import StackClient
from calltrack_cli.local.gateway import LocalGateway
from calltrack_cli.local.pollers import StillBusy


class Backlog:
    """The stack's drain over a backlog: each round processes the next count, then gives up
    "still busy" (as ``wait_idle`` does after its 30 s) until the counts run out."""

    def __init__(self, rounds: list[int]) -> None:
        self.rounds = list(rounds)
        self.asked = 0

    def outbox(self) -> list[dict[str, Any]]:
        return []

    def drain(self) -> dict[str, Any]:
        self.asked += 1
        if not self.rounds:
            return {"status": "idle", "records": 0, "rounds": 1}
        records = self.rounds.pop(0)
        raise StillBusy(f"drain: still busy after 30s ({records} records processed); busy: queue-webhooks",
                        records)


class InProcess:
    """requests' Session handing each request to the gateway's local routes."""

    def __init__(self, gateway: LocalGateway) -> None:
        self.gateway = gateway

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        path = url.split("127.0.0.1:9", 1)[1]
        result = self.gateway._local_route(method, path, "")
        assert result is not None
        resp = requests.Response()
        resp.status_code = result.status
        resp.headers.update(dict(result.headers))
        resp._content = result.body
        return resp


def stack_with(backlog: Backlog, monkeypatch: pytest.MonkeyPatch) -> StackClient:
    from calltrack_cli.local import client

    gateway = LocalGateway(bind=False, control=backlog)  # type: ignore[arg-type]
    monkeypatch.setattr(client.requests, "Session", lambda: InProcess(gateway))
    return StackClient("http://127.0.0.1:9", admin_token="t")


def test_a_backlog_longer_than_twenty_drain_rounds_is_waited_for_while_it_goes_down(monkeypatch):
    # Given a backlog that keeps a drain busy for 30 rounds, each processing records
    backlog = Backlog([40] * 30)
    client = stack_with(backlog, monkeypatch)
    # When the demo settles
    settle(client)
    # Then it waited until the stack was idle
    assert backlog.asked == 31 and not backlog.rounds


def test_a_drain_that_processes_nothing_round_after_round_ends_the_demo_with_its_reason(monkeypatch):
    # Given a consumer that keeps the drain busy without one record going through
    backlog = Backlog([12, 0, 0, 0, 0, 0, 7])
    client = stack_with(backlog, monkeypatch)
    # When the demo settles
    with pytest.raises(DemoError) as err:
        settle(client)
    # Then it stops after the stalled rounds and says what the stack said
    assert backlog.asked == 1 + SETTLE_STALLED_ROUNDS
    assert "no record processed" in str(err.value) and "queue-webhooks" in str(err.value)


def test_a_busy_drain_answers_504_with_the_records_it_processed():
    gateway = LocalGateway(bind=False, control=Backlog([5]))  # type: ignore[arg-type]
    result = gateway._local_route("POST", "/_local/drain", "")
    assert result is not None and result.status == 504
    assert b'"records": 5' in result.body and b"still busy" in result.body
