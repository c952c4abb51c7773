"""The local drain's idle test (``calltrack_cli.local.pollers.wait_idle``) against a background
loop that finishes a handler while a drain round runs (CI, 2026-12-03: a recording.ready webhook
was still queued when drain answered idle)."""

from __future__ import annotations

from calltrack_cli.local.pollers import wait_idle


class Invoker:
    in_flight = 0
    finished = 0


class Source:
    """What ``wait_idle`` asks of every source besides polling it: to know a drain is under way."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def begin_drain(self) -> None:
        self.told.append("begin")

    def end_drain(self) -> None:
        self.told.append("end")


class Queue(Source):
    """A queue source: hands what is waiting to its handler."""

    name = "queue-webhooks"

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[str] = []
        self.delivered: list[str] = []

    def poll_once(self) -> int:
        handed, self.waiting = self.waiting, []
        self.delivered += handed
        return len(handed)

    def pending(self) -> bool:
        return False


class StreamWithABackgroundLoop(Source):
    """A stream source whose background loop held its lock: when the drain's poll gets it, the
    record was already handled and its handler's message sent to the queue polled before it."""

    name = "stream-calls"

    def __init__(self, invoker: Invoker, queue: Queue) -> None:
        super().__init__()
        self.invoker, self.queue, self.fired = invoker, queue, False

    def poll_once(self) -> int:
        if not self.fired:
            self.fired = True
            self.queue.waiting.append("recording.ready")  # the handler's message
            self.invoker.finished += 1  # the background invocation ended during this round
        return 0  # nothing left for the drain itself

    def pending(self) -> bool:
        return False


def test_work_a_background_handler_left_during_a_round_is_drained_before_idle():
    # Given a queue polled before a stream whose background loop is finishing a record's handler
    invoker, queue = Invoker(), Queue()
    pollers = [queue, StreamWithABackgroundLoop(invoker, queue)]
    # When the drain runs
    result = wait_idle(pollers, invoker, timeout_s=5)  # type: ignore[arg-type]
    # Then the handler's message was delivered before the drain said idle
    assert result["status"] == "idle"
    assert queue.delivered == ["recording.ready"] and queue.waiting == []
    # and every source was told the drain began and, once it was over, that it ended
    assert [p.told for p in pollers] == [["begin", "end"], ["begin", "end"]]
