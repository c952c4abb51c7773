"""Console users on the local stack's Cognito (issue 23): create one, sign in, forge expired tokens."""

from __future__ import annotations

import secrets
import time
from typing import Any

PASSWORD = "Correct-horse-9"


def create_console_user(
    stack: Any, account: str, role: str, email: str | None = None, password: str = PASSWORD
) -> tuple[str, str]:
    """A console user through the real users API (operator token) -> (email, password)."""
    email = email or f"{role}-{secrets.token_hex(4)}@{account}.example.com"
    stack.create_user(account, role, email, password)
    return email, password


def sign_in(stack: Any, email: str, password: str) -> Any:
    """POST /v1/session -> the requests.Response (its ``ct_session`` cookie holds the ID token).

    Sent without the stack client's shared session: its cookie jar would keep the session cookie
    and sign in every later request of every test."""
    import requests

    return requests.post(f"{stack.url}/v1/session", json={"email": email, "password": password}, timeout=30)


def session_token(stack: Any, email: str, password: str) -> str:
    resp = sign_in(stack, email, password)
    assert resp.status_code == 200, resp.text
    return str(resp.cookies["ct_session"])


def _emulator_key() -> Any:
    """The private key the emulator signs its Cognito tokens with (moto's bundled test key)."""
    from joserfc import jwk
    from moto.utilities.utils import load_resource

    return jwk.RSAKey.import_key(load_resource("cognitoidp/resources/jwks-private.json"))


def forged_id_token(stack: Any, claims: dict[str, Any], *, key: Any = None) -> str:
    """An ID token of the stack's pool signed like the emulator signs them, with ``claims`` on top of
    valid defaults (a valid token unless the claims say otherwise)."""
    from joserfc import jwt

    pool, client = stack.stack.user_pool_id, stack.stack.user_pool_client_id
    now = int(time.time())
    body = {
        "iss": f"https://cognito-idp.{pool.split('_', 1)[0]}.amazonaws.com/{pool}",
        "aud": client,
        "token_use": "id",
        "sub": secrets.token_hex(8),
        "iat": now,
        "exp": now + 3600,
        "email": "forged@example.com",
    }
    body.update(claims)
    return str(jwt.encode({"kid": "dummy", "alg": "RS256"}, body, key or _emulator_key()))


def expired_id_token(stack: Any, email: str, account: str, role: str) -> str:
    """A correctly signed ID token of ``email`` in ``<account>:<role>`` that expired a minute ago."""
    now = int(time.time())
    return forged_id_token(
        stack, {"email": email, "cognito:groups": [f"{account}:{role}"], "iat": now - 3700, "exp": now - 60}
    )
