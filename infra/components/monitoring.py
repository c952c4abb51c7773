"""Monitoring: the encrypted ops topic, the CloudWatch alarms that notify it, and the ops dashboard.

Alarms cover what fails loudly (function errors, API 5xx, dead letters) and what fails quietly:
the voice webhook's fail-open answers (it forwards the call and answers 200, so neither Errors nor
5xx sees it), callbacks lost by the webhook's outbox, scheduled jobs that failed for an account or
failed their run (each scheduled function's Errors: a retention sweep, an export, a redrive),
and stream consumers falling behind (iterator age). L2 constructs only.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.functions import METRICS_NAMESPACE

MISSED_CALLS_METRIC = "CallsMissed"
STREAM_LAG_ALARM_MS = 5 * 60 * 1000  # a stream consumer this far behind is stuck, not busy


def app_metric(service: str, name: str, *, statistic: str = "Sum", minutes: int = 5) -> cloudwatch.Metric:
    """A metric the functions emit with Powertools EMF (namespace calltrack, dimension service)."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=Duration.minutes(minutes),
    )


class Monitoring(Construct):
    def __init__(self, scope: Construct, id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.topic = sns.Topic(
            self, "OpsTopic", display_name="calltrack ops", master_key=key, enforce_ssl=True
        )
        # enforce_ssl writes the topic's policy (its TLS-only Deny), which replaces SNS's default
        # policy: CloudWatch may then publish the alarms only when the policy says so
        stack = Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(
                        service="cloudwatch", resource="alarm", resource_name="*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME)},
                },
            )
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

    def function_errors(
        self, name: str, fn: lambda_.IFunction, why: str = "Twilio then uses the fallback TwiML URL"
    ) -> None:
        self._alarm(
            f"{name}Errors",
            fn.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            1,
            f"{name} raised errors ({why})",
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

    def quiet_failures(self) -> None:
        """What answers 200 while something is wrong."""
        self._alarm(
            "WebhookFailOpen",
            app_metric("voice_webhook", "WebhookFailures"),
            1,
            "the voice webhook answered fail-open (call forwarded; storage or routing failed): see its logs",
        )
        self._alarm(
            "WebhookCallbacksLost",
            app_metric("voice_webhook", "WebhookCallbacksLost"),
            1,
            "a Twilio callback was neither stored nor handed to the outbox: that call's record is incomplete",
        )
        self._alarm(
            "FallbackUnchecked",
            app_metric("fallback", "FallbackUnchecked"),
            1,
            "the Twilio fallback put a call through without checking its signature (SSM unreadable)",
        )
        self._alarm(
            "JobAccountFailures",
            app_metric("ops_jobs", "JobAccountFailures", minutes=60),
            1,
            "a scheduled job (weekly alert, spike check, monthly review) failed for an account",
        )

    def stream_lag(self, name: str, fn: lambda_.IFunction) -> None:
        self._alarm(
            f"{name}IteratorAge",
            fn.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(5)),
            STREAM_LAG_ALARM_MS,
            f"{name} is more than 5 minutes behind the calls stream (failing records retried?)",
        )

    def dashboard(
        self, voice: lambda_.IFunction, dead_letter_queues: dict[str, sqs.IQueue]
    ) -> cloudwatch.Dashboard:
        """One page for ops: traffic, quiet failures, latency, recordings, dead letters, pools."""

        def calls(name: str, label: str) -> cloudwatch.IMetric:
            return app_metric("voice_webhook", name, minutes=1).with_(label=label)

        board = cloudwatch.Dashboard(self, "OpsDashboard", default_interval=Duration.hours(24))
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Calls per minute", width=8,
                left=[calls("CallsReceived", "received"), calls("CallsMissed", "missed")],
            ),
            cloudwatch.GraphWidget(
                title="Fail-open answers and lost callbacks", width=8,
                left=[calls("WebhookFailures", "fail-open"), calls("WebhookCallbacksLost", "lost")],
            ),
            cloudwatch.GraphWidget(
                title="Voice webhook latency (ms)", width=8,
                left=[voice.metric_duration(statistic="p99", period=Duration.minutes(1)).with_(label="p99"),
                      voice.metric_duration(statistic="p50", period=Duration.minutes(1)).with_(label="p50")],
            ),
        )
        board.add_widgets(
            cloudwatch.GraphWidget(
                title="Recording ingest", width=8,
                left=[app_metric("recording_ingest", "RecordingIngestFailures").with_(label="failed tries"),
                      app_metric("recording_ingest", "RecordingsStored").with_(label="stored")],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queue depth", width=8,
                left=[q.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum").with_(label=name)
                      for name, q in sorted(dead_letter_queues.items())],
            ),
            cloudwatch.GraphWidget(
                title="DNI pool exhaustions", width=8,
                left=[app_metric("dni_lease", "PoolExhausted").with_(label="shared numbers shown"),
                      # dni.max_numbers_per_address: visitors of one address shown no number
                      app_metric("dni_lease", "AddressCapped").with_(label="no number: address at its cap")],
            ),
        )
        self.board = board
        return board

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
