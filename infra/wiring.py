"""The one wiring declaration: functions, routes, queues, stream consumers and schedules.

Both runtimes read this module and nothing else for wiring:
- the CDK stack (infra/) builds the HTTP API routes, SQS event sources, DynamoDB stream
  sources and EventBridge schedules from it;
- the local runtime (calltrack_cli.local) serves the same routes through its local API gateway,
  polls the same queues and streams, and runs the same scheduled jobs on demand.

Add a route here and it is served locally and present in the synthesized template.
Pure data: no CDK or AWS imports, so the local runtime and tests load it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Auth = Literal["twilio", "token", "public"]


@dataclass(frozen=True)
class LambdaFunction:
    name: str  # logical name, also the CDK construct id
    folder: str  # functions/<folder> is the asset; its package is importable as <folder>
    handler: str  # "module.attr", e.g. "voice_webhook.handler.handler"
    memory_mb: int = 256
    timeout_s: int = 10
    description: str = ""
    tables: tuple[str, ...] = ()  # logical tables it reads/writes (least-privilege grants)
    read_only_tables: tuple[str, ...] = ()
    # read, and changed only by UpdateItem (the round-robin turn; a token's "last used"): no
    # PutItem, DeleteItem or batch writes
    update_tables: tuple[str, ...] = ()
    # written only by PutItem, never read (the audit trail: its writers cannot change or delete it)
    append_tables: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()  # "recordings", "exports", "routing" (read-write)
    read_only_buckets: tuple[str, ...] = ()
    sends_to_queues: tuple[str, ...] = ()
    # Queues whose dead-letter queue it receives from and deletes in, sending the messages back to
    # the queue (send grant + its URL too): env CALLTRACK_<NAME>_DLQ_URL and _QUEUE_URL.
    redrives_queues: tuple[str, ...] = ()
    # Queues whose dead-letter queue it reads and leaves in place (receive, then visible again; no
    # delete, no send): env CALLTRACK_<NAME>_DLQ_URL.
    sweeps_dead_letters: tuple[str, ...] = ()
    publishes_to_ops_topic: bool = False
    secrets: tuple[str, ...] = ()  # "twilio_auth_token", "twilio_api_secret", "admin_token"
    # Account secrets (SSM /calltrack/{account}/{name}, calltrack.account_secrets): "" none,
    # "read" (GetParameter), "write" (the admin API: put and list names, never read a value),
    # "erase" (account deletion: list names and delete, never read a value).
    account_secrets: Literal["", "read", "write", "erase"] = ""
    # Starts Amazon Transcribe jobs (transcribe:StartTranscriptionJob on the stack's job names);
    # Transcribe reads the media and writes its output with the function's own S3/KMS grants.
    transcribe: bool = False
    # The console's Cognito user pool (issue 23): "admin" = create, list and disable users and add
    # them to groups (cognito-idp Admin* on the stack's pool); "remove" = delete an account's users
    # and groups (account deletion). Every function gets the pool and client ids to verify console
    # sign-ins (calltrack.cognito); only these grant anything on the pool.
    user_pool: Literal["", "admin", "remove"] = ""
    # Uses Powertools idempotency: the stack then creates the "idempotency" table (key "id",
    # TTL "expiration") and grants it with env CALLTRACK_TABLE_IDEMPOTENCY.
    idempotency: bool = False
    # Other function folders packaged into this function's asset, for a route whose logic belongs
    # to another bounded context (voice_webhook's /twilio/recording hands off to recording_ingest).
    bundles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway path syntax: /v1/calls/{call_sid}
    function: str
    auth: Auth = "token"  # twilio: X-Twilio-Signature checked in the handler


@dataclass(frozen=True)
class Queue:
    name: str
    consumer: str
    batch_size: int = 5
    visibility_timeout_s: int = 180
    max_receive_count: int = 5  # then the message moves to the dead-letter queue
    # The event source's MaximumConcurrency (2..1000): a backlog (a DLQ redriven after an outage)
    # scales its consumer up to this, not up to the account's concurrency, which the voice webhook
    # and its fallback share (a throttled webhook: Twilio's "an application error has occurred").
    max_concurrency: int = 2


@dataclass(frozen=True)
class StreamConsumer:
    table: str  # logical table name with a stream (see its model's Meta.stream_view_type)
    consumer: str
    batch_size: int = 100
    # Lambda's BisectBatchOnFunctionError. Off for a consumer whose exactly-once bookkeeping needs
    # every retry to start at the batch's first record or at the record it reported (the rollup:
    # a bisected retry could start inside a committed transaction's span).
    bisect_on_error: bool = True


@dataclass(frozen=True)
class Schedule:
    name: str  # job name, as in `calltrack local run-job NAME`
    function: str
    cron_utc: str  # EventBridge cron(...) body in UTC, e.g. "0 0 ? * MON *"
    description: str = ""


@dataclass(frozen=True)
class EventRule:
    """An EventBridge rule on the default bus whose matching events go to a wiring queue (the
    event's JSON is the message body). Locally, the AWS stand-ins that emit such events (the local
    Transcribe) deliver them to the same queue."""

    name: str
    source: str  # e.g. "aws.transcribe"
    detail_type: str  # e.g. "Transcribe Job State Change"
    queue: str
    detail: tuple[tuple[str, tuple[str, ...]], ...] = ()  # detail field -> accepted values
    description: str = ""

    def pattern(self) -> dict[str, object]:
        """The rule's event pattern as EventBridge takes it."""
        out: dict[str, object] = {"source": [self.source], "detail-type": [self.detail_type]}
        if self.detail:
            out["detail"] = {name: list(values) for name, values in self.detail}
        return out

    def matches(self, event: dict[str, object]) -> bool:
        detail = event.get("detail")
        if event.get("source") != self.source or event.get("detail-type") != self.detail_type:
            return False
        fields = detail if isinstance(detail, dict) else {}
        return all(fields.get(name) in values for name, values in self.detail)


