"""The nightly backup job as cron runs it, and what it leaves on the hosts."""

from __future__ import annotations

import subprocess
import time

from harness.containers import Machine
from pyinfra_hardening import backups
from pyinfra_hardening.backup_cli import PASSPHRASE_SUFFIX


def cron_command(machine: Machine) -> str:
    """The command of the cron line, as the deploy wrote it."""
    line = next(
        line
        for line in machine.check(f"cat {backups.BACKUP_CRON}").splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    )
    return " ".join(line.split()[6:])


def run_backup(machine: Machine) -> subprocess.CompletedProcess:
    """The nightly job, with the bare environment cron gives it."""
    environment = "PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root SHELL=/bin/sh LOGNAME=root"
    return machine.exec(f"env -i {environment} sh -c '{cron_command(machine)}'")


def names_in(machine: Machine, directory: str) -> list[str]:
    return sorted(machine.check(f"ls -1 {directory}").split())


def stamps(names: list[str], source: str) -> list[str]:
    """The backups of ``source`` (a file name's part before ``_``) among ``names``, oldest first."""
    return sorted(
        name.removesuffix(PASSPHRASE_SUFFIX)
        for name in names
        if name.endswith(PASSPHRASE_SUFFIX) and name.startswith(f"{source}_")
    )


def sealed(backup: Machine, names: list[str], timeout: float = 20) -> bool:
    """Whether the files became root's and read-only on the backup server (the path unit)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        owners = backup.exec(" ; ".join(f"stat -c '%U %a' {backups.INCOMING}/{name}" for name in names)).stdout
        if owners.split("\n")[:-1] == ["root 400"] * len(names):
            return True
        time.sleep(0.5)
    return False
