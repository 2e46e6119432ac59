"""The application's Redis client, run inside a container: the PyPI ``redis`` package of the
tests' own environment, copied in, driven by a small script that reports what each attempt got
(a reply, or the error class and message) as JSON."""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .containers import Machine

CLIENT_DIR = "/opt/redis-client"
# Connects as asked, runs each command, and prints {"connect": ..., "replies": [...]}; a refused
# or dropped connection, a failed handshake or a refused AUTH is the "connect" entry.
_SCRIPT = r"""
import json, socket, ssl, sys
sys.path.insert(0, "/opt/redis-client")
import redis

spec = json.loads(sys.argv[1])
def outcome(error):
    return f"error:{type(error).__name__}: {error}"

result = {"connect": "ok", "replies": []}
if spec.get("plaintext"):
    # A client that does not speak TLS: what does a bare PING get?
    try:
        with socket.create_connection((spec["host"], spec["port"]), timeout=spec["timeout"]) as raw:
            raw.sendall(b"PING\r\n")
            answer = raw.recv(100)
        result["connect"] = "ok" if answer else "error:closed: no reply"
        result["replies"] = [answer.decode(errors="replace")]
    except OSError as error:
        result["connect"] = outcome(error)
    print(json.dumps(result))
    sys.exit(0)
options = dict(
    host=spec["host"], port=spec["port"], socket_timeout=spec["timeout"], socket_connect_timeout=spec["timeout"],
    ssl=True, ssl_ca_certs=spec["ca"], ssl_certfile=spec.get("certificate"), ssl_keyfile=spec.get("key"),
    username=spec.get("user"), password=spec.get("password"), retry_on_timeout=False, protocol=2,
)
if spec.get("tls_version"):
    # redis-py caps no maximum: a bare handshake with this version alone, and the same files.
    context = ssl.create_default_context(cafile=spec["ca"])
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, spec["tls_version"])
    context.load_cert_chain(spec["certificate"], spec["key"])
    try:
        with socket.create_connection((spec["host"], spec["port"]), timeout=spec["timeout"]) as raw:
            with context.wrap_socket(raw, server_hostname=spec["host"]) as tls:
                tls.sendall(b"PING\r\n")
                result["replies"] = [tls.recv(100).decode(errors="replace")]
    except OSError as error:
        result["connect"] = outcome(error)
    print(json.dumps(result))
    sys.exit(0)
try:
    client = redis.Redis(**options)
    client.ping()
except Exception as error:
    result["connect"] = outcome(error)
    print(json.dumps(result))
    sys.exit(0)
for command in spec["commands"]:
    try:
        reply = client.execute_command(*command)
        result["replies"].append("ok:" + (reply.decode() if isinstance(reply, bytes) else repr(reply)))
    except Exception as error:
        result["replies"].append(outcome(error))
print(json.dumps(result))
"""


@dataclass
class Attempt:
    connect: str
    replies: list[str] = field(default_factory=list)

    @property
    def connected(self) -> bool:
        return self.connect == "ok"


def install_client(machine: Machine) -> None:
    """Copy the ``redis`` package into ``machine`` (a bare image has no pip, and needs none)."""
    package = Path(redis.__file__).parent
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(package, arcname="redis", filter=lambda info: None if "__pycache__" in info.name else info)
    machine.check(f"mkdir -p {CLIENT_DIR}")
    machine.container.put_archive(CLIENT_DIR, archive.getvalue())
    # redis imports its asyncio half at once, which wants async-timeout below Python 3.11.3
    # (Debian 12 has 3.11.2); the tests never use asyncio, so the standard library's stands in.
    machine.check(f"echo 'from asyncio import timeout' > {CLIENT_DIR}/async_timeout.py")


def attempt(machine: Machine, host: str, port: int, commands: tuple[tuple[str, ...], ...] = (), **spec) -> Attempt:
    """Connect from ``machine`` to Redis at ``host``:``port`` with ``spec`` (ca, certificate, key,
    user, password, tls_version, plaintext, timeout) and run ``commands``."""
    arguments = {"host": host, "port": port, "commands": commands, "timeout": 5, **spec}
    done = machine.exec(f"python3 -c {shlex.quote(_SCRIPT)} {shlex.quote(json.dumps(arguments))}")
    assert done.returncode == 0, done.stderr
    return Attempt(**json.loads(done.stdout))
