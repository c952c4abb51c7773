"""The local stack as deployed: every function from its synthesized asset, under its own IAM role.

``AsDeployedStack`` is ``LocalStack`` (same emulator, resources, gateway, pollers) with two
differences, both read from a synthesized ``cdk.out`` (``calltrack local serve --as-deployed``,
or ``CALLTRACK_AS_DEPLOYED=1`` for the test fixture):

1. Each function runs in its own long-lived Python 3.12 worker (``workers.WorkerInvoker``) whose
   path is Lambda's (the function's code asset, the layer asset with this machine's compiled
   extensions, the runtime's boto3; ``infra.deployed_imports.prepare_runtime``) and whose
   environment is the function's ``Environment`` from the template, CloudFormation references
   (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``) resolved to the local resources, plus what
   the Lambda runtime itself sets, plus ``LOCAL_OVERRIDES`` below — the only values that differ
   from AWS. Handler, MemorySize and Timeout come from the template too.
2. IAM is enforced: one role per function from the template's policies for it (resources resolved
   to local ARNs), assumed before enforcement starts (AssumeRole with a service principal is
   refused afterwards); workers carry the assumed-role credentials, the stack's own plumbing
   (pollers, tests, the CLI) an operator user's. ``emulator_iam`` makes moto check DynamoDB, SSM and
   SNS against the real ARNs and records every denial; ``denials()`` lists them and the test
   fixture fails the session on any, whatever status the handler answered.

Secrets are read as deployed: the ``*_PARAM`` variables name SSM SecureStrings that this stack
creates with the local values, and the workers read them through Powertools with their role.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from calltrack_cli.local import emulator_iam
from calltrack_cli.local.events import ACCOUNT_ID, REGION
from calltrack_cli.local.stack import LocalStack
from calltrack_cli.local.workers import WorkerInvoker, WorkerSpec, worker_env_base
from infra.wiring import Wiring

log = logging.getLogger("calltrack.local")

STACK_NAME = "Calltrack"
AS_DEPLOYED_ENV = "CALLTRACK_AS_DEPLOYED"  # "1": the test fixtures start an AsDeployedStack
CDK_OUT_ENV = "CALLTRACK_CDK_OUT"  # reuse this synthesized app instead of synthesizing one

# The one table of values a worker sees that differ from AWS: variable -> why. Each takes the local
# stack's value (``LocalStack._set_env`` and the ``env`` passed to the stack); nothing else is added
# to or changed in a function's synthesized Environment except what the Lambda runtime sets itself
# (``RUNTIME_ENV``).
LOCAL_OVERRIDES: dict[str, str] = {
    "AWS_ENDPOINT_URL": "every AWS SDK call goes to the embedded emulator",
    "CALLTRACK_LOCAL": "local mode: http to 127.0.0.1 allowed (fake Twilio), local-only clock",
    "CALLTRACK_PUBLIC_URL": "the local gateway's URL, which Twilio signatures are computed over",
    "TWILIO_ACCOUNT_SID": "the local (fake) Twilio account",
    "TWILIO_API_BASE_URL": "the fake Twilio server, when the stack runs one",
    "CALLTRACK_RETRY_TIME_SCALE": "tests compress retry backoffs (1 min -> 1.2 ms)",
    "CALLTRACK_RECORDING_FETCH_TIMEOUT_S": "tests shorten the recording download timeout",
    "POWERTOOLS_LOG_LEVEL": "tests and the CLI quiet the logs",
    "POWERTOOLS_TRACE_DISABLED": "no X-Ray daemon locally",
    "CALLTRACK_COGNITO_JWKS_URL": "the console user pool's keys from the emulator (Cognito's URL deployed)",
}
# Set by the Lambda runtime in AWS, not by the template.
RUNTIME_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
               "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_GROUP_NAME", "LAMBDA_TASK_ROOT")
# SSM parameter variable -> the local stack's variable holding the value to store in it.
SECRET_VALUES = {
    "TWILIO_AUTH_TOKEN_PARAM": "TWILIO_AUTH_TOKEN",
    "TWILIO_API_SECRET_PARAM": "TWILIO_API_SECRET",
    "CALLTRACK_ADMIN_TOKEN_PARAM": "CALLTRACK_ADMIN_TOKEN",
}
OPERATOR_USER = "calltrack-local-operator"
# Used with the function's role by Lambda's event source mappings (stream and queue pollers), not by
# its code: the local pollers run as the operator, so the IAM report does not call them unused.
POLLER_ACTIONS = frozenset({
    "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
})


def local_overrides() -> dict[str, str]:
    """The current values of ``LOCAL_OVERRIDES`` (the stack set them in this process's environment)."""
    return {key: os.environ[key] for key in LOCAL_OVERRIDES if os.environ.get(key)}


class AsDeployedError(RuntimeError):
    """The synthesized app cannot be run locally as deployed; the message says why."""


class AccessDenied(AssertionError):
    """A function's role was denied a request: its synthesized policy lacks a permission it uses."""


def synthesize(outdir: Path, wiring: Wiring | None = None) -> Path:
    """Synthesize the app (offline, no cdk-nag) into ``outdir``; needs ``make layer``."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
    os.environ.setdefault("JSII_DEPRECATED", "quiet")
    from infra import layer
    from infra.app import build_app
    from infra.wiring import WIRING

    if not layer.is_built():
        raise AsDeployedError("the layer is not built: run `make layer`")
    from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID

    # No twilioApiKey: recordings are then fetched with the account SID and the auth token (from
    # SSM), the credentials the local fake Twilio accepts.
    context: dict[str, object] = {"twilioAccountSid": LOCAL_TWILIO_ACCOUNT_SID,
                                  "fallbackForwardTo": "+81312345678"}
    app, _ = build_app(context, outdir=str(outdir), wiring=wiring or WIRING, nag=False)
    app.synth()
    return outdir


def assert_no_denials(denials: list[emulator_iam.Decision]) -> None:
    if denials:
        lines = sorted({str(d) for d in denials})
        raise AccessDenied(
            f"{len(lines)} access denial(s) in as-deployed mode (a synthesized policy lacks what the "
            "code uses):\n  " + "\n  ".join(lines)
        )


class Resolver:
    """CloudFormation intrinsics of the template -> the local stack's names and ARNs."""

    def __init__(self, template: Mapping[str, Any], local: Mapping[str, str], data_key_arn: str) -> None:
        self.resources: Mapping[str, Any] = template["Resources"]
        self.data_key_arn = data_key_arn
        self.lenient = False  # policies: True (see ref); environment variables: False
        self.refs: dict[str, str] = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT_ID,
                                     "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
                                     "AWS::StackName": STACK_NAME, "AWS::NoValue": ""}
        # Learn what each referenced resource is locally from the variables that name it.
        for resource in self.resources.values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            env = ((resource["Properties"].get("Environment") or {}).get("Variables") or {})
            for key, value in env.items():
                if isinstance(value, dict) and "Ref" in value and key in local:
                    self.refs[value["Ref"]] = local[key]

    def type_of(self, logical: str) -> str:
        return str((self.resources.get(logical) or {}).get("Type", ""))

    def ref(self, logical: str) -> str:
        if logical not in self.refs and self.lenient and self.type_of(logical):
            # A resource no function's code names (e.g. a dead-letter queue only its queue's redrive
            # policy writes to): a name nothing local has, so the grant is inert.
            return f"calltrack-not-local-{logical}"
        if logical not in self.refs:
            kind = self.type_of(logical) or "parameter"
            raise AsDeployedError(f"cannot resolve Ref {logical} ({kind}) locally")
        return self.refs[logical]

    def get_att(self, logical: str, attr: str) -> str:
        kind = self.type_of(logical)
        if kind == "AWS::DynamoDB::Table" and attr in ("Arn", "StreamArn"):
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{self.ref(logical)}"
            return arn if attr == "Arn" else f"{arn}/stream/*"
        if kind == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{self.ref(logical)}"
        if kind == "AWS::SQS::Queue" and attr in ("Arn", "QueueName"):
            name = self.ref(logical).rstrip("/").rsplit("/", 1)[-1]
            return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}" if attr == "Arn" else name
        if kind == "AWS::Cognito::UserPool" and attr == "Arn":
            return f"arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{self.ref(logical)}"
        if kind == "AWS::SNS::Topic" and attr == "TopicArn":
            return self.ref(logical)
        if kind == "AWS::KMS::Key" and attr == "Arn":
            return self.data_key_arn  # the stack has one data key (LocalStack._data_key)
        if kind == "AWS::Logs::LogGroup" and attr == "Arn":  # the runtime writes logs, not the code
            return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{logical}:*"
        raise AsDeployedError(f"cannot resolve Fn::GetAtt {logical}.{attr} ({kind}) locally")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        (fn, arg), = value.items()
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(logical, attr)
        if fn == "Fn::Join":
            return str(arg[0]).join(str(self.resolve(p)) for p in arg[1])
        if fn == "Fn::Select":
            return self.resolve(arg[1])[int(arg[0])]
        if fn == "Fn::Split":
            return str(self.resolve(arg[1])).split(arg[0])
        if fn == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in names:
                    return str(names[name])
                if "." in name:
                    return self.get_att(*name.split(".", 1))
                return self.ref(name)

            return re.sub(r"\$\{([^}!]+)\}", sub, text)
        return {fn: self.resolve(arg)}


