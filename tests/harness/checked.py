"""Validating a test inventory as the roles do, for unit tests."""

from __future__ import annotations

from pyinfra.api import Inventory
from pyinfra.api.host import Host

from pyinfra_hardening.roles import check_roles


def checked_hosts(inventory: Inventory) -> dict[str, Host]:
    """The inventory's hosts by name, once every role's settings passed on all of them."""
    check_roles(list(inventory))
    return {host.name: host for host in inventory}
