"""Voice: the Twilio fallback TwiML route and the URLs to paste into the Twilio number settings.

The fallback is a tiny inline function (no layer, no tables; source ``fallback_twiml.py``) behind
``POST /twilio/fallback``: Twilio calls it when the voice URL errors or times out, and it checks
the request's Twilio signature (the auth token's SSM parameter is its one grant) and <Dial>s the
business directly (context ``fallbackForwardTo``, one number per deployment). It is
deployment-only (not in the wiring): the local stack has no Twilio to fall back from.

The signature is Twilio's (docs: "Webhooks security"): base64 HMAC-SHA1, keyed by the auth token,
of the URL Twilio was configured with (PUBLIC_URL + the raw path and query; with or without the
default port, as twilio's RequestValidator accepts) followed by every POST parameter's name and
value, sorted. A valid one gets a <Dial> of the business (an apology when none is set), anything
else 403. The auth token is read from SSM (TWILIO_AUTH_TOKEN_PARAM) once per container, with 1 s
timeouts and one attempt; if it cannot be read the caller is still put through and the function
logs the EMF metric ``FallbackUnchecked`` (docs/decisions.md 2026-12-01).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import nag
from infra.components.api import HttpApi
from infra.components.functions import ARCHITECTURE, RUNTIME, FunctionFactory
from infra.wiring import Route

FALLBACK_PATH = "/twilio/fallback"
FALLBACK_ROUTE = Route("POST", FALLBACK_PATH, "twilio_fallback", "twilio")

# The function's source: a module of its own (unit-tested as one), deployed inline as index.py.
# CloudFormation's inline code is at most 4096 characters (infra test).
FALLBACK_CODE = (Path(__file__).parent / "fallback_twiml.py").read_text(encoding="utf-8")


class Voice(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        api: HttpApi,
        factory: FunctionFactory,
        public_url: str,
        forward_to: str,
        auth_token: ssm.IParameter,
    ) -> None:
        super().__init__(scope, id)
        group = factory.log_group("FallbackLogs")
        self.fallback = lambda_.Function(
            self,
            "Fallback",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="index.handler",
            code=lambda_.Code.from_inline(FALLBACK_CODE),
            memory_size=256,  # boto3's import (the SSM read, once per container) at 128 MB takes ~1 s
            timeout=Duration.seconds(6),
            description="Twilio fallback TwiML: dial the business directly",
            tracing=lambda_.Tracing.ACTIVE,
            role=factory.role("FallbackRole", group),
            log_group=group,
            environment={
                "FALLBACK_FORWARD_TO": forward_to,
                "PUBLIC_URL": public_url,
                "TWILIO_AUTH_TOKEN_PARAM": auth_token.parameter_name,
            },
        )
        auth_token.grant_read(self.fallback)
        nag.acknowledge(self.fallback, "AwsSolutions-L1", nag.L1_REASON)
        api.add_route(FALLBACK_ROUTE, self.fallback, FALLBACK_ROUTE.function)
        CfnOutput(
            self,
            "VoiceWebhookUrl",
            value=f"{public_url}/twilio/voice",
            description="Twilio number > Voice > A call comes in (HTTP POST)",
        )
        CfnOutput(
            self,
            "CallStatusCallbackUrl",
            value=f"{public_url}/twilio/call-status",
            description="Twilio number > Voice > Call status changes (HTTP POST)",
        )
        CfnOutput(
            self,
            "FallbackTwimlUrl",
            value=f"{public_url}{FALLBACK_PATH}",
            description="Twilio number > Voice > Primary handler fails (HTTP POST)",
        )
