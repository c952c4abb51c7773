"""IAM in the embedded emulator as AWS evaluates it, for the as-deployed local runtime.

moto (pinned: ``requirements-dev.lock``, written against 5.2.5) enforces IAM once
``POST /moto-api/reset-auth`` sets the free-request count to 0. It checks SQS and S3 against the real
resource ARNs, but evaluates DynamoDB (and DynamoDB Streams), SSM and SNS requests against
``Resource: "*"`` only, so a correctly scoped grant (``arn:...:table/calltrack-calls``) is denied
and the check proves nothing. ``install()`` patches exactly that, on those services' response
classes, so each request is checked as AWS checks it:

- DynamoDB: the table ARN, or ``table/NAME/index/INDEX`` for a Query or Scan on an index; every
  table of a ``BatchGetItem`` / ``BatchWriteItem``; and inside ``TransactWriteItems`` /
  ``TransactGetItems`` each item's own action (``PutItem``, ``UpdateItem``, ``DeleteItem``,
  ``ConditionCheckItem``, ``GetItem``) on its table — AWS has no "transaction" permission.
- DynamoDB Streams: the stream ARN of ``DescribeStream`` / ``GetShardIterator``, and of the shard
  iterator a ``GetRecords`` names (the stream consumers' hourly replay reads the stream itself).
- SSM: ``parameter/NAME`` for each name (``Name``, ``Names``) or the ``Path`` of a by-path read.
- SNS: the ``TopicArn`` / ``TargetArn`` of the request.
- SQS (resource already right): the batch calls are authorized as their single actions, as AWS
  does (``SendMessageBatch`` needs ``sqs:SendMessage``; there is no ``sqs:SendMessageBatch``).

And one hole it opens: presigned S3 URLs pass unchecked (moto only reads the Authorization header).

It also records every decision made for an assumed role (``DENIALS``, ``USED``), whatever the
handler then did with the error: the voice webhook fails open and answers Twilio 200 on a denied
write, so the run must fail on the record, not on the HTTP status. ``Condition`` blocks are not
evaluated by moto; ``condition_warnings`` names the statements that have one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("calltrack.local")
_installed = False
_lock = threading.Lock()


@dataclass(frozen=True)
class Decision:
    principal: str  # the assumed role's ARN: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    action: str  # "dynamodb:UpdateItem"
    resource: str

    @property
    def role(self) -> str:
        parts = self.principal.split(":assumed-role/")
        return parts[1].split("/")[0] if len(parts) == 2 else self.principal

    def __str__(self) -> str:
        return f"{self.role} was denied {self.action} on {self.resource}"


DENIALS: list[Decision] = []
USED: set[Decision] = set()


def dynamodb_checks(action: str, params: dict[str, Any], region: str, account: str) -> list[tuple[str, str]]:
    """(action, resource) pairs AWS authorizes for one DynamoDB request."""

    def table(name: str) -> str:
        return f"arn:aws:dynamodb:{region}:{account}:table/{name}"

    if action in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table(name)) for name in params.get("RequestItems") or {}]
    if action in ("TransactWriteItems", "TransactGetItems"):
        item_action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                       "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        checks = []
        for entry in params.get("TransactItems") or []:
            for kind, op in entry.items():
                checks.append((item_action.get(kind, action), table(op.get("TableName", "*"))))
        return checks or [(action, "*")]
    name = params.get("TableName")
    if not name:
        return [(action, "*")]
    if params.get("IndexName") and action in ("Query", "Scan"):
        return [(action, f"{table(name)}/index/{params['IndexName']}")]
    return [(action, table(name))]


def stream_checks(action: str, handler: Any) -> list[tuple[str, str]]:
    """DynamoDB Streams: the stream's ARN (a shard iterator begins with it, up to its first "|")."""
    arn = handler._get_param("StreamArn") or str(handler._get_param("ShardIterator") or "").split("|")[0]
    return [(action, arn or "*")]


def ssm_checks(action: str, handler: Any) -> list[tuple[str, str]]:
    names = handler._get_param("Names") or []
    if handler._get_param("Name"):
        names = [handler._get_param("Name")]
    if handler._get_param("Path"):
        names = [handler._get_param("Path")]
    prefix = f"arn:aws:ssm:{handler.region}:{handler.current_account}:parameter/"
    return [(action, prefix + str(name).lstrip("/")) for name in names] or [(action, "*")]


