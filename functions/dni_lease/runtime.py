"""The dni_lease function's composition root: its typed ports, built once per process.

Settings are read (and the variables ``NEEDS`` names checked) on the first invocation, never at
import; routes receive ``Ports`` and logic receives the single ports it uses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from calltrack.accounts import Accounts
from calltrack.settings import Needs
from dni_lease.store import LeaseStore

NEEDS = Needs(tables=("leases", "lease_history", "accounts", "numbers"))


@dataclass(frozen=True)
class Ports:
    store: LeaseStore
    accounts: Accounts


_lock = threading.Lock()
_ports: Ports | None = None


def ports() -> Ports:
    global _ports
    if _ports is None:
        with _lock:
            if _ports is None:
                from calltrack.accounts import account_reader
                from calltrack.clients import dynamodb
                from calltrack.settings import get_settings
                from dni_lease.store import DynamoLeaseStore

                settings = get_settings(NEEDS)
                store = DynamoLeaseStore(
                    dynamodb(), settings.table_name("leases"), settings.table_name("lease_history")
                )
                _ports = Ports(store=store, accounts=account_reader())
    return _ports


def reset() -> None:
    global _ports
    _ports = None
