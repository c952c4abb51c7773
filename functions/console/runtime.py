"""The console function's composition root: settings checked, the user directory built once."""

from __future__ import annotations

import functools

from calltrack.settings import Needs
from console.directory import CognitoDirectory

NEEDS = Needs(tables=("accounts", "audit", "tokens"), secrets=("admin_token",), user_pool="admin")


@functools.cache
def directory() -> CognitoDirectory:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    from calltrack.settings import SettingsError, get_settings

    settings = get_settings(NEEDS)
    if not settings.cognito_user_pool_id or not settings.cognito_client_id:
        raise SettingsError("CALLTRACK_COGNITO_USER_POOL_ID and CALLTRACK_COGNITO_CLIENT_ID must be set")
    region = settings.cognito_user_pool_id.split("_", 1)[0]
    session = boto3.session.Session()
    timeouts = {"connect_timeout": 3, "read_timeout": 8, "retries": {"max_attempts": 2}}
    return CognitoDirectory(
        session.client("cognito-idp", region_name=region, config=Config(**timeouts)),
        session.client(
            "cognito-idp", region_name=region, config=Config(signature_version=UNSIGNED, **timeouts)
        ),
        settings.cognito_user_pool_id,
        settings.cognito_client_id,
    )


def reset() -> None:
    directory.cache_clear()
