"""Rules across concerns, in one place: settings that each look fine alone but together would
shut every admin out, or leave a peer that nobody can name. Each concern's model calls the
rules it depends on from its ``problems()``, so a concern used alone is held to them too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import fleet
from .settings import Problem

if TYPE_CHECKING:
    from pyinfra.api.host import Host

    from .accounts import AccountSettings
    from .ssh import SshSettings


def nobody_left(host: Host, accounts: AccountSettings, locks: str) -> list[Problem]:
    """Locking root or sudo with no admin defined would leave nobody to administer the host."""
    if accounts.admin_users:
        return []
    return [
        Problem(
            host.name,
            "admin_users",
            [],
            f"is empty, so {locks} would leave nobody able to administer the host",
            "add at least one admin with an SSH key to group_data/all.py (and a password hash to the secret store)",
        )
    ]


def ssh_lockout(host: Host, ssh: SshSettings, accounts: AccountSettings) -> list[Problem]:
    """SSH settings that would let no admin in after the hardening."""
    names = [admin.name for admin in accounts.admin_users]
    problems = []
    if not names:
        problems.append(
            Problem(
                host.name,
                "admin_users",
                [],
                "is empty, but SSH will take only admins' keys: nobody could log in",
                "add at least one admin with an SSH key to group_data/all.py",
            )
        )
    missing = [name for name in names if ssh.ssh_allow_users and name not in ssh.ssh_allow_users]
    if missing:
        problems.append(
            Problem(
                host.name,
                "ssh_allow_users",
                ssh.ssh_allow_users,
                f"leaves out admin(s) {', '.join(missing)}",
                "add every admin to ssh_allow_users (or leave it empty)",
            )
        )
    if ssh.ssh_allow_groups and accounts.admin_group not in ssh.ssh_allow_groups:
        problems.append(
            Problem(
                host.name,
                "ssh_allow_groups",
                ssh.ssh_allow_groups,
                f"leaves out admin_group {accounts.admin_group!r}",
                "add admin_group to ssh_allow_groups (or leave it empty)",
            )
        )
    if ssh.ssh_probe_user is not None and ssh.ssh_probe_user not in names:
        problems.append(
            Problem(
                host.name,
                "ssh_probe_user",
                ssh.ssh_probe_user,
                "is not one of admin_users",
                "name an admin whose private key is on this machine",
            )
        )
    probe_key = ssh.probe_key(host)
    if probe_key is not None and not Path(probe_key).is_file():
        problems.append(
            Problem(
                host.name,
                "ssh_probe_key" if ssh.ssh_probe_key else "ssh_key",
                probe_key,
                "is not a file on this machine",
                "give the path of the admin's private key",
            )
        )
    return problems


def needs_private_ip(host: Host, why: str) -> list[Problem]:
    """A host whose peers reach it (or whom peers admit) by its private address must have one."""
    if host.data.get("private_ip") is not None:
        return []
    return [
        Problem(
            host.name,
            "private_ip",
            None,
            f"is not set, but {why}",
            "set this host's private_ip in the inventory (its address on the internal network)",
        )
    ]


def peers_need_private_ip(host: Host) -> list[Problem]:
    """The firewall of a database server admits app servers, and a backup server's admits
    database servers, by their private addresses: those hosts need one."""
    problems = []
    for group, peers in ((fleet.APP_SERVERS, fleet.DB_SERVERS), (fleet.DB_SERVERS, fleet.BACKUP_SERVERS)):
        if group in host.groups and host.inventory.get_group(peers, []):
            problems += needs_private_ip(host, f"the {peers} firewall admits {group} only by their private address")
    return problems
