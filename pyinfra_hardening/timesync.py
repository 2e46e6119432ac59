"""A synchronised clock: TOTP codes are only valid within seconds of the right time."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pyinfra import host
from pyinfra.api import deploy

from . import services
from .data_types import HostSettings, one_of
from .packages import ensure_packages
from .settings import settings_for


class TimeSyncSettings(HostSettings):
    title = "Clock"

    time_sync_service: Annotated[str, one_of("systemd-timesyncd", "chrony")] = Field(
        "systemd-timesyncd", description="keeps the clock right; TOTP codes and logs depend on it"
    )


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
    # Package and unit share the name; systemd skips both daemons in containers.
    services.unit_at_boot(service)
