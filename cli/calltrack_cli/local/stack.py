"""LocalStack: the embedded AWS emulator, the local API gateway, the pollers and on-demand jobs.

Everything runs in this process: moto's application (``emulator_server``: keep-alive
connections) on a free 127.0.0.1 port, the resources the deployed stack has (every table from
``calltrack.models.all_models()``, both buckets with a data key as their default encryption, each
wiring queue with its DLQ, the ops topic), the gateway and one poller thread per stream consumer
and per queue. The handlers are the real ones; they reach the emulator through
``AWS_ENDPOINT_URL``, which ``start()`` sets in the process environment (and ``stop()`` restores).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from calltrack.settings import dlq_env, queue_env, stream_failures_env
from calltrack_cli.local.events import ACCOUNT_ID, REGION, parse_instant, scheduled_job_event
from calltrack_cli.local.gateway import LocalGateway
from calltrack_cli.local.invoker import Invoker
from calltrack_cli.local.pollers import Poller, QueuePoller, StreamPoller, wait_idle
from calltrack_cli.local.transcribe import LocalTranscribe
from infra.wiring import WIRING, Queue, Wiring

log = logging.getLogger("calltrack.local")

OPS_TOPIC_NAME = "calltrack-ops"
LOCAL_DATA_KEY_ALIAS = "alias/calltrack-local-data"
DRAIN_TIMEOUT_S = 30.0
# Variables the stack always owns (never talk to real AWS from the local stack).
USER_POOL_NAME = "calltrack-console"
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_DEFAULT_PROFILE")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def create_queue(sqs: Any, queue: Queue) -> tuple[str, str]:
    """A wired queue and its dead-letter queue, as deployed (visibility timeout, redrive policy):
    their URLs."""
    dlq_url = sqs.create_queue(QueueName=f"calltrack-{queue.name}-dlq")["QueueUrl"]
    redrive = json.dumps(
        {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": queue.max_receive_count}
    )
    url = sqs.create_queue(
        QueueName=f"calltrack-{queue.name}",
        Attributes={"VisibilityTimeout": str(queue.visibility_timeout_s), "RedrivePolicy": redrive},
    )["QueueUrl"]
    return str(url), str(dlq_url)


def create_table_request(model: type[Any], table_name: str) -> dict[str, Any]:
    """CreateTable arguments from a PynamoDB model's schema (keys, GSIs, LSIs, stream)."""
    schema = model._get_schema()
    attrs: dict[str, str] = {}
    for ad in schema["attribute_definitions"]:
        attrs[ad["AttributeName"]] = ad["AttributeType"]

    def _index(idx: dict[str, Any]) -> dict[str, Any]:
        for ad in idx.get("attribute_definitions", []):
            attrs[ad["AttributeName"]] = ad["AttributeType"]
        projection = {"ProjectionType": idx["projection"]["ProjectionType"]}
        if idx["projection"].get("NonKeyAttributes"):
            projection["NonKeyAttributes"] = idx["projection"]["NonKeyAttributes"]
        return {"IndexName": idx["index_name"], "KeySchema": idx["key_schema"], "Projection": projection}

    gsis = [_index(i) for i in schema.get("global_secondary_indexes", [])]
    lsis = [_index(i) for i in schema.get("local_secondary_indexes", [])]
    key_schema = sorted(schema["key_schema"], key=lambda k: 0 if k["KeyType"] == "HASH" else 1)
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": v} for k, v in sorted(attrs.items())],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        request["GlobalSecondaryIndexes"] = gsis
    if lsis:
        request["LocalSecondaryIndexes"] = lsis
    stream = getattr(model.Meta, "stream_view_type", None)
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    return request


