"""StackClient: how tests, the demo and the CLI talk to a running local stack over HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import requests


class StackError(RuntimeError):
    """A local-only stack operation failed; the message is the stack's answer, ``answer`` its JSON
    body when it had one (a drain still busy: ``records`` processed meanwhile)."""

    def __init__(self, message: str, answer: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.answer = answer or {}


# The local stack's control requests that do a batch of work before answering (drain, run a job)
LONG_REQUEST_S = 600.0


class StackClient:
    def __init__(
        self,
        url: str,
        *,
        public_url: str | None = None,
        admin_token: str = "",
        twilio_auth_token: str = "",
        moto_url: str = "",
        timeout_s: float = 60.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.public_url = (public_url or url).rstrip("/")
        self.admin_token = admin_token
        self.twilio_auth_token = twilio_auth_token
        self.moto_url = moto_url
        self.timeout_s = timeout_s
        self.session = requests.Session()
        # The in-process LocalStack when there is one (tests): .stack.client("dynamodb") etc.
        self.stack: Any = None

    @classmethod
    def for_stack(cls, stack: Any) -> StackClient:
        """A client for an in-process ``LocalStack``."""
        return cls(
            stack.url,
            public_url=stack.public_url,
            admin_token=stack.admin_token,
            twilio_auth_token=stack.twilio_auth_token,
            moto_url=stack.moto_url,
        )

    # -- plain HTTP -------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        data: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send a request to the gateway; ``token`` becomes ``Authorization: Bearer TOKEN``."""
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        return self.session.request(
            method.upper(),
            self.url + path,
            json=json,
            data=data,
            params=params,
            headers=all_headers,
            timeout=self.timeout_s,
        )

    def twilio_post(
        self,
        path: str,
        params: dict[str, Any],
        *,
        signature: str | None = None,
        unsigned: bool = False,
        query: dict[str, str] | None = None,
    ) -> requests.Response:
        """POST a Twilio webhook form, signed as Twilio signs it (over public_url + path [+ ?query]).

        ``signature=None`` signs correctly, ``signature="bad"`` sends a wrong signature, any other
        string is sent as is; ``unsigned=True`` sends no X-Twilio-Signature header at all.
        """
        from twilio.request_validator import RequestValidator

        qs = f"?{urlencode(query)}" if query else ""
        form = {k: str(v) for k, v in params.items()}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "TwilioProxy/1.1"}
        if not unsigned:
            if signature is None:
                from calltrack.twilio_edge import rest_auth_token  # the new token of two (rotation)

                signature = RequestValidator(rest_auth_token(self.twilio_auth_token)).compute_signature(
                    self.public_url + path + qs, form
                )
            elif signature == "bad":
                signature = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
            headers["X-Twilio-Signature"] = signature
        return self.session.post(self.url + path + qs, data=form, headers=headers, timeout=self.timeout_s)

    # -- accounts ---------------------------------------------------------------------------
    def apply(self, config: dict[str, Any]) -> dict[str, Any]:
        """Create or update an account as the operator (PUT /v1/accounts/{account})."""
        resp = self.request("PUT", f"/v1/accounts/{config['account']}", token=self.admin_token, json=config)
        if resp.status_code >= 300:
            raise StackError(f"apply {config.get('account')}: {resp.status_code} {resp.text}")
        return resp.json()

    def create_token(self, account: str, role: str) -> str:
        resp = self.request(
            "POST", f"/v1/accounts/{account}/tokens", token=self.admin_token, json={"role": role}
        )
        if resp.status_code >= 300:
            raise StackError(f"create token for {account}: {resp.status_code} {resp.text}")
        return str(resp.json()["token"])

    def create_user(self, account: str, role: str, email: str, password: str) -> dict[str, Any]:
        """A console user of ``account`` with ``role`` and this password (POST .../users, operator)."""
        resp = self.request("POST", f"/v1/accounts/{account}/users", token=self.admin_token,
                            json={"email": email, "role": role, "password": password})
        if resp.status_code >= 300:
            raise StackError(f"create console user for {account}: {resp.status_code} {resp.text}")
        return dict(resp.json())

    # -- local-only helpers -----------------------------------------------------------------
    def _local(
        self, method: str, path: str, params: dict[str, str] | None = None, *, timeout_s: float | None = None
    ) -> Any:
        timeout = timeout_s or self.timeout_s
        resp = self.session.request(method, self.url + path, params=params, timeout=timeout)
        if resp.status_code == 404 or not resp.headers.get("Content-Type", "").startswith("application/json"):
            # a deployed API (CALLTRACK_URL set for the admin commands) or another server: one line,
            # not its error page
            raise StackError(f"{path}: HTTP {resp.status_code} from {self.url}: is it a calltrack local "
                             "stack (`calltrack local serve`)?")
        if resp.status_code >= 300:
            try:
                answer = resp.json()
            except ValueError:
                raise StackError(resp.text[:300]) from None
            answer = answer if isinstance(answer, dict) else {}
            raise StackError(str(answer.get("message", resp.text))[:300], answer)
        return resp.json()

    def health(self) -> dict[str, Any]:
        return self.session.get(self.url + "/health", timeout=self.timeout_s).json()

    def drain(self) -> dict[str, Any]:
        """Process every pending stream record and queue message now; return when idle. The stack
        answers "still busy" after about 30 s, but only between rounds, and one round over a large
        backlog on a loaded machine can take longer than a request's usual minute."""
        return self._local("POST", "/_local/drain", timeout_s=LONG_REQUEST_S)

    def run_job(self, name: str, at_iso: str, force: bool = False) -> dict[str, Any]:
        """Run a scheduled job as EventBridge would at ``at_iso``; returns {job, event, result, ...}."""
        return self._local(
            "POST", f"/_local/jobs/{name}", params={"at": at_iso, "force": "1" if force else "0"},
            timeout_s=LONG_REQUEST_S,  # a job runs every account in the request, as EventBridge's invoke
        )

    def outbox(self) -> list[dict[str, Any]]:
        """SNS messages published so far: [{topic, subject, message, attributes, timestamp}]."""
        return self._local("GET", "/_local/outbox")

    def script_transcript(self, call_sid: str, lines: list[tuple[str, float, str]]) -> dict[str, Any]:
        """What the local Transcribe will hear on ``call_sid``'s recording: [(speaker, start s, text)]."""
        resp = self.session.put(
            f"{self.url}/_local/transcripts/{call_sid}", json={"lines": [list(line) for line in lines]},
            timeout=self.timeout_s,
        )
        if resp.status_code >= 300:
            raise StackError(resp.text)
        return dict(resp.json())

    def stop_emulator(self) -> None:
        self._local("POST", "/_local/emulator/stop")

    def start_emulator(self) -> None:
        self._local("POST", "/_local/emulator/start")
