"""Sudo always asks for the user's password (guide 3.5), and no sudoers file lands unchecked."""

from __future__ import annotations

import re

from pyinfra import host, logger
from pyinfra.api import FactBase, deploy, operation
from pyinfra.facts.files import FileContents

from .files import render, text_of, validated_file
from .settings import Settings

SUDOERS_VALIDATOR = "visudo -cf {}"
MANAGED_DROP_IN = "/etc/sudoers.d/10-hardening"
NOPASSWD_TAG = re.compile(r"NOPASSWD:\s*")
SKIPS_AUTHENTICATION = re.compile(r"!\s*authenticate\b")


class SudoersWithoutPassword(FactBase):
    """Sudoers files with a rule that lets someone sudo without their password."""

    def command(self) -> str:
        return (
            "grep -lE '^[^#]*(NOPASSWD|!\\s*authenticate)' /etc/sudoers /etc/sudoers.d/* "
            "2>/dev/null || true"
        )

    default = list

    def process(self, output):
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


@operation()
def sudoers_require_password(path: str):
    """Rewrite one sudoers file so every rule in it asks for a password; checked by visudo."""
    lines = host.get_fact(FileContents, path=path) or []
    yield from validated_file._inner(
        dest=path, content=require_password(lines), validator=SUDOERS_VALIDATOR, mode="440"
    )


@deploy("Sudo")
def managed_sudoers(settings: Settings):
    validated_file(
        name=f"Sudoers drop-in: members of {settings.admin_group} sudo with their password",
        dest=MANAGED_DROP_IN,
        content=render(MANAGED_DROP_IN, admin_group=settings.admin_group),
        validator=SUDOERS_VALIDATOR,
        mode="440",
    )


@deploy("Sudo lockdown")
def lock_sudo(settings: Settings):
    """Remove passwordless sudo. Runs last: a provider user that connected with NOPASSWD loses it."""
    if not settings.sudo_require_password:
        return
    if settings.connect_user != "root" and settings.admin(settings.connect_user) is None:
        logger.warning(
            f"{host.name}: {settings.connect_user} loses passwordless sudo in this run; "
            f"connect as an admin ({', '.join(a.name for a in settings.admin_users)}) from now on"
        )
    for path in host.get_fact(SudoersWithoutPassword):
        sudoers_require_password(name=f"Require a password for sudo in {path}", path=path)
