"""Logging in over real SSH from this machine, as a user would, with paramiko."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import paramiko

from pyinfra_hardening.ssh import open_transport
from pyinfra_hardening.totp import fresh_code, peer_label

from .containers import Machine


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


class Session:
    """An authenticated SSH transport that runs commands on fresh channels."""

    def __init__(self, transport: paramiko.Transport):
        self.transport = transport

    def run(self, command: str, stdin: str | None = None, timeout: float = 60) -> Result:
        channel = self.transport.open_session(timeout=timeout)
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin is not None:
            channel.sendall(stdin.encode())
        channel.shutdown_write()
        stdout, stderr = channel.makefile("rb").read(), channel.makefile_stderr("rb").read()
        return Result(channel.recv_exit_status(), stdout.decode(), stderr.decode())

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(machine: Machine) -> paramiko.Transport:
    return open_transport("127.0.0.1", machine.ssh_port, attempts=120)


def login(
    machine: Machine,
    user: str,
    key: Path | None = None,
    password: str | None = None,
    totp_secret: str | None = None,
    code: str | None = None,
) -> Session:
    """A logged-in session, or paramiko's AuthenticationException when the server refuses.

    Offers the key, then answers keyboard-interactive prompts with a TOTP code (a fresh one from
    ``totp_secret``, or ``code`` as given) when the server asks for one; or logs in with
    ``password`` alone.
    """
    transport = connect(machine)
    try:
        if password is not None:
            transport.auth_password(user, password, fallback=False)
        else:
            transport.auth_publickey(user, paramiko.PKey.from_path(key))
            if not transport.is_authenticated() and (totp_secret or code):
                answer = code or fresh_code(totp_secret, peer_label(user, transport.getpeername()))
                transport.auth_interactive(user, lambda title, instructions, prompts: [answer for _ in prompts])
        if not transport.is_authenticated():
            raise paramiko.AuthenticationException(f"{user} is not fully authenticated")
    except Exception:
        transport.close()
        raise
    return Session(transport)


def key_only(machine: Machine, user: str, key: Path) -> tuple[bool, list[str]]:
    """Offer only the key: (authenticated?, methods the server still asks for)."""
    transport = connect(machine)
    try:
        remaining = transport.auth_publickey(user, paramiko.PKey.from_path(key))
        return transport.is_authenticated(), remaining
    finally:
        transport.close()
