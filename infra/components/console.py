"""The manager's console (issue 23): the Cognito user pool its users sign in to, and the static
pages in a private S3 bucket behind CloudFront, with the HTTP API under the same origin (``/v1/*``)
so the session cookie is first-party, ``SameSite=Strict`` and never readable by a script.

- User pool: e-mail addresses as usernames, no self sign-up (admins create users through
  ``POST /v1/accounts/{account}/users``), groups ``<account>:<role>``; the app client signs in with
  ``USER_PASSWORD_AUTH`` (no client secret: the console function calls Cognito as a browser would),
  ID tokens live an hour.
- Pages: ``console/`` in the bucket (``aws s3 sync build/console s3://<ConsoleBucketName>/console/``,
  docs/deploy.md), read by CloudFront through origin access control only; a viewer-request function
  serves ``index.html`` for ``/console/`` (S3 has no directory index behind OAC); every response
  carries ``infra.console_headers`` (strict CSP, HSTS, nosniff, frame denial, no referrer).
"""

from __future__ import annotations

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import nag
from infra.console_headers import CONSOLE_HEADERS

# What the console function may do on the pool (console.directory): manage users and groups.
USER_ADMIN_ACTIONS = (
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminDisableUser",
    "cognito-idp:AdminGetUser",
    "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:AdminSetUserPassword",
    "cognito-idp:AdminUserGlobalSignOut",
    "cognito-idp:CreateGroup",
    "cognito-idp:GetGroup",
    "cognito-idp:ListUsersInGroup",
)

# What account deletion may do on the pool (privacy.console_users): remove an account's users.
USER_REMOVE_ACTIONS = (
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:DeleteGroup",
    "cognito-idp:ListUsersInGroup",
)

_INDEX_FUNCTION = """
function handler(event) {
  var request = event.request;
  if (request.uri === '/' || request.uri === '/console') {
    return {statusCode: 302, statusDescription: 'Found', headers: {location: {value: '/console/'}}};
  }
  if (request.uri.endsWith('/')) { request.uri += 'index.html'; }
  return request;
}
"""

_STANDARD = {
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
}


def headers_policy(scope: Construct, id: str) -> cloudfront.ResponseHeadersPolicy:
    """CloudFront's copy of ``CONSOLE_HEADERS`` (the local gateway sends the same dict)."""
    h = CONSOLE_HEADERS
    referrer = {
        "no-referrer": cloudfront.HeadersReferrerPolicy.NO_REFERRER,
        "same-origin": cloudfront.HeadersReferrerPolicy.SAME_ORIGIN,
    }[h["Referrer-Policy"]]
    hsts_age = int(h["Strict-Transport-Security"].split("max-age=")[1].split(";")[0])
    return cloudfront.ResponseHeadersPolicy(
        scope,
        id,
        comment="calltrack console: strict CSP and security headers",
        security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
            content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                content_security_policy=h["Content-Security-Policy"], override=True
            ),
            content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
            frame_options=cloudfront.ResponseHeadersFrameOptions(
                frame_option=cloudfront.HeadersFrameOption.DENY, override=True
            ),
            referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(referrer_policy=referrer, override=True),
            strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                access_control_max_age=Duration.seconds(hsts_age),
                include_subdomains="includeSubDomains" in h["Strict-Transport-Security"],
                override=True,
            ),
        ),
        custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
            custom_headers=[
                cloudfront.ResponseCustomHeader(header=name, value=value, override=True)
                for name, value in sorted(h.items())
                if name not in _STANDARD
            ]
        ),
    )


class Console(Construct):
    def __init__(self, scope: Construct, id: str, *, api_endpoint: str, logs: s3.IBucket) -> None:
        super().__init__(scope, id)
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            user_pool_name=f"{Stack.of(self).stack_name}-console",
            sign_in_aliases=cognito.SignInAliases(email=True),
            self_sign_up_enabled=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=8,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(7),
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is not offered yet: the console signs in with USER_PASSWORD_AUTH only; "
            "a TOTP step is a follow-up (README Console)",
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG8",
            "The Plus feature plan (threat protection) costs per active user; an operator can choose it "
            "on the pool without a code change",
        )
        nag.acknowledge(
            self.user_pool,
            "AwsSolutions-COG3",
            "Threat protection is a paid Cognito feature plan; an operator can turn it on "
            "without code change",
        )
        self.client = self.user_pool.add_client(
            "Console",
            auth_flows=cognito.AuthFlow(user_password=True),
            generate_secret=False,
            prevent_user_existence_errors=True,
            disable_o_auth=True,  # no hosted UI: the console signs in through POST /v1/session
            write_attributes=cognito.ClientAttributes(),  # users cannot change their own e-mail
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.days(1),
        )
        self.bucket = s3.Bucket(
            self,
            "Pages",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # public pages; OAC reads SSE-S3 without a key grant
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=logs,
            server_access_logs_prefix="console/",
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        api_domain = Fn.select(2, Fn.split("/", api_endpoint))
        api_behavior = cloudfront.BehaviorOptions(
            origin=origins.HttpOrigin(api_domain, protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY),
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment="calltrack console",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                response_headers_policy=headers_policy(self, "Headers"),
                function_associations=[
                    cloudfront.FunctionAssociation(
                        event_type=cloudfront.FunctionEventType.VIEWER_REQUEST,
                        function=cloudfront.Function(
                            self,
                            "Index",
                            code=cloudfront.FunctionCode.from_inline(_INDEX_FUNCTION),
                            runtime=cloudfront.FunctionRuntime.JS_2_0,
                            comment="console: /console/ -> index.html",
                        ),
                    )
                ],
            ),
            additional_behaviors={"/v1/*": api_behavior},
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
        )
        for rule, reason in (
            (
                "AwsSolutions-CFR1",
                "The console is for staff of any country the business employs; sign-in "
                "and account scoping protect it, not geography",
            ),
            (
                "AwsSolutions-CFR2",
                "No WAF by default (a monthly cost per web ACL); the pages are static and "
                "the API behind /v1/* rate-limits at API Gateway",
            ),
            (
                "AwsSolutions-CFR3",
                "Access logging of static pages adds cost without audit value; API access "
                "is logged by API Gateway and recording access in the audit table",
            ),
            (
                "AwsSolutions-CFR4",
                "The default *.cloudfront.net certificate; with a custom domain the "
                "TLS 1.2 (2021) policy set here applies",
            ),
        ):
            nag.acknowledge(self.distribution, rule, reason)
        self.url = f"https://{self.distribution.distribution_domain_name}/console/"
