"""systemd units kept running and enabled, each checked with one fact read.

pyinfra's ``systemd.service`` reads two facts per unit (its status, then whether it is
enabled), each a round trip; this reads both in one ``systemctl show`` and announces it, so a
no-op re-run reads every unit of a role in the same round trip as the role's other facts.
Restarts and reloads stay with ``systemd.service``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, operation

from . import compat
from .managed_files import render, validated_file

# The SubStates pyinfra's SystemdStatus counts as running, and the UnitFileStates its
# SystemdEnabled counts as enabled.
RUNNING = frozenset({"running", "waiting", "exited", "listening", "mounted"})
ENABLED = frozenset({"enabled", "static"})


@dataclass(frozen=True)
class UnitStatus:
    running: bool
    enabled: bool


class UnitState(FactBase[UnitStatus]):
    """Whether a systemd unit runs and starts at boot (a unit systemd does not know is neither)."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "systemctl"

    def command(self, unit: str) -> str:
        return f"systemctl show --property=SubState --property=UnitFileState -- {shlex.quote(unit)}"

    @staticmethod
    def default() -> UnitStatus:
        return UnitStatus(running=False, enabled=False)

    def process(self, output: list[str]) -> UnitStatus:
        values = dict(line.strip().split("=", 1) for line in output if "=" in line)
        return UnitStatus(values.get("SubState") in RUNNING, values.get("UnitFileState") in ENABLED)


@compat.announces_reads(lambda unit, **_: [(UnitState, {"unit": unit})])
@operation()
def unit_running(unit: str, running: bool | None = True, enabled: bool | None = True) -> Any:
    """
    Start and enable a systemd unit where it is not, or stop and disable it (``None`` leaves
    that side as it is).

    + unit: the unit (``cron``, ``seal.path``; a name without a suffix is a service)
    + running: True starts it unless it runs; False stops it if it runs
    + enabled: True enables it at boot unless it is; False disables it if it is
    """
    status = host.get_fact(UnitState, unit=unit)
    quoted = shlex.quote(unit)
    wanted = []
    if running is not None and running != status.running:
        wanted.append(StringCommand(f"systemctl {'start' if running else 'stop'} {quoted}"))
    if enabled is not None and enabled != status.enabled:
        wanted.append(StringCommand(f"systemctl {'enable' if enabled else 'disable'} {quoted}"))
    if not wanted:
        host.noop(f"{unit} is as wanted (running: {running}, enabled: {enabled})")
    yield from wanted


class InContainer(FactBase[bool]):
    """True inside a container, where units of the kernel's own (time, auditing) are skipped
    (``ConditionVirtualization=!container``): the host does that work."""

    def command(self) -> str:
        return "systemd-detect-virt --container >/dev/null 2>&1 && echo yes || echo no"

    def process(self, output: list[str]) -> bool:
        return output[0].strip() == "yes"


def unit_at_boot(unit: str) -> None:
    """``unit`` enabled at boot, and started too outside containers (in one, its unit skips
    itself and would only fail to start)."""
    in_container = host.get_fact(InContainer)
    unit_running(
        name=f"Enable {unit} at boot" + ("" if in_container else " and run it"),
        unit=unit,
        running=None if in_container else True,
    )


def nightly_job(cron_file: str, script: str, hour: int, minute: int) -> None:
    """``script`` run as root every night at ``hour``:``minute``, by a cron file rendered from
    its template (which says what the job is), and cron running."""
    validated_file(
        name=f"Run it nightly at {hour:02d}:{minute:02d}",
        dest=cron_file,
        content=render(cron_file, hour=hour, minute=minute, script=script),
        validator=None,
    )
    unit_running(name="cron runs", unit="cron")