def function_resources(template: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """wiring name (the function's POWERTOOLS_SERVICE_NAME) -> (logical id, properties)."""
    found = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        name = ((props.get("Environment") or {}).get("Variables") or {}).get("POWERTOOLS_SERVICE_NAME")
        if isinstance(name, str) and isinstance((props.get("Code") or {}).get("S3Key"), str):
            found[name] = (logical, props)
    return found


def role_statements(template: Mapping[str, Any], role_logical: str) -> list[dict[str, Any]]:
    """Every statement the template grants the role: its inline Policies and each AWS::IAM::Policy."""
    role = template["Resources"][role_logical]["Properties"]
    documents = [p["PolicyDocument"] for p in role.get("Policies") or []]
    for resource in template["Resources"].values():
        attached = {"Ref": role_logical} in (resource.get("Properties") or {}).get("Roles", [])
        if resource["Type"] == "AWS::IAM::Policy" and attached:
            documents.append(resource["Properties"]["PolicyDocument"])
    return [s for doc in documents for s in doc.get("Statement", [])]


class AsDeployedStack(LocalStack):
    """``LocalStack`` whose functions run as deployed (see the module docstring)."""

    def __init__(self, *args: Any, cdk_out: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invoker: WorkerInvoker = WorkerInvoker(self.wiring, overrides=local_overrides)
        self.cdk_out = cdk_out
        self.template: dict[str, Any] = {}
        self.statements: dict[str, list[dict[str, Any]]] = {}  # wiring name -> resolved statements
        self.warnings: list[str] = []
        self._workdir: Path | None = None

    # -- LocalStack hooks --------------------------------------------------------------------
    def start(self) -> AsDeployedStack:
        emulator_iam.install()
        self._workdir = Path(tempfile.mkdtemp(prefix="calltrack-as-deployed-"))
        if self.cdk_out is None:
            self.cdk_out = Path(os.environ[CDK_OUT_ENV]) if os.environ.get(CDK_OUT_ENV) else None
        if self.cdk_out is None:
            self.cdk_out = synthesize(self._workdir / "cdk.out", self.wiring)
        self.template = json.loads((self.cdk_out / f"{STACK_NAME}.template.json").read_text())
        super().start()
        return self

    def stop(self) -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        self.invoker.stop()
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")  # the emulator's state outlives it
        ActionAuthenticatorMixin.request_count = 0
        super().stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _create_resources(self) -> None:
        super()._create_resources()
        local = self._local_values()
        resolver = Resolver(self.template, local, self._data_key())
        functions = function_resources(self.template)
        missing = sorted({fn.name for fn in self.wiring.functions} - set(functions))
        if missing:
            raise AsDeployedError(f"functions of the wiring missing from the synthesized template: {missing}")
        self._put_secrets(functions, local)
        credentials = self._create_roles(functions, resolver)
        self._create_operator()
        self._enforce()
        self.invoker.configure(self._worker_specs(functions, resolver, local, credentials))
        self.invoker.prewarm()

    # -- as deployed -------------------------------------------------------------------------
    def denials(self) -> list[emulator_iam.Decision]:
        return list(emulator_iam.DENIALS)

    def iam_status(self) -> dict[str, Any]:
        """``GET /_local/iam``: denials so far, granted actions never used, ignored conditions,
        each function's limits and peak memory (``calltrack local iam-report``)."""
        return {
            "denials": sorted({str(d) for d in self.denials()}),
            "unused": self.iam_report(),
            "warnings": list(self.warnings),
            "functions": self.invoker.report(),
        }

    def iam_report(self) -> dict[str, list[str]]:
        """Granted actions no request of this run used, per function (advice; see POLLER_ACTIONS)."""
        used = {(d.role, d.action) for d in emulator_iam.USED}
        unused: dict[str, list[str]] = {}
        for name, statements in sorted(self.statements.items()):
            role = _role_name(name)
            for statement in statements:
                if statement.get("Effect") != "Allow":
                    continue
                actions = statement.get("Action")
                for action in [actions] if isinstance(actions, str) else actions or []:
                    if action.startswith(("logs:", "xray:")) or "*" in action or action in POLLER_ACTIONS:
                        continue  # the runtime's or the event source mapping's, not the code's
                    if (role, action) not in used:
                        unused.setdefault(name, []).append(action)
        return {name: sorted(set(actions)) for name, actions in unused.items()}

    def _local_values(self) -> dict[str, str]:
        from calltrack.settings import BUCKET_ENV, get_settings, table_env

        settings = get_settings()
        values = dict(os.environ)
        from calltrack.models import all_models, logical_name

        for model in all_models():
            logical = logical_name(model)
            values[table_env(logical)] = settings.table_name(logical)
        values[table_env("idempotency")] = settings.table_name("idempotency")
        for name, key in BUCKET_ENV.items():
            values[key] = getattr(settings, f"{name}_bucket")
        return values

    def _put_secrets(
        self, functions: dict[str, tuple[str, dict[str, Any]]], local: Mapping[str, str]
    ) -> None:
        ssm = self.client("ssm")
        names: dict[str, str] = {}
        for _logical, props in functions.values():
            env = (props.get("Environment") or {}).get("Variables") or {}
            for key, source in SECRET_VALUES.items():
                if isinstance(env.get(key), str) and env[key]:
                    names[env[key]] = local.get(source) or f"local-{source.lower()}"
        for name, value in names.items():
            ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

    def _create_roles(
        self, functions: dict[str, tuple[str, dict[str, Any]]], resolver: Resolver
    ) -> dict[str, dict[str, str]]:
        iam, sts = self.client("iam"), self.client("sts")
        credentials = {}
        for name, (_logical, props) in sorted(functions.items()):
            role_logical = props["Role"]["Fn::GetAtt"][0]
            trust = self.template["Resources"][role_logical]["Properties"]["AssumeRolePolicyDocument"]
            resolver.lenient = True
            statements = resolver.resolve(role_statements(self.template, role_logical))
            resolver.lenient = False
            self.statements[name] = statements
            self.warnings += emulator_iam.condition_warnings(name, statements)
            role = _role_name(name)
            try:
                arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust),
                                      MaxSessionDuration=43200)["Role"]["Arn"]
            except iam.exceptions.EntityAlreadyExistsException:  # a previous stack in this process
                arn = iam.get_role(RoleName=role)["Role"]["Arn"]
            self.put_policy(name, statements)
            creds = sts.assume_role(RoleArn=arn, RoleSessionName=name, DurationSeconds=43200)["Credentials"]
            credentials[name] = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                                 "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                                 "AWS_SESSION_TOKEN": creds["SessionToken"]}
        for warning in self.warnings:
            log.warning("as deployed: %s", warning)
        return credentials

    def put_policy(self, function: str, statements: list[dict[str, Any]]) -> None:
        """(Re)write a function role's one policy (tests drop a statement to prove the check)."""
        document = {"Version": "2012-10-17", "Statement": statements}
        self.client("iam").put_role_policy(RoleName=_role_name(function), PolicyName="synthesized",
                                           PolicyDocument=json.dumps(document))

    def _create_operator(self) -> None:
        """The stack's own identity (pollers, tests, CLI): everything allowed, like an admin."""
        iam = self.client("iam")
        try:
            iam.create_user(UserName=OPERATOR_USER)
        except iam.exceptions.EntityAlreadyExistsException:
            pass
        iam.put_user_policy(UserName=OPERATOR_USER, PolicyName="operator", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        for old in iam.list_access_keys(UserName=OPERATOR_USER)["AccessKeyMetadata"]:  # at most 2 per user
            iam.delete_access_key(UserName=OPERATOR_USER, AccessKeyId=old["AccessKeyId"])
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        self.credentials = (key["AccessKeyId"], key["SecretAccessKey"])
        with self._clients_lock:
            self._clients = {}
        self._setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])  # in-process code (tests, the CLI)
        self._setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    def _enforce(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.moto_url}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})  # not a form
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            response.read()

    def _worker_specs(
        self,
        functions: dict[str, tuple[str, dict[str, Any]]],
        resolver: Resolver,
        local: Mapping[str, str],
        credentials: Mapping[str, Mapping[str, str]],
    ) -> dict[str, WorkerSpec]:
        from infra.deployed_imports import lambda_python, layer_asset, prepare_runtime

        assert self.cdk_out is not None and self._workdir is not None
        layer_python, standin = prepare_runtime(layer_asset(self.cdk_out), self._workdir)
        python = lambda_python()
        specs = {}
        for name, (_logical, props) in functions.items():
            asset = self.cdk_out / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
            overrides = {key: local[key] for key in LOCAL_OVERRIDES if local.get(key)}
            env = {key: str(resolver.resolve(value))
                   for key, value in ((props.get("Environment") or {}).get("Variables") or {}).items()
                   if key not in overrides}
            env.update(overrides)
            memory, timeout = int(props.get("MemorySize", 128)), int(props.get("Timeout", 3))
            env.update(worker_env_base())
            env.update({
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": f"calltrack-{name}",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/calltrack-{name}",
                "LAMBDA_TASK_ROOT": str(asset),
                "CALLTRACK_LOCAL_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:"
                                                f"calltrack-{name}",
                **credentials[name],
            })
            specs[name] = WorkerSpec(name=name, handler=str(props["Handler"]), memory_mb=memory,
                                     timeout_s=timeout, path=[str(asset), str(layer_python), str(standin)],
                                     env=env, python=python)
        return specs


def _role_name(function: str) -> str:
    return f"calltrack-{function}"[:64]
