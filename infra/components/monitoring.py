"""Monitoring: the encrypted ops topic and the CloudWatch alarms that notify it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.functions import METRICS_NAMESPACE

MISSED_CALLS_METRIC = "CallsMissed"


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "OpsTopic", display_name="calltrack ops", master_key=key, enforce_ssl=True
        )
        self.alarms: dict[str, cloudwatch.Alarm] = {}

    def _alarm(
        self, id: str, metric: cloudwatch.IMetric, threshold: float, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms[id] = alarm
        return alarm

    def function_errors(self, name: str, fn: lambda_.IFunction) -> None:
        self._alarm(
            f"{name}Errors",
            fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            1,
            f"{name} raised errors (Twilio then uses the fallback TwiML URL)",
        )

    def api_5xx(self, api: apigwv2.HttpApi, threshold: int) -> None:
        self._alarm(
            "Api5xx",
            api.metric_server_error(period=Duration.minutes(5), statistic="Sum"),
            threshold,
            "HTTP API returned 5xx responses",
        )

    def dlq_depth(self, name: str, queue: sqs.IQueue) -> None:
        self._alarm(
            f"{name}Depth",
            queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            1,
            f"messages are waiting in {name}: inspect and redrive",
        )

    def missed_call_spike(self, threshold: int) -> None:
        # Sum over all accounts: the voice webhook emits CallsMissed via Powertools EMF with the
        # default dimension service=voice_webhook. Per-account thresholds are the hourly job's.
        metric = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=MISSED_CALLS_METRIC,
            dimensions_map={"service": "voice_webhook"},
            statistic="Sum",
            period=Duration.hours(1),
        )
        self._alarm(
            "MissedCallSpike", metric, threshold, f">= {threshold} missed calls in one hour (all accounts)"
        )
