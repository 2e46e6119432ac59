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

# Accounts Debian and Ubuntu make for the system, and those of the services this project
# installs: an admin or the application made one of these takes the service's files with it.
SYSTEM_ACCOUNTS = frozenset(
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats nobody _apt "
    "systemd-network systemd-resolve systemd-timesync systemd-coredump messagebus sshd _chrony chrony ntp "
    "mysql monit redis nginx postfix syslog uuidd tss tcpdump dnsmasq polkitd landscape pollinate lxd".split()
)
SYSTEM_GROUPS = SYSTEM_ACCOUNTS | frozenset(
    "adm tty disk kmem dialout fax voice cdrom floppy tape audio dip operator src shadow utmp video sasl plugdev "
    "staff users nogroup systemd-journal input sgx kvm render crontab netdev _ssh ssh docker".split()
)
# The groups sudoers grants on Debian and Ubuntu: system groups, but made for the admins.
ADMIN_GROUPS = frozenset({"sudo", "wheel", "admin"})


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


def account_taken(name: str, accounts: AccountSettings) -> str | None:
    """What already owns the account name ``name`` (root, a system account, an admin, the
    admin group), or None: an account the project makes must never be one of them."""
    if name in SYSTEM_ACCOUNTS:
        return "is root's or a system account's name"
    if name in [admin.name for admin in accounts.admin_users]:
        return "is an admin's name: the admin would become a locked account, and nobody could log in"
    if name == accounts.admin_group or name in SYSTEM_GROUPS or name in ADMIN_GROUPS:
        return "is the admin group's or a system group's name"
    return None