@dataclass(frozen=True)
class Wiring:
    functions: tuple[LambdaFunction, ...]
    routes: tuple[Route, ...]
    queues: tuple[Queue, ...]
    streams: tuple[StreamConsumer, ...]
    schedules: tuple[Schedule, ...] = field(default=())
    event_rules: tuple[EventRule, ...] = field(default=())

    def function(self, name: str) -> LambdaFunction:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(name)


# The queues that receive call events from the call_changes fan-out (the only reader of the calls
# stream besides the rollup: AWS advises at most two per shard). To subscribe a context, declare its
# queue in QUEUES and add its name here and to call_changes.runtime.SUBSCRIBERS.
CALL_CHANGE_SUBSCRIBERS: tuple[str, ...] = ("conversions", "webhooks", "transcripts")

FUNCTIONS = (
    LambdaFunction(
        "voice_webhook",
        "voice_webhook",
        "voice_webhook.handler.handler",
        memory_mb=512,
        timeout_s=12,  # Twilio waits 15 s; a slow DynamoDB costs up to 4 s a request (flow.WRITE_AFTER_S)
        description="Twilio voice webhooks: forward, record and attribute calls",
        tables=("calls", "callers"),
        # no accounts table: everything a call needs is on its number's row (webhook URLs and
        # other accounts' configs stay out of reach of the internet-facing function)
        read_only_tables=("lease_history",),
        # the round-robin turn (flows), advanced with the call's write; a pool call's end marks
        # its number's lease row (its holder called)
        update_tables=("numbers", "leases"),
        read_only_buckets=("routing",),  # the routing snapshot, read only while DynamoDB is down
        sends_to_queues=("recording", "webhook_outbox"),
        secrets=("twilio_auth_token",),
        bundles=("recording_ingest",),
    ),
    LambdaFunction(
        "webhook_replay",
        "voice_webhook",
        "voice_webhook.replay.handler",
        timeout_s=60,
        description="Replays Twilio callbacks whose storage write failed (the webhook's outbox)",
        tables=("calls", "callers"),
        read_only_tables=("lease_history",),
        # a replayed call or menu choice advances the round-robin turn; a replayed call's end marks
        # its number's lease row
        update_tables=("numbers", "leases"),
    ),
    LambdaFunction(
        "webhook_outbox_redrive",
        "voice_webhook",
        "voice_webhook.outbox_redrive.handler",
        timeout_s=300,
        description="Move the webhook outbox's dead letters (a storage outage longer than ~2 h) back",
        redrives_queues=("webhook_outbox",),
    ),
    LambdaFunction(
        "recording_ingest",
        "recording_ingest",
        "recording_ingest.handler.handler",
        memory_mb=512,
        timeout_s=540,  # a batch of 5, each with its whole budget (handler.FETCH_DEADLINE_S + RESERVE_S)
        description="Fetch recordings from Twilio into S3",
        tables=("calls", "recordings"),
        read_only_tables=("accounts",),
        buckets=("recordings",),
        # API key + secret when configured, else account SID + auth token (runtime.credentials)
        secrets=("twilio_api_secret", "twilio_auth_token"),
    ),
    LambdaFunction(
        "recording_redrive",
        "recording_ingest",
        "recording_ingest.redrive.handler",
        timeout_s=300,
        description="Move recording dead letters back to the queue until stored or gone from Twilio",
        tables=("recordings",),
        redrives_queues=("recording",),
    ),
    LambdaFunction(
        "recording_reconcile",
        "recording_ingest",
        "recording_ingest.reconcile.handler",
        timeout_s=300,
        description="Queue recordings Twilio has for answered calls whose recording callback never arrived",
        read_only_tables=("calls", "accounts"),
        sends_to_queues=("recording",),
        # asks Twilio's Recordings API with the fetch's credentials (runtime.credentials)
        secrets=("twilio_api_secret", "twilio_auth_token"),
    ),
    LambdaFunction(
        "recording_retention",
        "recording_ingest",
        "recording_ingest.retention.handler",
        timeout_s=300,
        description="Delete recordings past their account's retention",
        tables=("calls", "recordings"),
        read_only_tables=("accounts",),
        buckets=("recordings",),
    ),
    LambdaFunction(
        "dni_lease",
        "dni_lease",
        "dni_lease.handler.handler",
        memory_mb=512,
        timeout_s=5,
        description="dni.js and per-session pool number leases",
        tables=("leases", "lease_history"),
        # no tokens table, no operator token: it answers browsers only (the pools report is
        # report_api's)
        read_only_tables=("accounts", "numbers"),
    ),
    LambdaFunction(
        "admin",
        "admin",
        "admin.handler.handler",
        timeout_s=30,
        description="Accounts, tokens, account secrets and config-as-code (calltrack apply)",
        tables=("accounts", "numbers", "tokens"),
        append_tables=("audit",),
        buckets=("routing",),  # writes the routing snapshot of every tracking number
        secrets=("admin_token",),
        account_secrets="write",
    ),
    LambdaFunction(
        "report_api",
        "report",
        "report.handler.handler",
        memory_mb=512,
        timeout_s=29,
        description="The token-protected API: reports, calls, CRM, spend, reviews and recordings access",
        tables=("calls", "spend", "crm_leads", "recordings"),
        # tokens: "last used" (calltrack.auth); rollups: POST /v1/reports/recount raises a row
        update_tables=("tokens", "rollups"),
        append_tables=("audit",),  # recording and transcript access
        read_only_tables=("accounts", "conversions", "leases", "lease_history"),
        # recordings: presigned GETs only; exports: the stored monthly reviews, read
        read_only_buckets=("recordings", "exports"),
        # POST /v1/recordings/retry requeues recordings, /v1/transcripts/retry failed transcripts
        sends_to_queues=("recording", "transcripts"),
        secrets=("admin_token",),
        # The API composes the routers of the call records, recording access, conversions and transcripts.
        bundles=("call_records", "recording_ingest", "conversions", "transcripts", "dni_lease"),
    ),
    LambdaFunction(
        "rollup",
        "report",
        "report.rollup_consumer.handler",
        timeout_s=60,
        description="Calls stream -> exactly-once rollup counters",
        tables=("rollups", "rollup_markers"),
        read_only_tables=("accounts",),
    ),
    LambdaFunction(
        "call_changes",
        "call_changes",
        "call_changes.handler.handler",
        timeout_s=60,
        description="Calls stream -> call events (started, completed, updated) on each subscriber's queue",
        sends_to_queues=CALL_CHANGE_SUBSCRIBERS,
    ),
    LambdaFunction(
        "conversions",
        "conversions",
        "conversions.handler.handler",
        # a call event is up to ~6 requests of 10 s (conversions.handler.MESSAGE_BUDGET_MS): a
        # batch of 5 fits, each message with its whole budget (none is left for lack of time)
        timeout_s=400,
        description="Call events -> conversions for Google Ads, Meta, GA4 (once per call, rule, destination)",
        tables=("conversions",),
        read_only_tables=("accounts", "calls"),  # calls: an erased call's retried event sends nothing
        account_secrets="read",
    ),
    LambdaFunction(
        "transcripts",
        "transcripts",
        "transcripts.handler.handler",
        timeout_s=60,
        description="Stored recording -> Amazon Transcribe -> transcript on the call; call rules",
        tables=("calls",),
        read_only_tables=("accounts",),
        buckets=("recordings",),  # Transcribe reads the MP3 and writes its output JSON here
        # each started job is watched by a message to its own queue, in case its completion event
        # is lost (EventBridge delivers best effort)
        sends_to_queues=("transcripts",),
        transcribe=True,
    ),
    LambdaFunction(
        "ops_jobs",
        "ops_jobs",
        "ops_jobs.handler.handler",
        memory_mb=512,
        timeout_s=300,
        description="Scheduled ops messages: weekly alert, spike check, monthly review",
        tables=("job_runs",),
        read_only_tables=("accounts", "calls", "spend", "rollups"),
        buckets=("exports",),
        publishes_to_ops_topic=True,
        sends_to_queues=("webhooks",),  # the same alerts to webhooks subscribed to alert.* / review.monthly
    ),
    LambdaFunction(
        "conversions_redrive",
        "conversions",
        "conversions.redrive.handler",
        timeout_s=300,
        description="Move conversions dead letters (an outage longer than the retries) back to the queue",
        redrives_queues=("conversions",),
    ),
    LambdaFunction(
        "webhook_sender",
        "webhooks",
        "webhooks.handler.handler",
        timeout_s=120,  # each request ends within 20 s; a delivery that might not fit waits for the next
        description="Data out: signed webhooks and the kintone / HubSpot push, retried for 24 h",
        tables=("webhook_deliveries",),
        read_only_tables=("accounts", "calls"),  # calls: an erased call's queued event sends nothing
        sends_to_queues=("webhooks",),  # one delivery message per planned destination
        account_secrets="read",  # webhook signing secrets, CRM tokens
        bundles=("call_records",),  # the event's data is the call as GET /v1/calls/{sid} shows it
    ),
    LambdaFunction(
        "webhook_dead_letters",
        "webhooks",
        "webhooks.dead_letters.handler",
        timeout_s=300,
        description="Fail the rows of webhook deliveries SQS dead-lettered before their last try ran",
        update_tables=("webhook_deliveries",),  # reads a row, fails it by a conditional UpdateItem
        sweeps_dead_letters=("webhooks",),
    ),
    LambdaFunction(
        "webhook_api",
        "webhooks",
        "webhooks.api.handler",
        timeout_s=10,
        description="Webhook deliveries: list failed, retry, send a test ping",
        tables=("webhook_deliveries",),
        update_tables=("tokens",),  # "last used" (calltrack.auth)
        append_tables=("audit",),
        read_only_tables=("accounts",),
        sends_to_queues=("webhooks",),
        secrets=("admin_token",),
    ),
    LambdaFunction(
        "console",
        "console",
        "console.handler.handler",
        timeout_s=10,
        description="Console sign-in: sessions (Cognito) and the account's console users",
        tables=("tokens",),  # "last used" of admin tokens, and a disabled user's marker (PutItem)
        read_only_tables=("accounts",),
        append_tables=("audit",),
        secrets=("admin_token",),
        user_pool="admin",
    ),
    LambdaFunction(
        "privacy",
        "privacy",
        "privacy.handler.handler",
        timeout_s=29,
        description="Privacy: a caller's data (export, erase), the audit trail, account deletion",
        tables=("calls", "callers", "recordings", "crm_leads", "conversions", "webhook_deliveries",
                "rollup_markers", "tokens", "audit",  # tokens: "last used" (calltrack.auth)
                # account deletion (operator): every other table holding an account's items
                "accounts", "numbers", "leases", "lease_history", "spend", "rollups", "job_runs"),
        buckets=("recordings", "exports", "routing"),
        # an erasure asks the recordings function to delete Twilio's copies (recording_ingest.ingest)
        sends_to_queues=("recording",),
        secrets=("admin_token",),
        account_secrets="erase",  # account deletion removes the account's secrets
        user_pool="remove",  # and its console users and groups
        bundles=("recording_ingest",),
    ),
    LambdaFunction(
        "calls_export",
        "call_records",
        "call_records.export.handler",
        timeout_s=300,
        description="Daily calls export for QuickSight (yesterday's calls per account)",
        read_only_tables=("accounts", "calls"),
        buckets=("exports",),
    ),
)