def sns_checks(action: str, handler: Any) -> list[tuple[str, str]]:
    arn = handler._get_param("TopicArn") or handler._get_param("TargetArn")
    return [(action, arn or "*")]


SQS_BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                     "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _checked(original: Any, checks: Any) -> Any:
    """An ``_authenticate_and_authorize_normal_action`` that runs moto's check once per pair."""

    def authorize(self: Any, resource: str = "*") -> None:
        action = self._get_action()
        pairs = checks(self, action, resource)
        instance_action = self.__dict__.get("_get_action")
        try:
            for checked_action, checked_resource in pairs:
                self._get_action = lambda a=checked_action: a  # one handler instance per request
                original(self, checked_resource)
        finally:
            if instance_action is None:
                self.__dict__.pop("_get_action", None)
            else:
                self._get_action = instance_action

    return authorize


def install() -> None:
    """Patch moto in this process (idempotent). See the module docstring for what and why."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.responses import BaseResponse
        from moto.dynamodb.responses import DynamoHandler
        from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
        from moto.iam.access_control import AssumedRoleAccessKey, IAMRequestBase
        from moto.sns.responses import SNSResponse
        from moto.sqs.responses import SQSResponse
        from moto.ssm.responses import SimpleSystemManagerResponse

        original = BaseResponse._authenticate_and_authorize_normal_action
        DynamoHandler._authenticate_and_authorize_normal_action = _checked(  # type: ignore[method-assign]
            original,
            lambda h, a, _: dynamodb_checks(
                a, h.body if isinstance(h.body, dict) else {}, h.region, h.current_account
            ),
        )
        DynamoDBStreamsHandler._authenticate_and_authorize_normal_action = _checked(  # type: ignore[method-assign]
            original, lambda h, a, _: stream_checks(a, h))
        SimpleSystemManagerResponse._authenticate_and_authorize_normal_action = _checked(  # type: ignore[method-assign]
            original, lambda h, a, _: ssm_checks(a, h))
        SNSResponse._authenticate_and_authorize_normal_action = _checked(  # type: ignore[method-assign]
            original, lambda h, a, _: sns_checks(a, h))
        SQSResponse._authenticate_and_authorize_normal_action = _checked(  # type: ignore[method-assign]
            original, lambda h, a, resource: [(SQS_BATCH_ACTIONS.get(a, a), resource)])

        # moto reads the signature from the Authorization header only, so a presigned URL (a
        # manager's recording link) fails with a 500 while IAM is enforced. Let it through
        # unchecked: AWS checks the signer's s3:GetObject, which the signing function's own
        # requests already exercise. (Documented in the README's limits.)
        authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action

        def _authenticate_and_authorize_action(self: Any, iam_request_cls: type, resource: str = "*") -> None:
            presigned = "Authorization" not in self.headers and "X-Amz-Signature" in (self.querystring or {})
            if not presigned:
                authorize(self, iam_request_cls, resource)

        ActionAuthenticatorMixin._authenticate_and_authorize_action = (  # type: ignore[method-assign]
            _authenticate_and_authorize_action
        )
        check = IAMRequestBase.check_action_permitted

        def check_action_permitted(self: Any, resource: str) -> None:
            key = getattr(self, "_access_key", None)
            decision = Decision(str(getattr(key, "arn", "?")), self._action, resource)
            try:
                check(self, resource)
            except Exception:
                if isinstance(key, AssumedRoleAccessKey):
                    DENIALS.append(decision)
                    log.error("ACCESS DENIED: %s", decision)  # loud now; the run fails at its end
                raise
            if isinstance(key, AssumedRoleAccessKey):
                USED.add(decision)

        IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]
        _installed = True


def condition_warnings(role: str, statements: list[dict[str, Any]]) -> list[str]:
    return [
        f"{role}: statement {s.get('Sid') or i} has a Condition the emulator ignores: {s['Condition']}"
        for i, s in enumerate(statements)
        if s.get("Condition")
    ]
