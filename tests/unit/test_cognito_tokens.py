"""calltrack.cognito: RS256 ID tokens verified in plain Python, and the group that makes a user a
Principal (issue 23). Signatures come from the ``cryptography`` package, so the verifier is checked
against an independent implementation."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from calltrack.cognito import CognitoPool, PoolKeys, account_role, rs256_valid, verify_id_token
from calltrack.errors import Forbidden, Unauthorized

POOL = CognitoPool(
    pool_id="ap-northeast-1_abc",
    client_id="client1",
    region="ap-northeast-1",
    jwks_url="https://example.invalid/jwks.json",
)
NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey, kid: str = "k1") -> dict:
    pub = key.public_key().public_numbers()
    return {
        "keys": [
            {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": int_b64(pub.n), "e": int_b64(pub.e)}
        ]
    }


def token(key: rsa.RSAPrivateKey, claims: dict | None = None, header: dict | None = None) -> str:
    body = {
        "iss": POOL.issuer,
        "aud": "client1",
        "token_use": "id",
        "exp": NOW + 60,
        "sub": "u1",
        "email": "m@example.com",
        "cognito:groups": ["acme:manager"],
        **(claims or {}),
    }
    head = b64(json.dumps(header or {"alg": "RS256", "kid": "k1"}).encode())
    payload = b64(json.dumps(body).encode())
    sig = key.sign(f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{payload}.{b64(sig)}"


def keys_of(key: rsa.RSAPrivateKey) -> PoolKeys:
    return PoolKeys(fetch=lambda url: jwks(key))


def test_a_valid_id_token_yields_its_claims(key):
    claims = verify_id_token(token(key), POOL, keys=keys_of(key), now=NOW)
    assert claims["email"] == "m@example.com"
    assert account_role(claims) == ("acme", "manager")


def test_the_signature_check_matches_an_independent_implementation(key):
    message = b"header.payload"
    sig = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    pub = key.public_key().public_numbers()
    assert rs256_valid(message, sig, pub.n, pub.e)
    assert not rs256_valid(message + b"!", sig, pub.n, pub.e)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not rs256_valid(message, flipped, pub.n, pub.e)
    # PSS is another padding: the same key's PSS signature is not a PKCS#1 v1.5 one
    pss = key.sign(message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert not rs256_valid(message, pss, pub.n, pub.e)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"exp": NOW}, "expired"),
        ({"aud": "other"}, "another app client"),
        ({"iss": "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_zzz"}, "another user pool"),
        ({"token_use": "access"}, "not an ID token"),
    ],
)
def test_claims_that_do_not_fit_are_refused(key, change, message):
    with pytest.raises(Unauthorized, match=message):
        verify_id_token(token(key, change), POOL, keys=keys_of(key), now=NOW)


def test_a_token_signed_by_another_key_or_algorithm_is_refused(key):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized, match="bad signature"):
        verify_id_token(token(other), POOL, keys=keys_of(key), now=NOW)
    with pytest.raises(Unauthorized, match="RS256"):
        verify_id_token(token(key, header={"alg": "HS256", "kid": "k1"}), POOL, keys=keys_of(key), now=NOW)
    with pytest.raises(Unauthorized, match="unknown key"):
        verify_id_token(token(key, header={"alg": "RS256", "kid": "k9"}), POOL, keys=keys_of(key), now=NOW)
    with pytest.raises(Unauthorized, match="malformed"):
        verify_id_token("a.b", POOL, keys=keys_of(key), now=NOW)
    # a header nested deeper than the JSON parser recurses is refused (401), not a crash (500)
    import base64

    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    with pytest.raises(Unauthorized, match="malformed"):
        verify_id_token(f"{deep}.e30.c2ln", POOL, keys=keys_of(key), now=NOW)


def test_keys_are_fetched_once_and_again_for_a_new_kid_at_most_every_five_minutes(key):
    fetched = []
    clock = [0.0]

    def fetch(url: str) -> dict:
        fetched.append(url)
        return jwks(key)

    keys = PoolKeys(fetch=fetch, clock=lambda: clock[0])
    assert keys.key(POOL.jwks_url, "k1") is not None
    assert keys.key(POOL.jwks_url, "k1") is not None
    assert keys.key(POOL.jwks_url, "rotated") is None  # within 5 minutes: no refetch
    clock[0] = 301.0
    assert keys.key(POOL.jwks_url, "rotated") is None
    assert len(fetched) == 2


def test_an_unreachable_pool_means_no_sign_in_not_a_crash():
    def down(url: str) -> dict:
        raise OSError("connection refused")

    with pytest.raises(Unauthorized, match="unavailable"):
        PoolKeys(fetch=down).key(POOL.jwks_url, "k1")


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["acme:marketer", "acme:manager"], ("acme", "manager")),
        (["acme:admin"], ("acme", "admin")),
        (["my:shop:marketer"], ("my:shop", "marketer")),
    ],
)
def test_the_users_group_gives_one_account_and_its_highest_role(groups, expected):
    assert account_role({"cognito:groups": groups}) == expected


@pytest.mark.parametrize("groups", [[], ["acme:owner"], ["acme:manager", "beta:manager"]])
def test_no_group_or_groups_of_two_accounts_are_forbidden(groups):
    with pytest.raises(Forbidden):
        account_role({"cognito:groups": groups})


def test_deployed_the_session_cookie_is_host_prefixed_and_a_plain_one_is_not_read():
    from calltrack.auth import authenticate, session_cookie
    from console.sessions import cleared_cookie, cookie

    # Given the cookie the console sets when deployed (https) and locally (http)
    deployed, local = cookie("t", NOW + 60, secure=True), cookie("t", NOW + 60, secure=False)
    # Then deployed it is __Host-ct_session: Secure, Path=/ and no Domain, as the prefix demands
    assert (deployed.name, deployed.secure, deployed.path, deployed.domain) == (
        "__Host-ct_session",
        True,
        "/",
        "",
    )
    assert local.name == "ct_session" and not local.secure
    assert cleared_cookie(secure=True).name == "__Host-ct_session"
    # And a deployed stack reads only the prefixed cookie: a plain ct_session (which a sibling
    # subdomain could plant) is no session there
    jar = ["ct_session=planted", "__Host-ct_session=mine"]
    assert session_cookie(jar, "__Host-ct_session") == "mine"
    assert session_cookie(["ct_session=planted"], "__Host-ct_session") is None
    with pytest.raises(Unauthorized, match="missing bearer"):
        authenticate({}, operator_token="op", cookies=["ct_session=planted"], cookie_name="__Host-ct_session")


def test_a_disabled_console_users_token_is_refused_though_it_has_not_expired(key, monkeypatch):
    from calltrack import cognito as cognito_module
    from calltrack.auth import CLOCK_SKEW_S, UserMark, cognito_principal

    # Given a valid ID token of user u1, issued 30 s ago, and the pool's keys
    monkeypatch.setattr(cognito_module.time, "time", lambda: NOW)
    monkeypatch.setattr(cognito_module, "_default_keys", keys_of(key))
    issued = token(key, {"iat": NOW - 30})
    # When no disable is on record for u1, Then the token gives the manager of acme
    assert cognito_principal(issued, POOL, lambda user: None).account == "acme"
    # When u1 was disabled 10 s ago (after the token was issued), Then the same token is refused
    disabled = {"user:u1": UserMark(disabled_at=NOW - 10)}
    with pytest.raises(Unauthorized, match="disabled"):
        cognito_principal(issued, POOL, disabled.get)
    # And a token without an issue time is refused too
    with pytest.raises(Unauthorized, match="disabled"):
        cognito_principal(token(key, {"iat": None}), POOL, disabled.get)
    # But a token from a sign-in after the user was enabled again (issued beyond the clock margin)
    # is the user's again, and another user's token is not touched
    fresh = token(key, {"iat": NOW - 10 + CLOCK_SKEW_S + 1, "exp": NOW + 3600})
    assert cognito_principal(fresh, POOL, disabled.get).account == "acme"
    other = token(key, {"sub": "u2", "iat": NOW - 30})
    assert cognito_principal(other, POOL, disabled.get).token_id == "user:u2"


def test_a_signed_out_session_is_refused_and_the_users_other_sessions_go_on(key, monkeypatch):
    from calltrack import cognito as cognito_module
    from calltrack.auth import UserMark, cognito_principal

    # Given two sign-ins of user u1 (two ID tokens, each with its own jti)
    monkeypatch.setattr(cognito_module.time, "time", lambda: NOW)
    monkeypatch.setattr(cognito_module, "_default_keys", keys_of(key))
    laptop = token(key, {"iat": NOW - 30, "jti": "session-laptop"})
    phone = token(key, {"iat": NOW - 20, "jti": "session-phone"})
    assert cognito_principal(laptop, POOL, lambda user: None).session == "session-laptop"
    # When u1 signed out on the laptop
    marks = {"user:u1": UserMark(signed_out=frozenset({"session-laptop"}))}
    # Then the laptop's token is refused, though it has not expired, and the phone's still works
    with pytest.raises(Unauthorized, match="session ended"):
        cognito_principal(laptop, POOL, marks.get)
    assert cognito_principal(phone, POOL, marks.get).account == "acme"