_T: Auth = "twilio"
_P: Auth = "public"
_K: Auth = "token"

ROUTES = (
    # Twilio webhooks (signature checked in the handler)
    Route("POST", "/twilio/voice", "voice_webhook", _T),
    Route("POST", "/twilio/dial-status", "voice_webhook", _T),
    Route("POST", "/twilio/call-status", "voice_webhook", _T),
    Route("POST", "/twilio/recording", "voice_webhook", _T),
    Route("POST", "/twilio/whisper", "voice_webhook", _T),
    Route("POST", "/twilio/menu", "voice_webhook", _T),
    Route("POST", "/twilio/ring-next", "voice_webhook", _T),
    Route("POST", "/twilio/voicemail-done", "voice_webhook", _T),
    # DNI (browsers)
    Route("GET", "/dni.js", "dni_lease", _P),
    Route("POST", "/dni/lease", "dni_lease", _P),
    Route("OPTIONS", "/dni/lease", "dni_lease", _P),
    Route("GET", "/v1/reports/pools", "report_api", _K),  # dni_lease.pools_api, bundled
    # Accounts and tokens
    Route("GET", "/v1/stack", "admin", _K),
    Route("GET", "/v1/accounts", "admin", _K),
    Route("GET", "/v1/accounts/{account}", "admin", _K),
    Route("PUT", "/v1/accounts/{account}", "admin", _K),
    Route("POST", "/v1/accounts/{account}/tokens", "admin", _K),
    Route("GET", "/v1/accounts/{account}/tokens", "admin", _K),
    Route("DELETE", "/v1/accounts/{account}/tokens/{token_id}", "admin", _K),
    Route("PUT", "/v1/accounts/{account}/secrets/{name}", "admin", _K),
    Route("GET", "/v1/accounts/{account}/secrets", "admin", _K),
    # Calls, reports, CRM, spend, reviews
    Route("GET", "/v1/calls", "report_api", _K),
    Route("GET", "/v1/calls.csv", "report_api", _K),
    Route("GET", "/v1/calls/{call_sid}", "report_api", _K),
    Route("PATCH", "/v1/calls/{call_sid}", "report_api", _K),
    Route("GET", "/v1/calls/{call_sid}/recording", "report_api", _K),
    Route("GET", "/v1/calls/{call_sid}/transcript", "report_api", _K),
    Route("POST", "/v1/recordings/retry", "report_api", _K),
    Route("POST", "/v1/transcripts/retry", "report_api", _K),
    Route("GET", "/v1/reports/channels", "report_api", _K),
    Route("GET", "/v1/reports/channels.csv", "report_api", _K),
    Route("GET", "/v1/reports/heatmap", "report_api", _K),
    Route("GET", "/v1/reports/agents", "report_api", _K),
    Route("GET", "/v1/reports/callbacks", "report_api", _K),
    Route("GET", "/v1/callbacks", "report_api", _K),
    Route("PATCH", "/v1/callbacks/{call_sid}", "report_api", _K),
    Route("GET", "/v1/reports/trend", "report_api", _K),
    Route("POST", "/v1/reports/recount", "report_api", _K),
    Route("POST", "/v1/crm/leads", "report_api", _K),
    Route("GET", "/v1/crm/tagging", "report_api", _K),
    Route("PUT", "/v1/spend", "report_api", _K),
    Route("GET", "/v1/reviews", "report_api", _K),
    Route("GET", "/v1/reviews/trials", "report_api", _K),
    Route("GET", "/v1/reviews/inbox", "report_api", _K),
    Route("GET", "/v1/reviews/{month}", "report_api", _K),
    Route("GET", "/v1/conversions", "report_api", _K),
    Route("GET", "/v1/conversions/google-ads.csv", "report_api", _K),
    Route("GET", "/v1/conversions/yahoo-ads.csv", "report_api", _K),
    Route("GET", "/openapi.json", "report_api", _P),
    # Privacy (admin): one caller's data in one account
    Route("GET", "/v1/callers/{number}", "privacy", _K),
    Route("DELETE", "/v1/callers/{number}", "privacy", _K),
    Route("GET", "/v1/audit", "privacy", _K),
    Route("DELETE", "/v1/accounts/{account}", "privacy", _K),
    # The console (issue 23): sign-in sessions (public: the password is the credential) and users
    Route("POST", "/v1/session", "console", _P),
    Route("GET", "/v1/session", "console", _K),
    Route("DELETE", "/v1/session", "console", _K),
    Route("GET", "/v1/accounts/{account}/users", "console", _K),
    Route("POST", "/v1/accounts/{account}/users", "console", _K),
    Route("POST", "/v1/accounts/{account}/users/{email}/disable", "console", _K),
    # Webhooks and CRM push (admin)
    Route("GET", "/v1/webhooks/deliveries", "webhook_api", _K),
    Route("GET", "/v1/webhooks/deliveries/{delivery}", "webhook_api", _K),
    Route("POST", "/v1/webhooks/deliveries/{delivery}/retry", "webhook_api", _K),
    Route("POST", "/v1/webhooks/{hook}/test", "webhook_api", _K),
)

