"""A mail server and a webhook endpoint in a container of their own, keeping what they receive.

The mail server speaks STARTTLS with a certificate from a throwaway CA; machines that should
trust it (as they would trust a real mail relay) get the CA with :func:`trust`.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .containers import Machine
from .operator import ALERT_EMAIL, SMTP_PASSWORD, SMTP_USER, Operator, write_secret

SCRIPTS = Path(__file__).resolve().parent / "sinks"
HOME = "/srv/sinks"
SMTP_PORT = 587  # Monit speaks STARTTLS on 25 and 587 only
HTTP_PORT = 8025
WEBHOOK_PATH = "/hooks/ssh-logins"


def _pem(item) -> str:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM).decode()
    return item.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _certificate(subject: str, key, issuer_name, issuer_key, address: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if address:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Sinks:
    machine: Machine
    ca_pem: str

    @property
    def smtp_host(self) -> str:
        return self.machine.private_ip

    @property
    def webhook_url(self) -> str:
        return f"http://{self.machine.private_ip}:{HTTP_PORT}{WEBHOOK_PATH}"

    def _received(self, kind: str) -> list[dict]:
        """Everything received, each with ``received_at`` (a Unix time, from its file name)."""
        listing = self.machine.check(
            f"for f in {HOME}/{kind}/*.json; do "
            f"test -e $f && printf '%s %s\\n' $(basename $f .json) \"$(cat $f)\"; done; true"
        )
        items = []
        for line in listing.splitlines():
            received_at, _, text = line.partition(" ")
            items.append({**json.loads(text), "received_at": float(received_at)})
        return items

    def wait_for(self, kind: str, words: list[str], since: float, timeout: float = 30) -> dict | None:
        """The first mail or post (``kind``) received after ``since`` whose text holds all
        ``words``, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self._received(kind):
                if item["received_at"] < since:
                    continue
                text = item.get("data") or item.get("body") or ""
                if all(word in text for word in words):
                    return item
            if time.monotonic() > deadline:
                return None
            time.sleep(1)


def start_sinks(machine: Machine) -> Sinks:
    """Run the mail server (STARTTLS, AUTH) and the webhook endpoint on ``machine``."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("pyinfra-hardening test CA", ca_key, None, ca_key)
    leaf = _certificate("mail sink", key, ca.subject, ca_key, address=machine.private_ip)
    machine.check(f"mkdir -p {HOME}")
    for name, text in (
        ("cert.pem", _pem(leaf)),
        ("key.pem", _pem(key)),
        ("smtp_sink.py", (SCRIPTS / "smtp_sink.py").read_text()),
        ("http_sink.py", (SCRIPTS / "http_sink.py").read_text()),
    ):
        machine.exec(f"cat > {HOME}/{name}", stdin=text)
    for command in (
        f"smtp_sink.py {SMTP_PORT} {HOME}/mail {HOME}/cert.pem {HOME}/key.pem",
        f"http_sink.py {HTTP_PORT} {HOME}/http",
    ):
        machine.check(f"cd {HOME} && setsid python3 {command} >/dev/null 2>&1 < /dev/null &")
    sinks = Sinks(machine, _pem(ca))
    for port in (SMTP_PORT, HTTP_PORT):
        deadline = time.monotonic() + 10
        while not machine.connects("127.0.0.1", port, timeout=1):
            assert time.monotonic() < deadline, f"sink on port {port} did not start"
            time.sleep(0.3)
    return sinks


def trust(machine: Machine, ca_pem: str) -> None:
    """Make ``machine`` trust certificates from the sinks' CA, as it would a real relay's. On a
    bare host the CA waits in /usr/local/share/ca-certificates for the deploy's ca-certificates,
    whose installation adds it to the bundle."""
    result = machine.exec(
        "mkdir -p /usr/local/share/ca-certificates && cat > /usr/local/share/ca-certificates/sink-ca.crt"
        " && if command -v update-ca-certificates >/dev/null; then update-ca-certificates; fi",
        stdin=ca_pem,
    )
    assert result.returncode == 0, result.stderr


def send_alerts_to(sinks: Sinks, operator: Operator, machines, webhook: bool = True) -> None:
    """Point the login alerts of ``machines`` (and the operator's next inventories) at the sinks:
    the hosts trust the relay's CA, the store holds its password (and the webhook URL)."""
    for machine in machines:
        trust(machine, sinks.ca_pem)
    write_secret(operator.secrets, "smtp-password", SMTP_PASSWORD)
    operator.host_data = {
        "alert_email": ALERT_EMAIL,
        "smtp_host": sinks.smtp_host,
        "smtp_port": SMTP_PORT,
        "smtp_user": SMTP_USER,
    }
    if webhook:
        write_secret(operator.secrets, "alert-webhook-url", sinks.webhook_url)
        operator.host_data["alert_webhook"] = True
