"""Logging in over real SSH from this machine, as a user would, with paramiko."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import paramiko

from .containers import Machine


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


class Session:
    def __init__(self, client: paramiko.SSHClient):
        self.client = client

    def run(self, command: str, stdin: str | None = None, timeout: float = 60) -> Result:
        channel_in, channel_out, channel_err = self.client.exec_command(command, timeout=timeout)
        if stdin is not None:
            channel_in.write(stdin)
            channel_in.channel.shutdown_write()
        status = channel_out.channel.recv_exit_status()
        return Result(status, channel_out.read().decode(), channel_err.read().decode())

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def login(machine: Machine, user: str, key: Path | None = None, password: str | None = None) -> Session:
    """A logged-in session, or paramiko's AuthenticationException when the server refuses."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1",
        port=machine.ssh_port,
        username=user,
        key_filename=str(key) if key else None,
        password=password,
        allow_agent=False,
        look_for_keys=False,
        timeout=15,
        banner_timeout=15,
        auth_timeout=15,
    )
    return Session(client)
