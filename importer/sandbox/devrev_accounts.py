"""The sandbox's DevRev accounts: what a ``parent`` names and ``accounts.list`` finds.

Seeded with ``--devrev-account EXTERNAL_REF`` (one account per option; the same ref twice
makes an ambiguous pair), more added by ``POST /_sandbox/devrev/accounts``; a reset keeps
only the seeded ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from importer.sandbox.devrev_rules import PARENT_ID

ACCOUNT_PREFIX = "don:core:dvrv-us-1:devo/sandbox:account/"


@dataclass
class DevRevAccount:
    """An account, with the CRM ids it was synced from (its external_refs)."""

    seq: int
    external_refs: list[str]
    display_name: str

    @property
    def id(self) -> str:
        return f"{ACCOUNT_PREFIX}{self.seq}"

    def render(self) -> dict[str, Any]:
        """As DevRev answers it."""
        return {
            "id": self.id,
            "display_id": f"ACC-{self.seq}",
            "display_name": self.display_name,
            "external_refs": list(self.external_refs),
        }


@dataclass
class DevRevAccounts:
    """The accounts parents must name: seeded from the settings, more added by admin."""

    seeded: tuple[str, ...] = ()
    accounts: list[DevRevAccount] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.restore()

    def restore(self) -> None:
        """Only the seeded accounts, one per external reference given."""
        self.accounts = []
        for ref in self.seeded:
            self.add([ref], f"Account {ref}")

    def add(self, external_refs: list[str], display_name: str) -> DevRevAccount:
        account = DevRevAccount(len(self.accounts) + 1, external_refs, display_name)
        self.accounts.append(account)
        return account

    def holds(self, parent: str) -> bool:
        """Whether ``parent`` (full or display id) names one of these accounts."""
        match = PARENT_ID.match(parent)
        if match is None:
            return False
        seq = match.group(2) or match.group(4)
        return seq.isdigit() and 1 <= int(seq) <= len(self.accounts)
