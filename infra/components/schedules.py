"""EventBridge rules from the wiring: each sends {"job", "time", "force": false} to its function."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.wiring import Schedule


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
