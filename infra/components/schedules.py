"""EventBridge rules from the wiring: each schedule sends {"job", "time", "force": false} to its
function; each event rule sends the matching AWS service events to its queue."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.wiring import EventRule, Schedule


def _rule_id(name: str) -> str:
    return "".join(p.capitalize() for p in name.split("-")) + "Rule"


class Schedules(Construct):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.rules: dict[str, events.Rule] = {}

    def add(self, schedule: Schedule, fn: lambda_.IFunction) -> events.Rule:
        rule = events.Rule(
            self,
            _rule_id(schedule.name),
            description=f"{schedule.name}: {schedule.description}"[:512],
            schedule=events.Schedule.expression(f"cron({schedule.cron_utc})"),
        )
        rule.add_target(
            targets.LambdaFunction(
                fn,
                event=events.RuleTargetInput.from_object(
                    {"job": schedule.name, "time": events.EventField.time, "force": False}
                ),
                retry_attempts=2,
            )
        )
        self.rules[schedule.name] = rule
        return rule

    def add_event_rule(self, rule: EventRule, queue: sqs.IQueue, dead_letters: sqs.IQueue) -> events.Rule:
        """The rule's matching events onto ``queue`` (EventBridge retries, then ``dead_letters``)."""
        pattern = rule.pattern()
        built = events.Rule(
            self,
            _rule_id(rule.name),
            description=f"{rule.name}: {rule.description}"[:512],
            event_pattern=events.EventPattern(
                source=[rule.source],
                detail_type=[rule.detail_type],
                detail=pattern.get("detail"),  # type: ignore[arg-type]
            ),
        )
        built.add_target(targets.SqsQueue(queue, dead_letter_queue=dead_letters, retry_attempts=10))
        self.rules[rule.name] = built
        return built
