"""Throwaway systemd containers that stand in for fresh VMs: real sshd, PAM, sudo, systemd."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.containers import Container

REPO = Path(__file__).resolve().parents[2]
LABEL = "pyinfra-hardening.test"
RELEASES = ("debian12", "debian13")


def image_for(release: str) -> str:
    return f"hardening-systemd:{release}"


def build_images(*releases: str) -> None:
    """Build what is missing or out of date; a no-op in about a second otherwise."""
    subprocess.run([str(REPO / "tools" / "images.sh"), *releases], check=True)


def remove_leftovers(client: docker.DockerClient) -> None:
    """Containers and networks a killed earlier run could not remove."""
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": LABEL}):
        network.remove()


@dataclass
class Machine:
    """One running container and how to reach its sshd from this machine."""

    name: str
    container: Container
    ssh_port: int
    private_ip: str

    def exec(self, command: str, user: str = "root", stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run ``command`` under sh inside the container, as ``user``, optionally fed ``stdin``."""
        return subprocess.run(
            ["docker", "exec", "-i", "-u", user, self.container.id, "sh", "-c", command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def check(self, command: str, user: str = "root") -> str:
        result = self.exec(command, user=user)
        if result.returncode != 0:
            raise AssertionError(f"{command!r} on {self.name} failed: {result.stdout}{result.stderr}")
        return result.stdout


class Fleet:
    """Starts machines on one private Docker network and always removes them again."""

    def __init__(self, client: docker.DockerClient, release: str):
        self.client = client
        self.release = release
        self.machines: list[Machine] = []
        self.network = client.networks.create(
            f"hardening-{uuid.uuid4().hex[:8]}", driver="bridge", labels={LABEL: "1"}
        )

    def start(self, role: str, root_public_key: str) -> Machine:
        name = f"{role}-{self.release}-{uuid.uuid4().hex[:6]}"
        container = self.client.containers.run(
            image_for(self.release),
            name=name,
            hostname=role,
            detach=True,
            labels={LABEL: "1"},
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
        private_ip = container.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
        machine = Machine(name, container, port, private_ip)
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
