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
    Start and enable a systemd unit where it is not (``None`` leaves that side as it is).

    + unit: the unit (``cron``, ``seal.path``; a name without a suffix is a service)
    + running: start it unless it runs
    + enabled: enable it at boot unless it is
    """
    status = host.get_fact(UnitState, unit=unit)
    quoted = shlex.quote(unit)
    wanted = []
    if running and not status.running:
        wanted.append(StringCommand(f"systemctl start {quoted}"))
    if enabled and not status.enabled:
        wanted.append(StringCommand(f"systemctl enable {quoted}"))
    if not wanted:
        host.noop(f"{unit} is {'running' if running else 'as it was'}{' and enabled' if enabled else ''}")
    yield from wanted
