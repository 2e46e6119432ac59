"""A synchronised clock: TOTP codes are only valid within seconds of the right time."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pyinfra import host
from pyinfra.api import FactBase, deploy

from . import services
from .data_types import HostSettings, one_of
from .packages import ensure_packages
from .settings import settings_for


class TimeSyncSettings(HostSettings):
    title = "Clock"

    time_sync_service: Annotated[str, one_of("systemd-timesyncd", "chrony")] = Field(
        "systemd-timesyncd", description="keeps the clock right; TOTP codes and logs depend on it"
    )


class InContainer(FactBase[bool]):
    """True inside a container, where time daemons refuse to start and the host keeps time."""

    def command(self) -> str:
        return "systemd-detect-virt --container >/dev/null 2>&1 && echo yes || echo no"

    def process(self, output: list[str]) -> bool:
        return output[0].strip() == "yes"


@deploy("Time sync")
def time_sync() -> None:
    """
    Install ``time_sync_service`` and enable it at boot (and run it, outside containers).

    Example:

    .. code:: python

        from pyinfra_hardening import timesync
        timesync.time_sync()
    """
    service = settings_for(host, TimeSyncSettings).time_sync_service
    ensure_packages(f"Install {service}", [service])
    services.unit_running(
        name=f"Enable {service} at boot" + ("" if host.get_fact(InContainer) else " and run it"),
        unit=service,  # package and unit share the name
        # systemd skips both daemons in containers (ConditionVirtualization=!container).
        running=None if host.get_fact(InContainer) else True,
    )
