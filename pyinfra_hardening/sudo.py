"""Sudo always asks for the user's password (guide 3.5), and no sudoers file lands unchecked."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pyinfra import host, logger
from pyinfra.api import FactBase, deploy, operation
from pyinfra.facts.files import FileContents

from . import access_rules, compat
from .accounts import AccountSettings, sudo_password_problems
from .data_types import Flag, HostSettings
from .managed_files import directory, render, text_of, validated_file
from .settings import Problem, settings_for, validated

if TYPE_CHECKING:
    from pyinfra.api.host import Host

SUDOERS_VALIDATOR = "visudo -cf {}"
SUDOERS_DIR = "/etc/sudoers.d"
MANAGED_DROP_IN = f"{SUDOERS_DIR}/10-hardening"
NOPASSWD_TAG = re.compile(r"NOPASSWD:\s*")
SKIPS_AUTHENTICATION = re.compile(r"!\s*authenticate\b")


class SudoSettings(HostSettings):
    title = "Sudo"

    sudo_require_password: Flag = Field(
        True, description="remove every NOPASSWD rule so a stolen login alone cannot become root (guide 3.5)"
    )

    def problems(self, host: Host) -> list[Problem]:
        problems = sudo_password_problems(host, self.sudo_require_password)
        accounts, _ = validated(host, AccountSettings, in_use=False)  # its values; its own rules report the rest
        if accounts and self.sudo_require_password:
            problems += access_rules.nobody_left(host, accounts, "requiring a password for sudo")
        return problems


class SudoersWithoutPassword(FactBase[list[str]]):
    """Sudoers files with a rule that lets someone sudo without their password."""

    def command(self) -> str:
        return "grep -lE '^[^#]*(NOPASSWD|!\\s*authenticate)' /etc/sudoers /etc/sudoers.d/* 2>/dev/null || true"

    default = list

    def process(self, output: list[str]) -> list[str]:
        return [line.strip() for line in output if line.strip()]


def require_password(lines: list[str]) -> str:
    """The sudoers text with NOPASSWD tags removed and ``!authenticate`` defaults disabled."""
    result = []
    for line in lines:
        if line.lstrip().startswith("#"):
            result.append(line)
        elif SKIPS_AUTHENTICATION.search(line):
            result.append(f"# disabled by pyinfra-hardening (sudo must ask a password): {line}")
        else:
            result.append(NOPASSWD_TAG.sub("", line))
    return text_of(result)


@compat.announces_reads(lambda path, **_: [(FileContents, {"path": path})])
@operation()
def sudoers_require_password(path: str) -> Any:
    """
    Rewrite one sudoers file so every rule in it asks for a password; checked by visudo.

    + path: the sudoers file
    """
    lines = host.get_fact(FileContents, path=path) or []
    yield from validated_file._inner(
        dest=path, content=require_password(lines), validator=SUDOERS_VALIDATOR, mode="440"
    )


@deploy("Sudo")
def managed_sudoers() -> None:
    """
    A sudoers drop-in, checked by ``visudo``: members of ``admin_group`` sudo with their password.
    """
    settings = settings_for(host, AccountSettings)
    # Who may do what as root is nobody else's business (Debian makes the folder 755).
    directory(name=f"{SUDOERS_DIR} readable by root only", path=SUDOERS_DIR, user="root", group="root", mode="750")
    validated_file(
        name=f"Sudoers drop-in: members of {settings.admin_group} sudo with their password",
        dest=MANAGED_DROP_IN,
        content=render(MANAGED_DROP_IN, admin_group=settings.admin_group),
        validator=SUDOERS_VALIDATOR,
        mode="440",
    )


def connected_user_keeps_sudo(host: Host) -> bool:
    """Whether the user this run connects as can still act as root after ``lock_sudo``: root
    itself, or an admin (whose sudo password pyinfra has)."""
    admins = [entry.name for entry in settings_for(host, AccountSettings).admin_users]
    return compat.connect_user(host) in ("root", *admins)


def facts_read_first() -> compat.FactReads:
    """What ``nopasswd_pending`` and ``lock_sudo`` read while a role loads."""
    return [(SudoersWithoutPassword, {})]


def nopasswd_pending(host: Host) -> bool:
    """Whether ``lock_sudo`` will remove passwordless sudo in this run."""
    return settings_for(host, SudoSettings).sudo_require_password and bool(host.get_fact(SudoersWithoutPassword))


@deploy("Sudo lockdown")
def lock_sudo() -> None:
    """
    With ``sudo_require_password``, remove every NOPASSWD rule and ``!authenticate`` default.
    Apply last: a provider user that connected with NOPASSWD loses it.
    """
    if not settings_for(host, SudoSettings).sudo_require_password:
        return
    if not connected_user_keeps_sudo(host):
        admins = [entry.name for entry in settings_for(host, AccountSettings).admin_users]
        logger.warning(
            f"{host.name}: {compat.connect_user(host)} loses passwordless sudo in this run; "
            f"connect as an admin ({', '.join(admins)}) from now on"
        )
    for path in host.get_fact(SudoersWithoutPassword):
        sudoers_require_password(name=f"Require a password for sudo in {path}", path=path)