QUEUES = (
    # Recording retries back off per message (recording_ingest.backoff, 1 min .. 12 h, ~29 h over
    # 12 receives; an infra test keeps max_receive_count equal to backoff.MAX_RECEIVES), then the
    # DLQ, which the hourly recording-dlq-redrive job moves back. The consumer's timeout fits a
    # whole batch of downloads: a message left for lack of time would spend one of its receives
    # without a try (the ladder counts receives as tries).
    Queue("recording", consumer="recording_ingest", batch_size=5, visibility_timeout_s=720,
          max_receive_count=12, max_concurrency=5),
    # The voice webhook's outbox: callbacks whose storage write failed, replayed until storage is
    # back (about 2 hours of retries at 120 s each in AWS), then the dead-letter queue (alarmed),
    # which the hourly webhook-outbox-dlq-redrive job moves back (voice_webhook.outbox_redrive).
    Queue("webhook_outbox", consumer="webhook_replay", batch_size=10, visibility_timeout_s=120,
          max_receive_count=60, max_concurrency=5),
    # Call events for the conversions consumer (call_changes fan-out). A message whose rows got a
    # 429/5xx backs off 30 s .. 1 h per try (conversions.runtime; an infra test keeps
    # max_receive_count equal to its MAX_RECEIVES), then the DLQ (alarmed like every DLQ), which the
    # hourly conversions-dlq-redrive job moves back (conversions.redrive). As for recordings, the
    # consumer's timeout fits a whole batch: slow platforms leave no message untried for lack of time.
    Queue("conversions", consumer="conversions", batch_size=5, visibility_timeout_s=720,
          max_receive_count=10),
    # Data out: call events (the call_changes fan-out), ops messages (ops_jobs) and one message per
    # delivery. A delivery backs off per message (webhooks.backoff, 1 min .. 24 h over 12 receives;
    # an infra test keeps max_receive_count equal to backoff.MAX_RECEIVES), then the DLQ (alarmed).
    Queue("webhooks", consumer="webhook_sender", batch_size=5, visibility_timeout_s=720,
          max_receive_count=12),
    # Call events (the call_changes fan-out) and Transcribe's job state changes (EVENT_RULES).
    Queue("transcripts", consumer="transcripts", batch_size=10, visibility_timeout_s=360,
          max_receive_count=5),
)

