"""cdk-nag (AwsSolutions, cdk-nag 3 / ``cdk.Validations``) acknowledgements.

Every acknowledgement is made where the resource is made, on that resource only, with the
reason specific to this design. ``acknowledgements(stack)`` lists them (tests check them).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

_REGISTRY_ATTR = "_calltrack_nag_acks"

L1_REASON = (
    "Pinned to python3.12 on purpose: the shared layer's wheels are built for cp312/arm64 "
    "(infra/layer.py PYTHON_VERSION); bump the runtime and the layer together."
)
XRAY_REASON = (
    "X-Ray active tracing (xray:PutTraceSegments/PutTelemetryRecords) and, for stream consumers, "
    "dynamodb:ListStreams have no resource-level permissions; every other statement is scoped."
)
STREAM_FAILURES_REASON = (
    "This queue IS a dead-letter destination: the on-failure destination of the DynamoDB stream "
    "event source mappings (records a stream consumer gave up on after retrying)."
)
ACCOUNT_SECRETS_REASON = (
    "Account secrets are SSM parameters /calltrack/{account}/{name} created at run time by the admin "
    "API for any account; DescribeParameters (names and dates only) has no resource-level permission."
)
TRANSCRIBE_JOBS_REASON = (
    "transcribe:StartTranscriptionJob has no resource type (the Service Authorization Reference "
    "lists none: Resource must be *); it is conditioned on the recordings bucket as the output "
    "and the stack's key encrypting it."
)
TRANSCRIBE_LOOKUP_REASON = (
    "transcribe:GetTranscriptionJob and DeleteTranscriptionJob on the stack's own jobs only (names start "
    "with the stack's job prefix, one per call recording): the lookup of a job whose completion event "
    "was lost, and the deletion of a spent job a retry runs again."
)
APIG4_REASONS = {
    "twilio": "Twilio webhook: Twilio cannot send bearer tokens; the handler verifies the "
    "X-Twilio-Signature HMAC over the configured public URL before reading the request.",
    "public": "Public by design: dni.js and session leases are fetched by anonymous website visitors "
    "(the handler checks the Origin against the account's configured site origins); the console's "
    "sign-in (POST /v1/session) takes the user's password, checked by Cognito.",
    "token": "Authorized in the handler, consistently for all management routes: the bearer token "
    "is hashed and resolved to one account and role (calltrack.auth) in the tokens table.",
}


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    if len(reason) < 40:
        raise ValueError(f"acknowledgement of {rule} needs a design-specific reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
    stack = Stack.of(construct)
    registry: list[dict[str, str]] = getattr(stack, _REGISTRY_ATTR, None) or []
    registry.append({"path": construct.node.path, "rule": rule, "reason": reason})
    setattr(stack, _REGISTRY_ATTR, registry)


def acknowledgements(stack: Stack) -> list[dict[str, str]]:
    return list(getattr(stack, _REGISTRY_ATTR, None) or [])


def arn_ref(scope: IConstruct, arn: str) -> str:
    """The ``<LogicalId.Arn>`` form cdk-nag uses in finding ids for a resource's ARN token."""
    resolved: Any = Stack.of(scope).resolve(arn)
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        logical_id, attr = resolved["Fn::GetAtt"]
        return f"<{logical_id}.{attr}>"
    raise ValueError(f"cannot express {resolved!r} as a cdk-nag resource reference")


def acknowledge_table_indexes(role: IConstruct, table_arn: str, logical: str, write: bool) -> None:
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{arn_ref(role, table_arn)}/index/*]",
        f"Queries the GSIs of the {logical} table it is granted "
        f"({'read-write' if write else 'read-only'} via grant_*_data, which covers <table>/index/*).",
    )


S3_GRANT_ACTIONS = ("s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*")
KMS_GRANT_ACTIONS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


def acknowledge_bucket_grant(role: IConstruct, bucket_arn: str, bucket: str) -> None:
    why = f"grant_read_write on the {bucket} bucket (objects keyed by account/call, so any key)"
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{arn_ref(role, bucket_arn)}/*]",
        f"Objects of the {bucket} bucket only: keys are per account/call and created at run time.",
    )
    for action in S3_GRANT_ACTIONS:
        acknowledge(role, f"AwsSolutions-IAM5[Action::{action}]", f"CDK action group from {why}.")
    for action in KMS_GRANT_ACTIONS:
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Action::{action}]",
            f"KMS data-key actions on the one data key that encrypts the {bucket} bucket (SSE-KMS).",
        )
