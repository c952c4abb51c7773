"""SQS queues from the wiring declaration, each with its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.wiring import Queue

DLQ_RETENTION = Duration.days(14)


def _camel(name: str) -> str:
    return "".join(p.capitalize() for p in name.replace("-", "_").split("_"))


def secure_queue(scope: Construct, id: str, **kwargs: object) -> sqs.Queue:
    return sqs.Queue(scope, id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, **kwargs)  # type: ignore[arg-type]


class Queues(Construct):
    """``self.queues[name]`` and ``self.dlqs[name]`` for every wiring Queue."""

    def __init__(self, scope: Construct, id: str, *, queues: tuple[Queue, ...]) -> None:
        super().__init__(scope, id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for q in queues:
            dlq = secure_queue(self, f"{_camel(q.name)}Dlq", retention_period=DLQ_RETENTION)
            self.dlqs[q.name] = dlq
            self.queues[q.name] = secure_queue(
                self,
                f"{_camel(q.name)}Queue",
                visibility_timeout=Duration.seconds(q.visibility_timeout_s),
                retention_period=Duration.days(4),
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=q.max_receive_count),
            )
