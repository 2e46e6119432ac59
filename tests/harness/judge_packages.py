"""Packages for the judges (Lynis, OpenSCAP) on a hardened test host, which may not resolve
names (its firewall replaces Docker's DNS rules): the host's own apt names the files it lacks,
and this machine downloads them into build/judges once, for every run after."""

from __future__ import annotations

import fcntl
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .containers import REPO, Machine

CACHE = REPO / "build" / "judges"
# Readable by apt's _apt user, which opens local package files.
ON_HOST = "/var/tmp/judge-debs"
ARCHIVES = "/var/cache/apt/archives"


def download(uri: str) -> bytes:
    return urllib.request.urlopen(uri, timeout=120).read()


def cached(name: str, fetch: Callable[[Path], None]) -> Path:
    """A file in build/judges, made once by ``fetch(path)`` (two workers may ask at once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "judges.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = CACHE / name
        if not path.exists():
            fetch(path)
        return path


def fetched(uri_line: str) -> Path:
    """The package file a line of apt's ``--print-uris`` names ('URI' file-name size hash),
    downloaded once into build/judges."""
    uri, name = uri_line.split()[:2]
    return cached(name, lambda path: path.write_bytes(download(uri.strip("'"))))


def copy_to(machine: Machine, path: Path, folder: str = ON_HOST, name: str | None = None) -> str:
    """Copy a file of this machine into ``folder`` on ``machine`` (as ``name``); its path there."""
    machine.check(f"mkdir -p -m 755 {folder}")
    target = f"{folder}/{name or path.name}"
    subprocess.run(["docker", "cp", str(path), f"{machine.container.id}:{target}"], check=True)
    machine.check(f"chmod 644 {target}")
    return target


def install(machine: Machine, *packages: str) -> None:
    """Install ``packages`` (names, or paths of .deb files already on ``machine``) with what
    they need. apt on ``machine`` names the files it lacks (``--print-uris``: URI, file name,
    size, hash); this machine downloads them into apt's own archive folder there, where apt
    checks and takes them rather than download them."""
    wanted = " ".join(packages)
    listing = machine.check(f"apt-get install -qq --print-uris {wanted}")
    for line in listing.splitlines():
        if line.startswith("'") and not line.startswith("'file:"):  # not the local files named
            deb = fetched(line)
            copy_to(machine, deb, ARCHIVES, deb.name)
    machine.check(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {wanted} >/dev/null")