class LocalStack:
    """The local stack. ``start()`` then use ``.url``; ``stop()`` undoes everything it did."""

    def __init__(
        self,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        wiring: Wiring | None = None,
        pollers: bool = True,
        emulator_port: int | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.extra_env = dict(env or {})
        self.wiring = wiring if wiring is not None else WIRING
        self.run_pollers = pollers
        self.invoker = Invoker(self.wiring)
        self.gateway: LocalGateway | None = None
        self.pollers: list[Poller] = []
        # emulator_port: share an emulator this process already runs (another LocalStack's) instead
        # of starting one; the environment then stays pointed at it, so boto3 clients handlers
        # cached earlier keep working after this stack stops.
        self.moto_port = emulator_port or 0
        self._shared_emulator = emulator_port is not None
        self._moto: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        # The stack's own identity on the emulator (as-deployed: an operator user's key, IAM enforced)
        self.credentials: tuple[str, str] = ("testing", "testing")
        self.queue_urls: dict[str, str] = {}
        self.dlq_urls: dict[str, str] = {}
        self.stream_failure_urls: dict[str, str] = {}
        self.topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{OPS_TOPIC_NAME}"
        self.user_pool_id = ""
        self.user_pool_client_id = ""
        self.started = False
        self._seen: dict[str, str] = {}
        self.admin_token_generated = False
        self.transcribe: LocalTranscribe | None = None

    # -- properties -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.gateway is not None, "call start() first"
        return self.gateway.url

    @property
    def port(self) -> int:
        assert self.gateway is not None, "call start() first"
        return self.gateway.port

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def public_url(self) -> str:
        return os.environ.get("CALLTRACK_PUBLIC_URL", self.url)

    @property
    def admin_token(self) -> str:
        return os.environ.get("CALLTRACK_ADMIN_TOKEN", "")

    @property
    def twilio_auth_token(self) -> str:
        from calltrack.settings import get_settings

        return get_settings().twilio_auth_token

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> LocalStack:
        from calltrack.settings import reset_settings

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if not self._shared_emulator:
            self.moto_port = free_port(self.host)
            self._start_moto()
        self.gateway = LocalGateway(self.invoker, control=self, host=self.host, port=self.requested_port)
        try:
            self._set_env()
            reset_settings()
            self._create_user_pool()
            self._create_resources()
            self._bind_models()
            self.gateway.start()
            if self.run_pollers:
                self._start_pollers()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def stop(self) -> None:
        from calltrack.settings import reset_settings

        for poller in self.pollers:
            poller.request_stop()  # all at once, then wait: each may be in a 1 s long poll
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        if self.gateway is not None:
            try:
                self.gateway.stop()
            except Exception:  # pragma: no cover - best effort on shutdown
                log.exception("stopping the gateway")
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        self._clients = {}
        reset_settings()
        self.started = False

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_moto(self) -> None:
        from calltrack_cli.local import emulator_patches
        from calltrack_cli.local.emulator_server import EmulatorServer

        emulator_patches.install()
        self._moto = EmulatorServer(ip_address=self.host, port=self.moto_port)
        self._moto.start()

    def stop_emulator(self) -> None:
        """Take moto down (state is kept in-process) to show fail-open behaviour."""
        if self._moto is not None:
            self._moto.stop()
            self._moto = None

    def start_emulator(self) -> None:
        if self._moto is None and not self._shared_emulator:
            self._start_moto()

    @property
    def emulator_up(self) -> bool:
        return self._moto is not None or self._shared_emulator

    def _setenv(self, key: str, value: str) -> None:
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        os.environ[key] = value

    def _set_env(self) -> None:
        from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN

        merged = {**os.environ, **self.extra_env}
        for key in _CLEARED:
            if key in os.environ:
                self._saved_env.setdefault(key, os.environ[key])
                os.environ.pop(key)
        fixed = {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "CALLTRACK_LOCAL": "1",
            "CALLTRACK_OPS_TOPIC_ARN": self.topic_arn,
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
        defaults = {
            "CALLTRACK_PUBLIC_URL": f"http://{self.host}:{self.port}",
            "TWILIO_AUTH_TOKEN": LOCAL_TWILIO_AUTH_TOKEN,
            "TWILIO_ACCOUNT_SID": LOCAL_TWILIO_ACCOUNT_SID,
            "TWILIO_API_BASE_URL": "https://api.twilio.com",
            "CALLTRACK_ADMIN_TOKEN": "ct_operator_" + secrets.token_urlsafe(24),
            "POWERTOOLS_METRICS_NAMESPACE": "calltrack",
            "POWERTOOLS_SERVICE_NAME": "calltrack-local",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.admin_token_generated = not merged.get("CALLTRACK_ADMIN_TOKEN")
        for key, value in defaults.items():
            self._setenv(key, merged.get(key) or value)
        for key, value in self.extra_env.items():
            self._setenv(key, value)
        for key, value in fixed.items():
            self._setenv(key, value)

    def _create_user_pool(self) -> None:
        """The console's Cognito user pool and app client (as infra/components/console.py deploys
        them: e-mail usernames, USER_PASSWORD_AUTH, no client secret), reused by name; the functions
        get their ids and the emulator's JWKS URL (issue 23)."""
        from calltrack.settings import COGNITO_CLIENT_ENV, COGNITO_JWKS_ENV, COGNITO_POOL_ENV, reset_settings

        idp = self.client("cognito-idp")
        pools = idp.list_user_pools(MaxResults=60).get("UserPools", [])
        pool_id = next((p["Id"] for p in pools if p.get("Name") == USER_POOL_NAME), None)
        if pool_id is None:
            pool_id = idp.create_user_pool(
                PoolName=USER_POOL_NAME, UsernameAttributes=["email"], AutoVerifiedAttributes=["email"],
                AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
                Policies={"PasswordPolicy": {  # as deployed (infra/components/console.py)
                    "MinimumLength": 8, "RequireUppercase": True, "RequireLowercase": True,
                    "RequireNumbers": True, "RequireSymbols": True}},
            )["UserPool"]["Id"]
        clients = idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60).get("UserPoolClients", [])
        client_id = next((c["ClientId"] for c in clients if c.get("ClientName") == "console"), None)
        if client_id is None:
            client_id = idp.create_user_pool_client(
                UserPoolId=pool_id, ClientName="console", GenerateSecret=False,
                ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            )["UserPoolClient"]["ClientId"]
        self.user_pool_id, self.user_pool_client_id = pool_id, client_id
        self._setenv(COGNITO_POOL_ENV, pool_id)
        self._setenv(COGNITO_CLIENT_ENV, client_id)
        self._setenv(COGNITO_JWKS_ENV, f"{self.moto_url}/{pool_id}/.well-known/jwks.json")
        reset_settings()

    def client(self, service: str) -> Any:
        """A boto3 client against the emulator (cached per service; boto3 clients are thread-safe)."""
        with self._clients_lock:
            cached = self._clients.get(service)
            if cached is None:
                import boto3
                from botocore.config import Config

                cached = boto3.session.Session().client(
                    service,
                    region_name=REGION,
                    endpoint_url=self.moto_url,
                    aws_access_key_id=self.credentials[0],
                    aws_secret_access_key=self.credentials[1],
                    config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
                )
                self._clients[service] = cached
            return cached

    # -- resources --------------------------------------------------------------------------
    def _create_resources(self) -> None:
        from calltrack.models import all_models, logical_name
        from calltrack.settings import get_settings

        settings = get_settings()
        ddb = self.client("dynamodb")
        existing = set(ddb.list_tables().get("TableNames", []))
        for model in all_models():
            name = settings.table_name(logical_name(model))
            if name not in existing:
                ddb.create_table(**create_table_request(model, name))
            ttl = getattr(model.Meta, "ttl_attribute", None)
            if ttl:
                ddb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
                )
        s3 = self.client("s3")
        data_key = self._data_key()
        for bucket in {settings.recordings_bucket, settings.exports_bucket, settings.routing_bucket}:
            s3.create_bucket(Bucket=bucket)  # idempotent in us-east-1
            # As deployed (infra/components/storage.private_bucket): SSE-KMS with the data key and
            # a bucket key by default, so writers send no SSE headers and get the bucket's setting.
            s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": data_key,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
        # As deployed (infra/stack.py): the recordings bucket keeps versions, so erasing a caller
        # (privacy) must remove every version and delete marker, here as there.
        s3.put_bucket_versioning(Bucket=settings.recordings_bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
        sqs = self.client("sqs")
        for queue in self.wiring.queues:
            url, dlq_url = create_queue(sqs, queue)
            self.queue_urls[queue.name] = url
            self.dlq_urls[queue.name] = dlq_url
            self._setenv(queue_env(queue.name), url)
            self._setenv(dlq_env(queue.name), dlq_url)
        for consumer in self.wiring.streams:  # each one's on-failure destination (SqsDlq)
            url = sqs.create_queue(QueueName=f"calltrack-{consumer.consumer}-stream-failures")["QueueUrl"]
            self.stream_failure_urls[consumer.consumer] = url
            self._setenv(stream_failures_env(consumer.consumer), url)
        self.topic_arn = self.client("sns").create_topic(Name=OPS_TOPIC_NAME)["TopicArn"]
        self._setenv("CALLTRACK_OPS_TOPIC_ARN", self.topic_arn)
        from calltrack.settings import reset_settings

        reset_settings()

    def _data_key(self) -> str:
        """The local stand-in for the stack's data key (one per emulator, found by its alias)."""
        kms = self.client("kms")
        for alias in kms.list_aliases().get("Aliases", []):
            if alias.get("AliasName") == LOCAL_DATA_KEY_ALIAS and alias.get("TargetKeyId"):
                return str(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"])
        meta = kms.create_key(Description="calltrack local: recordings and exports")["KeyMetadata"]
        kms.create_alias(AliasName=LOCAL_DATA_KEY_ALIAS, TargetKeyId=meta["KeyId"])
        return str(meta["Arn"])

    def _bind_models(self) -> None:
        from calltrack.models import all_models, bind_models
        from calltrack.settings import get_settings

        models = all_models()
        for model in models:
            model._connection = None  # forget connections made against a previous endpoint
        bind_models(get_settings(), models)

    def _start_pollers(self) -> None:
        from calltrack.settings import get_settings

        settings = get_settings()
        sqs = self.client("sqs")
        for consumer in self.wiring.streams:
            self.pollers.append(
                StreamPoller(self.invoker, consumer, settings.table_name(consumer.table), self.client,
                             self.stream_failure_urls.get(consumer.consumer, ""))
            )
        for queue in self.wiring.queues:
            url = self.queue_urls[queue.name]
            self.pollers.append(QueuePoller(self.invoker, queue, url, queue_arn(sqs, url), self.client))
        # Amazon Transcribe's part: jobs finished with scripted transcripts, their events delivered.
        self.transcribe = LocalTranscribe(self.invoker, self.wiring, self.queue_urls, self.client)
        self.pollers.append(self.transcribe)
        for poller in self.pollers:
            poller.start()

    # -- local-only operations (LocalControl) ----------------------------------------------
    def health(self) -> tuple[bool, dict[str, Any]]:
        emulator = "down"
        if self.emulator_up:
            try:
                with socket.create_connection(("127.0.0.1", self.moto_port), timeout=1):
                    emulator = "up"
            except OSError:
                emulator = "unreachable"
        pollers = {
            p.name: ("up" if p.alive else "down") + (f" ({p.last_error})" if p.last_error else "")
            for p in self.pollers
        }
        ok = (
            emulator == "up"
            and all(p.alive for p in self.pollers)
            and (bool(self.pollers) or not self.run_pollers)
        )
        return ok, {
            "gateway": "up",
            "emulator": emulator,
            "pollers": pollers,
            "routes": len(self.wiring.routes),
        }

    def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> dict[str, Any]:
        """Process every pending stream record and queue message; return when all is idle."""
        pollers = self.pollers
        if not pollers and not self.run_pollers:
            return {"status": "idle", "records": 0, "rounds": 0}
        return wait_idle(pollers, self.invoker, timeout_s)

    def run_job(self, name: str, at: str, force: bool = False) -> dict[str, Any]:
        """Invoke a scheduled job's function as EventBridge would at ``at``."""
        schedule = next((s for s in self.wiring.schedules if s.name == name), None)
        if schedule is None:
            known = ", ".join(s.name for s in self.wiring.schedules)
            raise KeyError(f"unknown job {name!r}; known jobs: {known}")
        event = scheduled_job_event(name, at, force)
        started = time.monotonic()
        # The job runs "at" that instant: calltrack.clock.now() inside it returns the scheduled time.
        result = self.invoker.invoke(schedule.function, event, at=parse_instant(event["time"]).timestamp())
        return {
            "job": name,
            "function": schedule.function,
            "event": event,
            "result": result,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }

    def script_transcript(self, call_sid: str, lines: list[Any]) -> dict[str, Any]:
        """What the local Transcribe hears on ``call_sid``'s recording (calltrack_cli.local.transcribe)."""
        if self.transcribe is None:
            raise ValueError("the local Transcribe runs with the pollers; start the stack with pollers")
        parsed = []
        for line in lines:
            if not (isinstance(line, list | tuple) and len(line) == 3 and line[0] in ("caller", "staff")):
                raise ValueError("each line is [speaker (caller|staff), start seconds, text]")
            parsed.append((str(line[0]), float(line[1]), str(line[2])))
        self.transcribe.script(call_sid, parsed)
        return {"call_sid": call_sid, "lines": len(parsed)}

    def outbox(self) -> list[dict[str, Any]]:
        """Every SNS message published so far, oldest first.

        moto runs in this process, so its SNS backend is read directly: the same data as
        ``GET {moto}/moto-api/data.json`` (see ``outbox_from_moto_data``) without serialising
        every other service's state, which grows with every call the tests push through.
        """
        from moto.sns.models import sns_backends

        topics = (
            [
                {"arn": arn, "sent_notifications": list(topic.sent_notifications)}
                for region in sns_backends.get(ACCOUNT_ID, {}).values()
                for arn, topic in list(region.topics.items())
            ]
            if ACCOUNT_ID in sns_backends
            else []
        )
        messages = outbox_from_moto_data({"sns": {"Topic": topics}})
        # moto keeps no publish time: stamp each message the first time the outbox sees it.
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for msg in messages:
            msg["timestamp"] = self._seen.setdefault(str(msg["message_id"]), now)
        return messages


def outbox_from_moto_data(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Extract published SNS messages from moto's /moto-api/data.json model dump."""
    messages: list[dict[str, Any]] = []
    for topic in (data.get("sns") or {}).get("Topic", []) or []:
        arn = topic.get("arn") or topic.get("topic_arn") or ""
        for sent in topic.get("sent_notifications") or []:
            # moto stores (message_id, message, subject, message_attributes, group_id)
            sent = list(sent) + [None] * 5
            text, structured = sent[1], None
            # Published with MessageStructure=json (ops alerts: text + AWS Chatbot JSON): moto keeps
            # the whole structure; "message" is what an email subscriber reads (its default).
            if isinstance(text, str) and text.startswith("{"):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict) and isinstance(parsed.get("default"), str):
                    text, structured = parsed["default"], parsed
            messages.append(
                {
                    "topic": arn,
                    "message_id": sent[0],
                    "message": text,
                    "subject": sent[2],
                    "attributes": sent[3] or {},
                    "structured": structured,
                    "timestamp": None,
                }
            )
    return messages
