"""Clients of fixed https endpoints (the ad platforms' conversions API, Cognito's sign-in keys) over
real HTTP on 127.0.0.1: a redirect is an answer, never followed with their credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receiver import Receiver, serve


@pytest.fixture
def platform() -> Iterator[Receiver]:
    yield from serve(Receiver())


@pytest.fixture
def elsewhere() -> Iterator[Receiver]:
    """Where a redirect points (an internal address in real life: 127.0.0.1:9001 is Lambda's)."""
    yield from serve(Receiver())


def test_a_platform_redirect_is_the_answer_and_the_token_goes_nowhere_else(platform, elsewhere) -> None:
    from conversions import http

    # Given a platform endpoint answering 302 to another address
    platform.redirect_to = elsewhere.url
    # When a conversion is posted with the platform's token
    answer = http.post(platform.url, json_body={"conversions": []},
                       headers={"Authorization": "Bearer ya29.secret", "developer-token": "dev"})
    # Then the 302 is the answer (an unexpected one, which the adapter fails), and nothing, least
    # of all the token, reached where it pointed
    assert answer.status == 302 and platform.attempts == 1
    assert elsewhere.attempts == 0


def test_the_sign_in_keys_are_not_fetched_from_where_a_redirect_points(platform, elsewhere) -> None:
    from calltrack.cognito import fetch_jwks

    # Given the pool's JWKS URL answering 302 to a server that would hand out its own keys
    platform.redirect_to = elsewhere.url
    # Then fetching the keys fails (sign-in refused until the real keys answer) and the other
    # server was never asked
    with pytest.raises(Exception, match="302"):
        fetch_jwks(platform.url)
    assert elsewhere.attempts == 0
