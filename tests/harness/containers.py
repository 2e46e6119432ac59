"""Throwaway systemd containers that stand in for fresh VMs: real sshd, PAM, sudo, systemd."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.containers import Container
from docker.types import IPAMConfig, IPAMPool

REPO = Path(__file__).resolve().parents[2]
LABEL = "pyinfra-hardening.test"
RELEASES = ("debian12", "debian13")
# The process that started this run (pytest's main process: its xdist workers inherit it).
RUN_OWNER = "HARDENING_TEST_RUN"
# The owner of machines `make demo --keep` leaves running: test runs leave them alone, the next
# demo removes them.
KEPT = "kept"


def run_owner() -> str:
    """What this run's containers are labelled with: the PID of the process that started it."""
    return os.environ.setdefault(RUN_OWNER, str(os.getpid()))


def image_for(release: str) -> str:
    return f"hardening-systemd:{release}"


def build_images(*releases: str) -> None:
    """Build what is missing or out of date; a no-op in about a second otherwise."""
    subprocess.run([str(REPO / "tools" / "images.sh"), *releases], check=True)


def remove_leftovers(client: docker.DockerClient, kept_too: bool = False) -> None:
    """Containers and networks a killed earlier run could not remove: those whose run's process
    is gone (another run going on at the same time keeps its machines), and with ``kept_too``
    those a demo was asked to keep."""

    def left_over(labels: dict[str, str]) -> bool:
        owner = labels.get(LABEL, "")
        if owner == KEPT:
            return kept_too
        return not (owner.isdigit() and Path(f"/proc/{owner}").exists())

    for container in client.containers.list(all=True, filters={"label": LABEL}):
        if left_over(container.labels):
            container.remove(force=True)
    for network in client.networks.list(filters={"label": LABEL}):
        if left_over(network.attrs.get("Labels") or {}):
            network.remove()


