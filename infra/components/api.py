"""The HTTP API: every wiring route -> its function (payload v2.0), throttled, access-logged.

No API Gateway authorizer on any route, by design and consistently:
- ``twilio`` routes: Twilio cannot send bearer tokens; the handler verifies X-Twilio-Signature
  (HMAC-SHA1 over the configured public URL + form) before it reads anything.
- ``public`` routes: dni.js and session leases are fetched by anonymous website visitors
  (the handler checks the Origin against the account's site config).
- ``token`` routes: the handler hashes the bearer token and loads its account+role from the
  tokens table (``calltrack.auth``); one code path locally and in AWS, and no authorizer
  Lambda (an extra cold start) in front of every report request.
"""

from __future__ import annotations

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import nag
from infra.wiring import Route

ACCESS_LOG_FORMAT = apigw.AccessLogFormat.custom(
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","method":"$context.httpMethod","routeKey":"$context.routeKey",'
    '"status":"$context.status","protocol":"$context.protocol","responseLength":"$context.responseLength",'
    '"latencyMs":"$context.responseLatency","integrationLatencyMs":"$context.integrationLatency",'
    '"integrationError":"$context.integrationErrorMessage"}'
)  # no query strings or bodies: they can carry phone numbers


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, destination: apigwv2.IAccessLogDestination, format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class HttpApi(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        rate_limit: int,
        burst_limit: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="calltrack: Twilio webhooks, dni.js and the management API",
            create_default_stage=False,
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            access_log_settings=_AccessLogSettings(
                destination=apigwv2.LogGroupLogDestination(self.access_logs), format=ACCESS_LOG_FORMAT
            ),
        )
        self._integrations: dict[str, integrations.HttpLambdaIntegration] = {}
        self.routes: list[apigwv2.HttpRoute] = []

    @property
    def endpoint(self) -> str:
        return self.api.api_endpoint

    def add_route(self, route: Route, fn: lambda_.IFunction, function_name: str) -> list[apigwv2.HttpRoute]:
        integration = self._integrations.get(function_name)
        if integration is None:
            integration = integrations.HttpLambdaIntegration(
                f"{function_name}-integration",
                fn,
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            )
            self._integrations[function_name] = integration
        added = self.api.add_routes(
            path=route.path, methods=[apigwv2.HttpMethod[route.method.upper()]], integration=integration
        )
        for r in added:
            nag.acknowledge(r, "AwsSolutions-APIG4", nag.APIG4_REASONS[route.auth])
        self.routes.extend(added)
        return added
