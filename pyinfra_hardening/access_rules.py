"""Rules across concerns, in one place: settings that each look fine alone but together would
shut every admin out, or leave a peer that nobody can name. Each concern's model calls the
rules it depends on from its ``problems()``, so a concern used alone is held to them too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import paramiko

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
    enrolled = [entry.name for entry in accounts.admin_users if entry.two_factor]
    probe_user = ssh.ssh_probe_user or (names[0] if names else None)
    if ssh.ssh_two_factor and ssh.ssh_two_factor_strict and names and probe_user not in enrolled:
        problems.append(
            Problem(
                host.name,
                "ssh_two_factor_strict",
                True,
                f"refuses admins without TOTP, and the probe admin {probe_user} has two_factor off: "
                "the run could not prove a login, and "
                + ("nobody could log in" if not enrolled else f"only {', '.join(enrolled)} could log in"),
                "turn two_factor on for the admins (or ssh_two_factor_strict off until they are enrolled)",
            )
        )
    probe_key = ssh.probe_key(host)
    if probe_key is not None and probe_user in names:
        what = probe_key_problem(
            Path(probe_key), next(e for e in accounts.admin_users if e.name == probe_user).ssh_keys
        )
        if what:
            problems.append(
                Problem(
                    host.name,
                    "ssh_probe_key" if ssh.ssh_probe_key else "ssh_key",
                    probe_key,
                    what.replace("ADMIN", probe_user),
                    f"give the path of {probe_user}'s private key (ssh_probe_key), its public half in their ssh_keys",
                )
            )
    return problems


def probe_key_problem(path: Path, public_keys: list[str]) -> str | None:
    """Why the private key at ``path`` cannot prove ADMIN's login, or None."""
    if not path.is_file():
        return "is not a file on this machine"
    try:
        key = paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError):  # paramiko 4 raises TypeError for a passphrase
        return "is encrypted with a passphrase, which the probe cannot type"
    except (paramiko.SSHException, ValueError, OSError):
        return "is not a private key paramiko can load (a .pub file, or a key of another kind?)"
    if f"{key.get_name()} {key.get_base64()}" not in {" ".join(line.split()[:2]) for line in public_keys}:
        return "is not the private half of any of ADMIN's ssh_keys"
    return None


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
    """The firewall of a database or cache server admits app servers, and a backup server's
    admits database servers, by their private addresses: those hosts need one."""
    problems = []
    for group, peers in (
        (fleet.APP_SERVERS, fleet.DB_SERVERS),
        (fleet.APP_SERVERS, fleet.CACHE_SERVERS),
        (fleet.DB_SERVERS, fleet.BACKUP_SERVERS),
    ):
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


LOGIN_SHELLS_NOT = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
FIRST_PERSON_UID = 1000  # Debian's and Ubuntu's UID_MIN: below are system accounts and groups


def existing_account_problems(host: Host, key: str, name: str, person: bool) -> list[Problem]:
    """``name`` as the host has it: an admin (``person``) must not be an existing system
    account; the application's locked account must not be one somebody logs in as."""
    identity = fleet.identity_of(host)
    if identity is None or name not in identity.users:
        return []
    uid, shell = identity.users[name]
    if person and uid < FIRST_PERSON_UID:
        what = f"is an existing system account on this host (uid {uid})"
    elif not person and (uid >= FIRST_PERSON_UID or shell not in LOGIN_SHELLS_NOT):
        what = f"is an existing account on this host that logs in (uid {uid}, shell {shell})"
    else:
        return []
    return [Problem(host.name, key, name, what, "choose a name no account on the host has yet")]


def existing_group_problems(host: Host, group: str) -> list[Problem]:
    """The admin group must not be a system group the host already has (but sudo, wheel, admin)."""
    identity = fleet.identity_of(host)
    gid = identity.groups.get(group) if identity else None
    if gid is None or gid >= FIRST_PERSON_UID or group in ADMIN_GROUPS:
        return []
    return [
        Problem(
            host.name,
            "admin_group",
            group,
            f"is an existing system group on this host (gid {gid})",
            "use sudo or a new group of your own",
        )
    ]
