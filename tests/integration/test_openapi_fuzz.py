"""Schemathesis against the report API's own /openapi.json on the local stack (bounded).

Every documented operation gets at most 25 generated requests with an admin token (every route
allowed) of a fresh account; no answer may be a 5xx and every answer must match its schema.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support import unique_number
from tests.support.stack import apply_account

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def fuzz_token(local_stack: Any) -> str:
    flyer = {"number": unique_number(), "channel": "flyer", "campaign": "c"}
    account = apply_account(local_stack, "fuzz", name="Fuzz", numbers=[flyer])
    return str(local_stack.create_token(account, "admin"))


@pytest.mark.timeout(180)
def test_no_server_errors_and_responses_match_their_schema(local_stack: Any, fuzz_token: str) -> None:
    api = schemathesis.openapi.from_url(local_stack.url + "/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"invalid operation in /openapi.json: {result.err()}"[:2000])
            continue
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(
                base_url=local_stack.url,
                headers={"Authorization": f"Bearer {fuzz_token}"},
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            exercise()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
