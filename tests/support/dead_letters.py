"""A dead-letter queue for the redrive jobs' unit tests (``calltrack.dead_letters`` ports)."""

from __future__ import annotations

from calltrack.dead_letters import DeadLetter, RedrivePorts


class FakeDeadLetters:
    """A DLQ answering in batches of ten, then empty (what a run's long polls see); it keeps what
    was sent back (body, redrives) and the receipts deleted."""

    def __init__(self, letters: list[DeadLetter]) -> None:
        self.waiting = list(letters)
        self.sent: list[tuple[str, int]] = []
        self.deleted: list[str] = []

    def ports(self) -> RedrivePorts:
        def receive() -> list[DeadLetter]:
            batch, self.waiting = self.waiting[:10], self.waiting[10:]
            return batch

        return RedrivePorts(receive=receive, send=lambda body, n: self.sent.append((body, n)),
                            delete=self.deleted.append)
