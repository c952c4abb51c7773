"""The one function builder: every Lambda in the wiring is made here, the same way.

Per function: its own role (no managed policies), its own log group with retention, the
shared layer, python3.12 on arm64, X-Ray active tracing, memory/timeout from the wiring, and
exactly the grants and environment its wiring entry names (tables read-write / read-only,
buckets, queues it sends to, dead-letter queues it redrives, the ops topic, the SSM parameters
of its secrets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from calltrack.settings import OPS_TOPIC_ENV, SECRET_ENV, bucket_env, dlq_env, queue_env, table_env
from infra import nag
from infra.components.bundling import function_code
from infra.wiring import LambdaFunction

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "calltrack"

def construct_id(name: str) -> str:
    return "".join(p.capitalize() for p in name.replace("-", "_").split("_"))


@dataclass
class Resources:
    """What the functions may be granted, by the names the wiring uses."""

    tables: dict[str, dynamodb.ITable]
    buckets: dict[str, s3.IBucket]
    queues: dict[str, sqs.IQueue]
    ops_topic: sns.ITopic
    secrets: dict[str, ssm.IParameter]
    dead_letter_queues: dict[str, sqs.IQueue] = field(default_factory=dict)
    common_env: dict[str, str] = field(default_factory=dict)
    indexed_tables: frozenset[str] = frozenset()  # tables with GSIs (grants cover <arn>/index/*)
    user_pool: cognito.IUserPool | None = None  # the console's (issue 23)


class FunctionFactory(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        layer_code: lambda_.Code,
        resources: Resources,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        self.resources = resources
        self.retention = retention_days(log_retention_days)
        self.layer = lambda_.LayerVersion(
            self,
            "CalltrackLayer",
            code=layer_code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="calltrack shared package + runtime dependencies (no boto3)",
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}

    def log_group(self, id: str) -> logs.LogGroup:
        return logs.LogGroup(self, id, retention=self.retention, removal_policy=RemovalPolicy.DESTROY)

    def role(self, id: str, log_group: logs.ILogGroup) -> iam.Role:
        role = iam.Role(
            self, id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=f"calltrack {id}"
        )
        log_group.grant_write(role)  # instead of AWSLambdaBasicExecutionRole (logs:* on every group)
        nag.acknowledge(role, "AwsSolutions-IAM5[Resource::*]", nag.XRAY_REASON)
        return role

    def build(self, spec: LambdaFunction) -> lambda_.Function:
        if spec.name in self.functions:
            raise ValueError(f"function {spec.name} is declared twice in the wiring")
        cid = construct_id(spec.name)
        group = self.log_group(f"{cid}Logs")
        role = self.role(f"{cid}Role", group)
        env = {
            **self.resources.common_env,
            "POWERTOOLS_SERVICE_NAME": spec.name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            # Responses/errors can carry caller numbers; keep them out of X-Ray metadata.
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        fn = lambda_.Function(
            self,
            cid,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=function_code(spec.folder, spec.bundles),
            layers=[self.layer],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_s),
            description=spec.description or spec.name,
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=group,
            environment=env,
        )
        nag.acknowledge(fn, "AwsSolutions-L1", nag.L1_REASON)
        self._grant(fn, role, spec)
        self.functions[spec.name] = fn
        self.log_groups[spec.name] = group
        return fn

    def _grant(self, fn: lambda_.Function, role: iam.Role, spec: LambdaFunction) -> None:
        r = self.resources
        rw = spec.tables + (("idempotency",) if spec.idempotency else ())
        read_only = (*spec.read_only_tables, *spec.update_tables)
        granted = [(t, True) for t in rw] + [(t, False) for t in read_only]
        for logical, write in granted:
            table = _lookup(r.tables, logical, spec, "table")
            if write:
                table.grant_read_write_data(fn)
            else:
                table.grant_read_data(fn)
                if logical in spec.update_tables:
                    table.grant(fn, "dynamodb:UpdateItem")  # no PutItem, no DeleteItem
            if logical in r.indexed_tables:
                nag.acknowledge_table_indexes(role, table.table_arn, logical, write)
            fn.add_environment(table_env(logical), table.table_name)
        for logical in spec.append_tables:
            table = _lookup(r.tables, logical, spec, "table")
            table.grant(fn, "dynamodb:PutItem")  # no read, no UpdateItem, no DeleteItem
            if logical in r.indexed_tables:
                nag.acknowledge_table_indexes(role, table.table_arn, logical, True)
            fn.add_environment(table_env(logical), table.table_name)
        for name in spec.buckets:
            bucket = _lookup(r.buckets, name, spec, "bucket")
            bucket.grant_read_write(fn)  # incl. delete: the retention sweep removes recordings
            nag.acknowledge_bucket_grant(role, bucket.bucket_arn, name)
            fn.add_environment(bucket_env(name), bucket.bucket_name)
        for name in spec.read_only_buckets:
            bucket = _lookup(r.buckets, name, spec, "bucket")
            bucket.grant_read(fn)
            nag.acknowledge_bucket_grant(role, bucket.bucket_arn, name)
            fn.add_environment(bucket_env(name), bucket.bucket_name)
        for name in spec.sends_to_queues:
            queue = _lookup(r.queues, name, spec, "queue")
            queue.grant_send_messages(fn)
            fn.add_environment(queue_env(name), queue.queue_url)
        for name in spec.redrives_queues:
            dlq = _lookup(r.dead_letter_queues, name, spec, "dead-letter queue")
            dlq.grant_consume_messages(fn)
            fn.add_environment(dlq_env(name), dlq.queue_url)
            queue = _lookup(r.queues, name, spec, "queue")
            queue.grant_send_messages(fn)
            fn.add_environment(queue_env(name), queue.queue_url)
        for name in spec.sweeps_dead_letters:
            dlq = _lookup(r.dead_letter_queues, name, spec, "dead-letter queue")
            dlq.grant(fn, "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
            fn.add_environment(dlq_env(name), dlq.queue_url)
        if spec.publishes_to_ops_topic:
            r.ops_topic.grant_publish(fn)
            fn.add_environment(OPS_TOPIC_ENV, r.ops_topic.topic_arn)
        for name in spec.secrets:
            param = _lookup(r.secrets, name, spec, "secret")
            param.grant_read(fn)
            fn.add_environment(SECRET_ENV[name], param.parameter_name)
        if spec.account_secrets:
            self._grant_account_secrets(role, spec.account_secrets)
        if spec.transcribe:
            self._grant_transcribe(fn, role, spec)
        if spec.user_pool:
            self._grant_user_pool(role, spec)

    def _grant_user_pool(self, role: iam.Role, spec: LambdaFunction) -> None:
        """On the stack's pool, nothing else: console.directory's user and group management
        ("admin"), or account deletion's removal of an account's users ("remove")."""
        from infra.components.console import USER_ADMIN_ACTIONS, USER_REMOVE_ACTIONS

        pool = self.resources.user_pool
        if pool is None:
            raise KeyError(f"function {spec.name} manages console users but the stack has no user pool")
        actions = USER_ADMIN_ACTIONS if spec.user_pool == "admin" else USER_REMOVE_ACTIONS
        statement = iam.PolicyStatement(actions=list(actions), resources=[pool.user_pool_arn])
        role.add_to_principal_policy(statement)

    def _grant_transcribe(
        self, fn: lambda_.Function, role: iam.Role, spec: LambdaFunction
    ) -> None:
        """StartTranscriptionJob, which has no resource type in IAM (Resource must be "*"), only with
        the recordings bucket as its output and the stack's key encrypting it (the condition keys
        transcribe:OutputBucketName / OutputEncryptionKMSKeyId). Transcribe reads the media and
        writes its output with the caller's S3 and KMS permissions (the bucket grant). Completion
        comes as an EventBridge event; GetTranscriptionJob (read only, resource type
        ``transcriptionjob`` in the Service Authorization Reference) looks at one of the stack's jobs
        (names ``TRANSCRIPTION_JOB_PREFIX``...) whose event has not come (transcripts.pipeline)."""
        bucket = _lookup(self.resources.buckets, "recordings", spec, "bucket")
        conditions = {"transcribe:OutputBucketName": bucket.bucket_name}
        if bucket.encryption_key is not None:
            conditions["transcribe:OutputEncryptionKMSKeyId"] = bucket.encryption_key.key_arn
            fn.add_environment("CALLTRACK_RECORDINGS_KMS_KEY_ID", bucket.encryption_key.key_arn)
        start = iam.PolicyStatement(actions=["transcribe:StartTranscriptionJob"], resources=["*"],
                                    conditions={"StringEquals": conditions})
        role.add_to_policy(start)
        jobs = Stack.of(role).format_arn(service="transcribe", resource="transcription-job",
                                         resource_name=f"{TRANSCRIPTION_JOB_PREFIX}*")
        # Get: a job whose event has not come; Delete: a spent job that a retry runs again
        look_and_delete = ["transcribe:GetTranscriptionJob", "transcribe:DeleteTranscriptionJob"]
        role.add_to_policy(iam.PolicyStatement(actions=look_and_delete, resources=[jobs]))
        nag.acknowledge(role, "AwsSolutions-IAM5[Resource::*]", nag.TRANSCRIBE_JOBS_REASON)
        nag.acknowledge(role, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:transcribe:<AWS::Region>:"
                        f"<AWS::AccountId>:transcription-job/{TRANSCRIPTION_JOB_PREFIX}*]",
                        nag.TRANSCRIBE_LOOKUP_REASON)

    def _grant_account_secrets(self, role: iam.Role, access: str) -> None:
        """SSM ``/calltrack/{account}/{name}`` (calltrack.account_secrets): two path segments, so
        the stack's own ``/calltrack/<name>`` parameters are not covered. SecureStrings use the
        ``aws/ssm`` key, whose key policy lets the account's principals use it through SSM."""
        stack = Stack.of(role)
        account_params = stack.format_arn(
            service="ssm", resource="parameter", resource_name="calltrack/*/*"
        )
        actions = ACCOUNT_SECRET_ACTIONS[access]
        role.add_to_policy(iam.PolicyStatement(actions=actions, resources=[account_params]))
        if access in ("write", "erase"):
            # Names and update times of an account's secrets; DescribeParameters has no resource
            # level and returns metadata only, never a value.
            role.add_to_policy(iam.PolicyStatement(actions=["ssm:DescribeParameters"], resources=["*"]))
        nag.acknowledge(role, "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:"
                        "<AWS::AccountId>:parameter/calltrack/*/*]", nag.ACCOUNT_SECRETS_REASON)
        if access in ("write", "erase"):
            nag.acknowledge(role, "AwsSolutions-IAM5[Resource::*]", nag.ACCOUNT_SECRETS_REASON)


# The names of the transcription jobs the stack starts (transcripts.engine.JOB_PREFIX, compared by an
# infra test): GetTranscriptionJob is granted on these jobs only.
TRANSCRIPTION_JOB_PREFIX = "calltrack-"

# What each level of account-secret access may do on parameter/calltrack/*/* (infra/wiring.py).
ACCOUNT_SECRET_ACTIONS = {
    "read": ["ssm:GetParameter"],
    "write": ["ssm:PutParameter"],
    "erase": ["ssm:DeleteParameter", "ssm:DeleteParameters"],
}

T = TypeVar("T")


def _lookup(registry: dict[str, T], name: str, spec: LambdaFunction, kind: str) -> T:
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none"
        raise KeyError(
            f"wiring function {spec.name!r} names unknown {kind} {name!r} (known: {known})"
        ) from None


_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}


def retention_days(days: int) -> logs.RetentionDays:
    if days not in _RETENTION_DAYS:
        raise ValueError(f"logRetentionDays {days} is not one of {sorted(_RETENTION_DAYS)}")
    return getattr(logs.RetentionDays, _RETENTION_DAYS[days])
