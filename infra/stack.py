"""CalltrackStack: composes the per-concern constructs and wires them from the wiring declaration.

The stack only wires and grants. Every function, route, queue consumer, stream consumer and
schedule comes from ``infra.wiring`` (pass ``wiring=`` to build from another declaration), and
every table from the PynamoDB models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Annotations, CfnOutput, Stack
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from calltrack.settings import COGNITO_CLIENT_ENV, COGNITO_POOL_ENV
from infra.components.api import HttpApi
from infra.components.bundling import layer_code
from infra.components.console import Console
from infra.components.data import IDEMPOTENCY_SPEC, Data, TableSpec, model_specs
from infra.components.dni import Dni
from infra.components.functions import FunctionFactory, Resources, construct_id, retention_days
from infra.components.monitoring import Monitoring
from infra.components.queues import Queues
from infra.components.reporting import Reporting
from infra.components.schedules import Schedules
from infra.components.storage import access_logs_bucket, private_bucket
from infra.components.voice import Voice
from infra.config import DeployConfig
from infra.wiring import WIRING, Wiring

# Where Transcribe writes its output JSON in the recordings bucket (transcripts.engine.output_key)
TRANSCRIPT_OUTPUT_PREFIX = "transcripts/"
TRANSCRIPT_OUTPUT_DAYS = 7
WEBHOOK_FUNCTIONS = ("voice_webhook",)  # their errors page ops: a caller may have heard the fallback


class CalltrackStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        wiring: Wiring = WIRING,
        config: DeployConfig | None = None,
        layer_deps: Path | None = None,
        table_specs: list[TableSpec] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope, id, description="calltrack: open-source call tracking (Twilio + AWS)", **kwargs
        )
        config = config or DeployConfig()
        self.wiring = wiring
        self.config = config
        if layer_deps is None:
            Annotations.of(self).add_warning_v2(
                "calltrack:stub-layer",
                "Layer built WITHOUT dependencies (stub): do not deploy; run `make layer`",
            )

        # Data
        specs = list(table_specs if table_specs is not None else model_specs())
        if any(fn.idempotency for fn in wiring.functions):
            specs.append(IDEMPOTENCY_SPEC)
        self.data = Data(self, "Data", specs=specs)

        # Recordings: access logs, the recordings bucket, queues
        self.access_logs = access_logs_bucket(self, "AccessLogs")
        self.recordings_bucket = private_bucket(
            self,
            "Recordings",
            key=self.data.key,
            logs=self.access_logs,
            versioned=True,
            noncurrent_days=config.recordings_noncurrent_days,
            # Transcribe's output JSON lives until its compact form is on the call (minutes); one
            # whose call was erased or re-recorded meanwhile goes after a week.
            expire_prefixes={TRANSCRIPT_OUTPUT_PREFIX: TRANSCRIPT_OUTPUT_DAYS},
        )
        # The routing snapshot: each tracking number's routing, for the webhook while DynamoDB is down.
        self.routing_bucket = private_bucket(
            self, "Routing", key=self.data.key, logs=self.access_logs, versioned=False
        )
        self.queues = Queues(self, "Queues", queues=wiring.queues)
        self.reporting = Reporting(self, "Reporting", key=self.data.key, logs=self.access_logs)
        self.monitoring = Monitoring(self, "Monitoring", key=self.data.key)
        self.api = HttpApi(
            self,
            "Http",
            rate_limit=config.api_rate_limit,
            burst_limit=config.api_burst_limit,
            log_retention=retention_days(config.log_retention_days),
        )
        public_url = config.public_url.rstrip("/") or self.api.endpoint

        secrets = {
            "twilio_auth_token": config.twilio_auth_token_param,
            "twilio_api_secret": config.twilio_api_secret_param,
            "admin_token": config.admin_token_param,
        }
        # The manager's console: its user pool (every function verifies console sign-ins) and pages.
        self.console = Console(self, "Console", api_endpoint=self.api.endpoint, logs=self.access_logs)
        common_env = {
            "CALLTRACK_PUBLIC_URL": public_url,
            COGNITO_POOL_ENV: self.console.user_pool.user_pool_id,
            COGNITO_CLIENT_ENV: self.console.client.user_pool_client_id,
        }
        if config.twilio_account_sid:
            common_env["TWILIO_ACCOUNT_SID"] = config.twilio_account_sid
        else:
            Annotations.of(self).add_warning_v2(
                "calltrack:no-account-sid",
                "context twilioAccountSid is not set: recordings cannot be fetched",
            )
        if config.twilio_api_key:
            common_env["TWILIO_API_KEY"] = config.twilio_api_key
        if config.fallback_forward_to:
            # the voice webhook's last resort (storage down, no cached routing) dials it too, as the
            # Twilio fallback does: without it the caller heard the apology and was hung up on
            common_env["CALLTRACK_FALLBACK_FORWARD_TO"] = config.fallback_forward_to

        self.factory = FunctionFactory(
            self,
            "Functions",
            layer_code=layer_code(layer_deps),
            log_retention_days=config.log_retention_days,
            resources=Resources(
                tables=dict(self.data.tables),
                buckets={
                    "recordings": self.recordings_bucket,
                    "exports": self.reporting.exports,
                    "routing": self.routing_bucket,
                },
                queues=dict(self.queues.queues),
                dead_letter_queues=dict(self.queues.dlqs),
                ops_topic=self.monitoring.topic,
                secrets={
                    name: ssm.StringParameter.from_secure_string_parameter_attributes(
                        self, f"{construct_id(name)}Param", parameter_name=param
                    )
                    for name, param in secrets.items()
                },
                common_env=common_env,
                indexed_tables=self.data.indexed_tables,
                user_pool=self.console.user_pool,
            ),
        )
        functions = {fn.name: self.factory.build(fn) for fn in wiring.functions}

        def function(name: str, what: str) -> Any:
            if name not in functions:
                raise KeyError(f"{what} refers to unknown function {name!r}")
            return functions[name]

        for route in wiring.routes:
            self.api.add_route(
                route, function(route.function, f"route {route.method} {route.path}"), route.function
            )
        for queue in wiring.queues:
            function(queue.consumer, f"queue {queue.name}").add_event_source(
                sources.SqsEventSource(
                    self.queues.queues[queue.name],
                    batch_size=queue.batch_size,
                    report_batch_item_failures=True,
                    max_concurrency=queue.max_concurrency,
                )
            )
        for stream in wiring.streams:
            if stream.table not in self.data.tables:
                raise KeyError(f"stream consumer {stream.consumer} refers to unknown table {stream.table!r}")
            self.reporting.add_stream_consumer(
                stream,
                self.data.tables[stream.table],
                function(stream.consumer, f"stream {stream.table}"),
                config.stream_retry_attempts,
            )
        self.schedules = Schedules(self, "Schedules")
        for schedule in wiring.schedules:
            self.schedules.add(schedule, function(schedule.function, f"schedule {schedule.name}"))
        for rule in wiring.event_rules:
            if rule.queue not in self.queues.queues:
                raise KeyError(f"event rule {rule.name} refers to unknown queue {rule.queue!r}")
            self.schedules.add_event_rule(rule, self.queues.queues[rule.queue], self.queues.dlqs[rule.queue])

        self.voice = Voice(
            self,
            "Voice",
            api=self.api,
            factory=self.factory,
            public_url=public_url,
            forward_to=config.fallback_forward_to,
            auth_token=self.factory.resources.secrets["twilio_auth_token"],
        )
        if not config.fallback_forward_to:
            Annotations.of(self).add_warning_v2(
                "calltrack:no-fallback",
                "context fallbackForwardTo is not set: the fallback TwiML only apologises",
            )
        Dni(self, "Dni", public_url=public_url)

        # Monitoring
        for name in WEBHOOK_FUNCTIONS:
            if name in functions:
                self.monitoring.function_errors(construct_id(name), functions[name])
        self.monitoring.function_errors("Fallback", self.voice.fallback)
        # A scheduled job's failed run is retried twice by Lambda and then dropped: its errors page
        # ops (a retention sweep that fails every night would keep recordings past their retention)
        for name in sorted({schedule.function for schedule in wiring.schedules}):
            why = "a scheduled run failed: see its logs; the next run retries"
            self.monitoring.function_errors(construct_id(name), functions[name], why)
        self.monitoring.api_5xx(self.api.api, config.api_5xx_alarm_per_5min)
        for name, dlq in self.queues.dlqs.items():
            self.monitoring.dlq_depth(f"{construct_id(name)}Dlq", dlq)
        for name, failures in self.reporting.stream_failures.items():
            self.monitoring.dlq_depth(f"{construct_id(name)}StreamFailures", failures)
        self.monitoring.missed_call_spike(config.missed_calls_alarm_per_hour)
        self.monitoring.quiet_failures()
        for stream in wiring.streams:
            self.monitoring.stream_lag(construct_id(stream.consumer), functions[stream.consumer])
        self.monitoring.dashboard(
            functions["voice_webhook"],
            {**{construct_id(n): q for n, q in self.queues.dlqs.items()},
             **{f"{construct_id(n)}StreamFailures": q for n, q in self.reporting.stream_failures.items()}},
        )

        CfnOutput(self, "ApiUrl", value=self.api.endpoint, description="HTTP API endpoint")
        CfnOutput(self, "ConsoleUrl", value=self.console.url, description="The manager's console")
        CfnOutput(self, "ConsoleBucketName", value=self.console.bucket.bucket_name,
                  description="aws s3 sync build/console s3://BUCKET/console/ (docs/deploy.md)")
        CfnOutput(self, "UserPoolId", value=self.console.user_pool.user_pool_id, description="Console users")
        CfnOutput(
            self, "PublicUrl", value=public_url, description="Base URL Twilio signs (CALLTRACK_PUBLIC_URL)"
        )
        CfnOutput(
            self, "OpsTopicArn", value=self.monitoring.topic.topic_arn, description="Subscribe ops here"
        )
        CfnOutput(
            self,
            "ExportsBucketName",
            value=self.reporting.exports.bucket_name,
            description="QuickSight / review exports",
        )