@dataclass
class Machine:
    """One running container and how to reach its sshd from this machine."""

    name: str
    container: Container
    ssh_port: int
    private_ip: str
    private_ipv6: str
    # Where this machine sees the operator's connections (to 127.0.0.1:ssh_port) come from.
    operator_address: str

    def exec(
        self, command: str, user: str = "root", stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """Run ``command`` under sh inside the container, as ``user``, optionally fed ``stdin``."""
        return subprocess.run(
            ["docker", "exec", "-i", "-u", user, self.container.id, "sh", "-c", command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def check(self, command: str, user: str = "root") -> str:
        result = self.exec(command, user=user)
        if result.returncode != 0:
            raise AssertionError(f"{command!r} on {self.name} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def install(self, *packages: str) -> None:
        """Install ``packages`` from the release's archive (apt's lists fetched first: the images
        have none), as the machine's own admin would before the test's scene."""
        wanted = " ".join(packages)
        self.check(f"apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {wanted} >/dev/null")

    def read_bytes(self, path: str) -> bytes:
        """A file's bytes, read as root inside the container."""
        return subprocess.run(
            ["docker", "exec", self.container.id, "cat", path], capture_output=True, check=True, timeout=60
        ).stdout

    def serve(self, port: int, ipv6_only: bool = False) -> None:
        """Answer every TCP connection to ``port`` (IPv4 and IPv6, or IPv6 alone) with
        ``<hostname>:<port>``."""
        self.check(f"setsid python3 -c {shlex.quote(_SERVER)} {port} {int(ipv6_only)} >/dev/null 2>&1 < /dev/null &")

    def serve_http(self, port: int) -> None:
        """A stand-in web application: Python's file server on ``port`` (IPv4 and IPv6), answering
        200 with a listing of an empty folder, once it is up."""
        self.check(
            "mkdir -p /srv/stand-in && setsid python3 -m http.server "
            f"{port} --bind :: --directory /srv/stand-in >/dev/null 2>&1 < /dev/null &"
        )
        for _ in range(40):
            if self.http_get("127.0.0.1", port) is not None:
                return
            time.sleep(0.25)
        raise AssertionError(f"the stand-in web application on {self.name}:{port} did not start")

    def http_get(self, address: str, port: int, path: str = "/", host: str | None = None) -> tuple[int, dict] | None:
        """The status and headers a plain-HTTP GET of ``path`` gets from this machine (redirects
        not followed); None if nothing answers."""
        answer = self.exec(
            f"python3 -c {shlex.quote(_HTTP_CLIENT)} {shlex.quote(address)} {port} {shlex.quote(path)} "
            f"{shlex.quote(host or address)}"
        ).stdout.strip()
        if not answer:
            return None
        status, headers = json.loads(answer)
        return status, {name.lower(): value for name, value in headers}

    def connects(self, address: str, port: int, timeout: float = 3) -> bool:
        """Whether a TCP connection from this machine to ``address``:``port`` is taken (a TLS
        server, unlike ``reach``'s listeners, says nothing first)."""
        client = f"import socket; socket.create_connection(({address!r}, {port}), timeout={timeout}).close()"
        return self.exec(f"python3 -c {shlex.quote(client)}").returncode == 0

    def reach(self, address: str, port: int, timeout: float = 3) -> str | None:
        """What a listener at ``address``:``port`` answers this machine; None if nothing does."""
        answer = self.exec(f"python3 -c {shlex.quote(_CLIENT)} {address} {port} {timeout}").stdout.strip()
        return answer or None


class Fleet:
    """Starts machines on one private Docker network and always removes them again."""

    def __init__(self, client: docker.DockerClient, release: str):
        self.client = client
        self.release = release
        self.machines: list[Machine] = []
        # IPv6 too (a random unique-local /64), so tests can show the firewall covers it.
        subnet = f"fd{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::/64"
        self.network = client.networks.create(
            f"hardening-{uuid.uuid4().hex[:8]}",
            driver="bridge",
            labels={LABEL: run_owner()},
            enable_ipv6=True,
            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]),
        )

    def start(self, role: str, root_public_key: str) -> Machine:
        name = f"{role}-{self.release}-{uuid.uuid4().hex[:6]}"
        container = self.client.containers.run(
            image_for(self.release),
            name=name,
            hostname=role,
            detach=True,
            labels={LABEL: run_owner()},
            # The flags systemd needs as PID 1 here (see shared field notes); --privileged fails.
            cap_add=["SYS_ADMIN", "NET_ADMIN"],
            security_opt=["seccomp=unconfined"],
            cgroupns="host",
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
            tmpfs={"/run": "", "/run/lock": ""},
            ports={"22/tcp": ("127.0.0.1", None)},
            network=self.network.name,
        )
        container.reload()
        port = int(container.ports["22/tcp"][0]["HostPort"])
        network = container.attrs["NetworkSettings"]["Networks"][self.network.name]
        # The published port is forwarded by Docker from the network's gateway address.
        machine = Machine(name, container, port, network["IPAddress"], network["GlobalIPv6Address"], network["Gateway"])
        self.machines.append(machine)
        _wait_until_booted(machine)
        machine.exec(
            "cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
            stdin=root_public_key + "\n",
        )
        return machine

    def remove(self) -> None:
        for machine in self.machines:
            machine.container.remove(force=True)
        self.network.remove()


_SERVER = """
import socket, sys, threading
port = int(sys.argv[1])
server = socket.socket(socket.AF_INET6)
server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(sys.argv[2]))
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("::", port))
server.listen()
answer = f"{socket.gethostname()}:{port}\\n".encode()
while True:
    connection, _ = server.accept()
    connection.sendall(answer)
    connection.close()
"""
_CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as connection:
        print(connection.recv(100).decode(errors="replace").strip())
except OSError:
    pass
"""

_HTTP_CLIENT = """
import http.client, json, sys
try:
    connection = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=3)
    connection.request("GET", sys.argv[3], headers={"Host": sys.argv[4]})
    response = connection.getresponse()
    print(json.dumps([response.status, response.getheaders()]))
except OSError:
    pass
"""


def _wait_until_booted(machine: Machine, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = machine.exec("systemctl is-system-running").stdout.strip()
        if state in ("running", "degraded") and _sshd_answers(machine.ssh_port):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{machine.name} did not boot within {timeout}s (systemd: {state!r})")


def _sshd_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            return connection.recv(4).startswith(b"SSH-")
    except OSError:
        return False
