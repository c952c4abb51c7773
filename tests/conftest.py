"""Session-wide fixtures: the one local stack every integration and end-to-end test shares.

``local_stack`` starts ``calltrack_cli.local.stack.LocalStack`` in this process on free ports
(moto server, local API gateway, pollers) and yields a ``StackClient``. Tests isolate
themselves with ``tests.support.unique_account()`` / ``unique_number()``, never by resetting
the emulator. ``CALLTRACK_AS_DEPLOYED=1`` starts ``AsDeployedStack`` instead (each function from its
synthesized asset in a Python 3.12 worker under its own IAM role; ``make as-deployed``), and any
access denial seen during the session fails it at teardown.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

_TIERS = ("unit", "integration", "infra", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    for tier in _TIERS:
        config.addinivalue_line("markers", f"{tier}: test in tests/{tier} (set automatically)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        try:
            tier = Path(str(item.fspath)).relative_to(root).parts[0]
        except ValueError:
            continue
        if tier in _TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def local_stack() -> Iterator[object]:
    """The running local stack, as a ``calltrack_cli.local.client.StackClient``."""
    from calltrack.settings import LOCAL_TWILIO_ACCOUNT_SID, LOCAL_TWILIO_AUTH_TOKEN
    from calltrack_cli.local.client import StackClient
    from calltrack_cli.local.stack import LocalStack, free_port

    as_deployed = os.environ.get("CALLTRACK_AS_DEPLOYED", "") == "1"
    port = free_port()
    env = {
        "CALLTRACK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "TWILIO_AUTH_TOKEN": LOCAL_TWILIO_AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": LOCAL_TWILIO_ACCOUNT_SID,
        "CALLTRACK_ADMIN_TOKEN": "ct_operator_test_" + secrets.token_hex(8),
        # Recording retries back off 1 min, 2, 4 ... 12 h as deployed; 1 min takes 1.2 ms here.
        "CALLTRACK_RETRY_TIME_SCALE": "0.00002",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    if as_deployed:  # every function from its synthesized asset under its own IAM role
        from calltrack_cli.local.as_deployed import AsDeployedStack

        stack: LocalStack = AsDeployedStack(port=port, env=env).start()
    else:
        stack = LocalStack(port=port, env=env).start()
    try:
        client = StackClient.for_stack(stack)
        client.stack = stack  # the in-process LocalStack, for tests that need boto3 on the emulator
        yield client
    finally:
        stack.stop()
    if as_deployed:
        from calltrack_cli.local.as_deployed import assert_no_denials

        # Loud, whatever the handlers answered: a fail-open webhook answers 200 on a denied write.
        assert_no_denials(stack.denials())  # type: ignore[attr-defined]
