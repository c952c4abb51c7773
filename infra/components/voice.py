"""Voice: the Twilio fallback TwiML route and the URLs to paste into the Twilio number settings.

The fallback is a tiny inline function (no layer, no tables) behind ``POST /twilio/fallback``:
Twilio calls it when the voice URL errors or times out, and it <Dial>s the business directly
(context ``fallbackForwardTo``, one number per deployment). It is deployment-only (not in the
wiring): the local stack has no Twilio to fall back from.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import nag
from infra.components.api import HttpApi
from infra.components.functions import ARCHITECTURE, RUNTIME, FunctionFactory
from infra.wiring import Route

FALLBACK_PATH = "/twilio/fallback"
FALLBACK_ROUTE = Route("POST", FALLBACK_PATH, "twilio_fallback", "twilio")

FALLBACK_CODE = """
import os
from xml.sax.saxutils import escape

SORRY = ("<Say language=\\"ja-JP\\">ただいま電話に出ることができません。後ほどおかけ直しください。</Say>"
         "<Say language=\\"en-US\\">We cannot take your call right now. Please call again later.</Say>")


def handler(event, context):
    number = os.environ.get("FALLBACK_FORWARD_TO", "")
    body = "<Dial>%s</Dial>" % escape(number) if number else SORRY
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "text/xml; charset=utf-8"},
        "body": '<?xml version="1.0" encoding="UTF-8"?><Response>' + body + "</Response>",
    }
"""


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
            memory_size=128,
            timeout=Duration.seconds(3),
            description="Twilio fallback TwiML: dial the business directly",
            tracing=lambda_.Tracing.ACTIVE,
            role=factory.role("FallbackRole", group),
            log_group=group,
            environment={"FALLBACK_FORWARD_TO": forward_to},
        )
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
