"""Console users: Amazon Cognito ID tokens verified against the user pool's keys, and the
``<account>:<role>`` group that makes a signed-in user a Principal like a bearer token's.

What is checked (Cognito's "Verifying a JSON Web Token" guide): the header's ``alg`` is RS256 and
its ``kid`` is one of the pool's JWKS keys; the RSASSA-PKCS1-v1_5 SHA-256 signature; ``iss`` is the
pool (``https://cognito-idp.{region}.amazonaws.com/{pool}``), ``aud`` the console's app client,
``token_use`` is ``id``, and ``exp`` is in the future. The signature is verified here in plain Python
(RFC 8017 §8.2.2: recompute the expected encoding and compare it whole, never parse the decrypted
block) because the layer carries no native crypto library; the public-key operation is one modular
exponentiation with e = 65537.

The pool's keys are fetched once per container (and again, at most every 5 minutes, when a token
names a key not yet seen, as after a key rotation): from Cognito over https, or locally from the
emulator at 127.0.0.1 (``CALLTRACK_COGNITO_JWKS_URL``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from calltrack.errors import Forbidden, Unauthorized

ROLE_RANK = {"marketer": 1, "manager": 2, "admin": 3}
GROUPS_CLAIM = "cognito:groups"
SESSION_COOKIE = "ct_session"  # local (http): a plain name
# Deployed (https): the __Host- prefix makes the browser accept the cookie only if it is Secure, for
# Path=/ and without Domain, so no sibling subdomain can plant or shadow a session.
SECURE_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
CONSOLE_HEADER = "x-calltrack-console"  # required on cookie-authenticated writes (with SameSite)
KEYS_REFRESH_S = 300.0
# The longest an ID token can live (Cognito allows at most a day; the stack sets an hour): how long
# a disabled user's tokens must be refused after the disable (calltrack.auth.revoke_console_user).
ID_TOKEN_MAX_S = 86400.0
# DER prefix of DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def session_cookie_name(secure: bool) -> str:
    """The session cookie's name: ``__Host-ct_session`` when deployed (Secure), else ``ct_session``."""
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


@dataclass(frozen=True)
class CognitoPool:
    """Which pool and app client a token must come from, and where its public keys are."""

    pool_id: str
    client_id: str
    region: str
    jwks_url: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @classmethod
    def from_settings(cls, settings: Any) -> CognitoPool | None:
        pool = getattr(settings, "cognito_user_pool_id", "")
        client = getattr(settings, "cognito_client_id", "")
        if not pool or not client:
            return None
        region = pool.split("_", 1)[0] if "_" in pool else settings.region
        url = getattr(settings, "cognito_jwks_url", "") or (
            f"https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json"
        )
        return cls(pool_id=pool, client_id=client, region=region, jwks_url=url)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("ct_")


def _b64(part: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (ValueError, TypeError):
        raise Unauthorized(f"malformed token ({what})") from None


def _b64_int(value: object) -> int:
    if not isinstance(value, str):
        raise ValueError("not a base64url string")
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def rs256_valid(message: bytes, signature: bytes, n: int, e: int) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 §8.2.2, encode-and-compare)."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k or k < 256:  # Cognito's keys are 2048-bit; refuse anything shorter
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


KeyFetcher = Callable[[str], Mapping[str, Any]]  # jwks url -> the JWKS document


def fetch_jwks(url: str) -> Mapping[str, Any]:
    """GET the pool's JWKS (https; http only to 127.0.0.1, which the settings allow in local mode)."""
    import urllib.request
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if not (parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname == "127.0.0.1")):
        raise Unauthorized("sign-in keys: the JWKS URL must be https")
    from calltrack.outbound import direct_opener

    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    # no redirect followed (another host's keys would be trusted) and no proxy variable
    with direct_opener().open(request, timeout=3) as response:
        body = json.loads(response.read(1_000_000))
    if not isinstance(body, dict):
        raise ValueError("JWKS is not an object")
    return body


class PoolKeys:
    """The pool's RSA keys by kid, cached per container; a new kid refetches at most every 5 min."""

    def __init__(self, fetch: KeyFetcher = fetch_jwks, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, dict[str, tuple[int, int]]] = {}
        self._fetched_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def key(self, url: str, kid: str) -> tuple[int, int] | None:
        with self._lock:
            known = self._keys.get(url)
            fetched = self._fetched_at.get(url)
            stale = fetched is None or self._clock() - fetched >= KEYS_REFRESH_S
            if (known is None or kid not in known) and stale:
                try:
                    document = self._fetch(url)
                except Unauthorized:
                    raise
                except Exception:  # noqa: BLE001 - the pool is unreachable: no key, so no sign-in
                    raise Unauthorized("sign-in keys are unavailable; try again shortly") from None
                self._keys[url] = _rsa_keys(document)
                self._fetched_at[url] = self._clock()
                known = self._keys[url]
            return (known or {}).get(kid)


def _rsa_keys(document: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for jwk in document.get("keys") or []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
            continue
        try:
            out[str(jwk["kid"])] = (_b64_int(jwk["n"]), _b64_int(jwk["e"]))
        except (KeyError, ValueError):
            continue
    return out


_default_keys = PoolKeys()


def verify_id_token(
    token: str, pool: CognitoPool, *, keys: PoolKeys | None = None, now: float | None = None
) -> dict[str, Any]:
    """The token's claims when it is a valid, unexpired ID token of ``pool``; else Unauthorized."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthorized("malformed token")
    try:
        header = json.loads(_b64(parts[0], "header"))
        claims = json.loads(_b64(parts[1], "claims"))
    except (ValueError, RecursionError):  # deep nesting: RecursionError, not a 500
        raise Unauthorized("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthorized("malformed token")
    if header.get("alg") != "RS256":
        raise Unauthorized("token: only RS256 is accepted")
    key = (keys or _default_keys).key(pool.jwks_url, str(header.get("kid")))
    if key is None:
        raise Unauthorized("token: signed by an unknown key")
    signed = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not rs256_valid(signed, _b64(parts[2], "signature"), *key):
        raise Unauthorized("token: bad signature")
    if claims.get("iss") != pool.issuer:
        raise Unauthorized("token: issued by another user pool")
    if claims.get("aud") != pool.client_id:
        raise Unauthorized("token: issued for another app client")
    if claims.get("token_use") != "id":
        raise Unauthorized("token: not an ID token")
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or (time.time() if now is None else now) >= exp:
        raise Unauthorized("session expired: sign in again")
    return claims


def account_role(claims: Mapping[str, Any]) -> tuple[str, str]:
    """(account, role) from the user's ``<account>:<role>`` groups: one account; the highest role."""
    groups = claims.get(GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    found: dict[str, str] = {}
    for group in groups:
        account, _, role = str(group).rpartition(":")
        if account and role in ROLE_RANK and ROLE_RANK[role] > ROLE_RANK.get(found.get(account, ""), 0):
            found[account] = role
    if not found:
        raise Forbidden("this user is in no account group (<account>:<role>)")
    if len(found) > 1:
        raise Forbidden("this user is in groups of several accounts; a console user belongs to one")
    ((account, role),) = found.items()
    return account, role


def group_name(account: str, role: str) -> str:
    return f"{account}:{role}"
