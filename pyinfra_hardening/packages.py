"""Installing Debian/Ubuntu packages without a change on every run."""

from __future__ import annotations

from pyinfra import host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

# Package lists older than this are refreshed before installing anything missing.
APT_CACHE_SECONDS = 3600


def ensure_packages(name: str, packages: list[str]) -> None:
    """Install ``packages``; refresh apt's lists only when one of them is missing."""
    installed = host.get_fact(DebPackages)
    missing = [package for package in packages if package not in installed]
    apt.packages(
        name=name,
        packages=packages,
        update=bool(missing),
        cache_time=APT_CACHE_SECONDS,
        no_recommends=True,
    )
