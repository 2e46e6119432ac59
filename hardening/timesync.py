"""A synchronised clock: TOTP codes are only valid within seconds of the right time."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import FactBase, deploy
from pyinfra.operations import systemd

from .packages import ensure_packages
from .settings import Settings


class InContainer(FactBase):
    """True inside a container, where time daemons refuse to start and the host keeps time."""

    def command(self) -> str:
        return "systemd-detect-virt --container >/dev/null 2>&1 && echo yes || echo no"

    def process(self, output) -> bool:
        return output[0].strip() == "yes"


@deploy("Time sync")
def time_sync(settings: Settings):
    service = settings.time_sync_service
    ensure_packages(f"Install {service}", [service])
    systemd.service(
        name=f"Enable {service} at boot" + ("" if host.get_fact(InContainer) else " and run it"),
        service=service,  # package and unit share the name
        enabled=True,
        # systemd skips both daemons in containers (ConditionVirtualization=!container).
        running=None if host.get_fact(InContainer) else True,
    )
