"""Who is who in the inventory: the role groups, each host's private address, and how the
operator's machine reaches a host. Firewall rules, database accounts and backup copies are
computed from this on every run."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, WrapValidator
from pyinfra.api import FactBase

from . import compat
from .data_types import FilePath, HostSettings, LoginName, Port, Rule, documented_in
from .settings import Problem

if TYPE_CHECKING:
    from pyinfra.api.host import Host
    from pyinfra.api.inventory import Inventory

# The inventory groups of the server roles (pyinfra_hardening.roles applies one to each).
APP_SERVERS, DB_SERVERS, BACKUP_SERVERS = "app_servers", "db_servers", "backup_servers"
CACHE_SERVERS = "cache_servers"  # the application's session store
ROLE_GROUPS = (APP_SERVERS, DB_SERVERS, CACHE_SERVERS, BACKUP_SERVERS)


def _private_ip(value: Any, _handler: Any) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value if isinstance(value, str) else "")
    except ValueError:
        raise ValueError("is not an IP address") from None
    if address.is_link_local:
        raise ValueError("is a link-local address (169.254.x.x, fe80::), which needs an interface scope and moves")
    if address.is_unspecified or address.is_loopback:
        raise ValueError(
            "is not one host's address on a network (services would listen everywhere, or nowhere reachable)"
        )
    if not address.is_private:
        raise ValueError("is a public address; give the host's private (internal network) address")
    return str(address)


# The Rule states the rule for the docs; the validator, which never calls it, gives each reason.
PrivateIp = Annotated[
    str | None,
    Rule(
        "must be this host's own IP address on a private network (not public, loopback, link-local or 0.0.0.0, "
        "and no other host's), or None"
    ),
    WrapValidator(_private_ip),
]


class FleetSettings(HostSettings):
    title = "Private network"

    private_ip: PrivateIp = Field(
        None, description="this host's private-network address, set per host; firewall and database rules use it"
    )
    # pyinfra's own connection keys, checked here: the probe and the firewall use them too.
    ssh_user: LoginName | None = Field(
        None, json_schema_extra=documented_in("inventory"), description="pyinfra's: the user a run connects as"
    )
    ssh_key: FilePath | None = Field(
        None,
        json_schema_extra=documented_in("inventory"),
        description="pyinfra's: the private key a run connects with (also the default probe key)",
    )
    ssh_port: Port | None = Field(
        None, json_schema_extra=documented_in("inventory"), description="pyinfra's: the port of the host's sshd"
    )

    def problems(self, host: Host) -> list[Problem]:
        """Two hosts with one private address: rules meant for one would admit the other."""
        problems = address_problems(host, self.private_ip)
        twins = [
            peer.name
            for peer in host.inventory
            if peer is not host and self.private_ip is not None and peer.data.get("private_ip") == self.private_ip
        ]
        if not twins:
            return problems
        return [
            *problems,
            Problem(
                host.name,
                "private_ip",
                self.private_ip,
                f"is also {', '.join(twins)}'s",
                "give each host its own private address",
            ),
        ]


def roles_of(host: Host) -> tuple[str, ...]:
    """The role groups ``host`` is in."""
    return tuple(group for group in ROLE_GROUPS if group in host.groups)


def private_ips(inventory: Inventory, group: str) -> tuple[str, ...]:
    """The private addresses of the hosts in ``group`` that have one."""
    addresses = (peer.data.get("private_ip") for peer in inventory.get_group(group, []))
    return tuple(address for address in addresses if address)


def first_with_private_ip(inventory: Inventory, group: str) -> Host | None:
    """The first host of ``group`` in the inventory with a private address (the one its peers
    use, such as the application's database or session store); None without one."""
    return next((peer for peer in inventory.get_group(group, []) if peer.data.get("private_ip")), None)


def ssh_address(host: Host) -> tuple[str, int]:
    """Where the operator's machine reaches ``host``'s sshd (as pyinfra does)."""
    return host.data.get("ssh_hostname") or host.name, host.data.get("ssh_port") or 22


def connect_key(host: Host) -> str | None:
    """The private key pyinfra connects with, if the inventory names one."""
    key = host.data.get("ssh_key")
    return str(Path(key).expanduser()) if key else None


@dataclass(frozen=True)
class HostIdentity:
    """The host's accounts (uid, login shell), groups (gid) and configured addresses."""

    users: dict[str, tuple[int, str]] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    addresses: frozenset[str] = frozenset()


class HostAccountsAndAddresses(FactBase[HostIdentity]):
    """Accounts, groups and addresses in one round trip, read before any change: names the data
    must not take over, and the addresses ``private_ip`` must be one of."""

    def command(self) -> str:
        return (
            "getent passwd | cut -d: -f1,3,7; echo '--'; getent group | cut -d: -f1,3; echo '--'; "
            "ip -o addr show 2>/dev/null | awk '{print $4}' || true"
        )

    def process(self, output: list[str]) -> HostIdentity:
        sections: list[list[str]] = [[]]
        for line in output:
            if line.strip() == "--":
                sections.append([])
            else:
                sections[-1].append(line.strip())
        users_lines, group_lines, address_lines = (sections + [[], [], []])[:3]
        users = {}
        for line in users_lines:
            name, uid, shell = (line.split(":") + ["", ""])[:3]
            if uid.isdigit():
                users[name] = (int(uid), shell)
        groups = {name: int(gid) for name, _, gid in (line.partition(":") for line in group_lines) if gid.isdigit()}
        addresses = frozenset(line.split("/")[0].split("%")[0] for line in address_lines if line)
        return HostIdentity(users, groups, addresses)


def reads_host(host: Host) -> bool:
    """Whether rules may read ``host`` now: in a run, while its own deploy is loaded. Each host
    is read in its own turn; pyinfra loads every host's deploy before it runs any operation, so
    this is still before the first change on any host."""
    return host.connected and host is compat.current_host()


def identity_of(host: Host) -> HostIdentity | None:
    """What the host has, when rules may read it (``reads_host``)."""
    return host.get_fact(HostAccountsAndAddresses) if reads_host(host) else None


def address_problems(host: Host, private_ip: str | None) -> list[Problem]:
    """``private_ip`` must be configured on the host: else services would bind nothing and peers'
    rules would admit a stranger."""
    identity = identity_of(host)
    if private_ip is None or identity is None or not identity.addresses or private_ip in identity.addresses:
        return []
    return [
        Problem(
            host.name,
            "private_ip",
            private_ip,
            f"is not an address of this host (it has {', '.join(sorted(identity.addresses))})",
            "set the address `ip -o addr` shows on the host's private network",
        )
    ]