STREAMS = (
    StreamConsumer("calls", consumer="rollup", bisect_on_error=False),
    StreamConsumer("calls", consumer="call_changes"),
)

# Cron in UTC. Accounts default to Asia/Tokyo (UTC+9): 09:00 JST is 00:00 UTC. Jobs fan out over
# accounts and act only for accounts whose local time is due (see ops_jobs.handler).
SCHEDULES = (
    Schedule(
        "weekly-unanswered-alert",
        "ops_jobs",
        "0 * ? * SUN-TUE *",
        "hourly Sun-Tue UTC; acts for accounts whose local time is Monday 09:00-23:59, once per week",
    ),
    Schedule("missed-call-spike-check", "ops_jobs", "5 * * * ? *", "hourly"),
    Schedule(
        "monthly-channel-review",
        "ops_jobs",
        "0 * * * ? *",
        "hourly; acts for accounts whose local time is the 1st 09:00-23:59, once per month",
    ),
    Schedule("daily-calls-export", "calls_export", "30 15 * * ? *", "00:30 JST, yesterday's calls"),
    Schedule("recording-retention-sweep", "recording_retention", "0 18 * * ? *", "03:00 JST"),
    Schedule(
        "recording-dlq-redrive",
        "recording_redrive",
        "20 * * * ? *",
        "hourly: recording dead letters back to the queue (recording_ingest.backoff.REDRIVE_MINUTE)",
    ),
    Schedule(
        "conversions-dlq-redrive",
        "conversions_redrive",
        "35 * * * ? *",
        "hourly: conversions dead letters back to the queue until sent, skipped or redriven 48 times",
    ),
    Schedule(
        "webhook-outbox-dlq-redrive",
        "webhook_outbox_redrive",
        "40 * * * ? *",
        "hourly: the webhook outbox's dead letters back to it until replayed or redriven 48 times",
    ),
    Schedule(
        "webhook-dlq-sweep",
        "webhook_dead_letters",
        "25 * * * ? *",
        "hourly: webhook deliveries dead-lettered before their last try ran are marked failed",
    ),
    # A calls-stream batch a consumer gave up on (retries run out) is skipped by Lambda, which
    # records where it was in the consumer's stream-failures queue; the stream keeps the records a
    # day, so each consumer replays those ranges hourly (calltrack.stream_replay).
    Schedule(
        "stream-failures-rollup",
        "rollup",
        "40 * * * ? *",
        "hourly: calls-stream batches the rollup consumer gave up on, replayed",
    ),
    Schedule(
        "stream-failures-call-changes",
        "call_changes",
        "45 * * * ? *",
        "hourly: calls-stream batches the call events fan-out gave up on, replayed",
    ),
    Schedule(
        "recording-reconcile",
        "recording_reconcile",
        "7/15 * * * ? *",
        "every 15 min: recordings Twilio has whose callback was refused or lost (recording_ingest.reconcile)",
    ),
)

# EventBridge rules: AWS services' events onto a wiring queue.
EVENT_RULES = (
    EventRule(
        "transcribe-job-state-change",
        source="aws.transcribe",
        detail_type="Transcribe Job State Change",
        queue="transcripts",
        detail=(("TranscriptionJobStatus", ("COMPLETED", "FAILED")),),
        description="a transcription job finished: its transcript onto the call (transcripts)",
    ),
)

WIRING = Wiring(functions=FUNCTIONS, routes=ROUTES, queues=QUEUES, streams=STREAMS, schedules=SCHEDULES,
                event_rules=EVENT_RULES)
