"""The console as deployed (issue 23): Cognito pool and client, the pages behind CloudFront with
origin access control and the same security headers the local gateway sends, the API under /v1/*
on the same origin, and user management granted to the console function alone."""

from __future__ import annotations

from infra.console_headers import CONSOLE_HEADERS


def test_the_user_pool_admits_only_admin_created_users_and_the_client_has_no_secret(synth):
    [pool] = synth.resources("AWS::Cognito::UserPool").values()
    props = pool["Properties"]
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert props["UsernameAttributes"] == ["email"]
    policy = props["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 8 and policy["RequireSymbols"] and policy["RequireUppercase"]
    [client] = synth.resources("AWS::Cognito::UserPoolClient").values()
    c = client["Properties"]
    assert "ALLOW_USER_PASSWORD_AUTH" in c["ExplicitAuthFlows"]
    assert c.get("GenerateSecret") is False
    assert c["PreventUserExistenceErrors"] == "ENABLED"


def test_pages_are_read_through_origin_access_control_with_the_consoles_security_headers(synth):
    [dist] = synth.resources("AWS::CloudFront::Distribution").values()
    config = dist["Properties"]["DistributionConfig"]
    s3_origin = next(o for o in config["Origins"] if "S3OriginConfig" in o)
    assert s3_origin.get("OriginAccessControlId"), "OAC, not a public bucket or legacy OAI"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    [api] = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/v1/*"]
    assert api["ViewerProtocolPolicy"] == "https-only"
    assert set(api["AllowedMethods"]) >= {"GET", "POST", "PATCH", "DELETE"}
    api_origin = next(o for o in config["Origins"] if o["Id"] == api["TargetOriginId"])
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    [headers] = synth.resources("AWS::CloudFront::ResponseHeadersPolicy").values()
    h = headers["Properties"]["ResponseHeadersPolicyConfig"]
    csp = h["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert csp == CONSOLE_HEADERS["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
    assert h["SecurityHeadersConfig"]["FrameOptions"]["FrameOption"] == "DENY"
    custom = {x["Header"]: x["Value"] for x in h["CustomHeadersConfig"]["Items"]}
    standard = {
        "Content-Security-Policy",
        "Strict-Transport-Security",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
    }
    assert custom == {k: v for k, v in CONSOLE_HEADERS.items() if k not in standard}


def test_every_function_knows_the_pool_and_only_the_console_function_manages_users(synth):
    from infra.components.console import USER_ADMIN_ACTIONS, USER_REMOVE_ACTIONS

    functions = synth.resources("AWS::Lambda::Function")
    for logical_id, fn in functions.items():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_SERVICE_NAME" in env:  # ours (not a CDK helper function)
            assert "CALLTRACK_COGNITO_USER_POOL_ID" in env and "CALLTRACK_COGNITO_CLIENT_ID" in env, (
                logical_id
            )
    managing: dict[str, set[str]] = {}
    for logical_id, policy in synth.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("cognito-idp:") for a in actions):
                managing[logical_id] = set(actions)
                assert not any(a.endswith("*") for a in actions)
                [pool_id] = synth.resources("AWS::Cognito::UserPool")
                assert statement["Resource"] == {"Fn::GetAtt": [pool_id, "Arn"]}, statement
    # The console function manages users; the privacy function (account deletion) may only list
    # and delete an account's users and groups; no other function touches the pool.
    by_role = {name.removeprefix("Functions").split("Role")[0]: actions for name, actions in managing.items()}
    assert by_role == {"Console": set(USER_ADMIN_ACTIONS), "Privacy": set(USER_REMOVE_ACTIONS)}, managing
