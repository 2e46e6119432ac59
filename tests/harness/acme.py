"""A real ACME CA for the tests: Debian's Pebble and its DNS stand-in pebble-challtestsrv, in a
container on the fleet's network. Every name resolves to the app server, so Pebble's HTTP-01
checks reach the front's port 80 there, as Let's Encrypt's would reach a public server."""

from __future__ import annotations

import json
import shlex
import ssl
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.containers import Machine
from harness.operator import Operator
from pyinfra_hardening import fleet_ca

DIRECTORY_PORT, MANAGEMENT_PORT = 14000, 15000
# The public name the tests' front serves; the DNS stand-in answers it (and every name).
PUBLIC_NAME = "app.fleet.test"
# Short-lived leaves: certbot's renewal (due with under 30 days left) is due at once, so a
# test can run the timer's service and see nginx serve the renewed certificate.
VALIDITY_DAYS = 20


@dataclass
class AcmeCa:
    machine: Machine
    listener_ca: Path  # on the operator's side: the CA of Pebble's own HTTPS certificate

    @property
    def directory(self) -> str:
        return f"https://{self.machine.private_ip}:{DIRECTORY_PORT}/dir"

    def root(self) -> str:
        """The PEM root Pebble signs with (it makes a new one each time it starts)."""
        context = ssl.create_default_context(cafile=str(self.listener_ca))
        url = f"https://{self.machine.private_ip}:{MANAGEMENT_PORT}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=30) as answer:
            return answer.read().decode()

    def root_file(self, folder: Path) -> Path:
        path = folder / "pebble-root.pem"
        path.write_text(self.root())
        return path


def start_acme_ca(machine: Machine, operator: Operator, answers_for: Machine) -> AcmeCa:
    """Pebble on ``machine``, its HTTPS certificate from the operator's fleet CA, every DNS name
    answered with ``answers_for``'s private address."""
    machine.install("pebble")
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    leaf = operator.sign(request.public_bytes(serialization.Encoding.PEM).decode(), machine, client=False)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    config = {
        "pebble": {
            "listenAddress": f"0.0.0.0:{DIRECTORY_PORT}",
            "managementListenAddress": f"0.0.0.0:{MANAGEMENT_PORT}",
            "certificate": "/etc/pebble/listener.pem",
            "privateKey": "/etc/pebble/listener.key",
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": VALIDITY_DAYS * 86400,
        }
    }
    machine.check("mkdir -p /etc/pebble")
    for path, text in (
        ("/etc/pebble/listener.pem", leaf),
        ("/etc/pebble/listener.key", private),
        ("/etc/pebble/config.json", json.dumps(config)),
    ):
        machine.exec(f"umask 077 && cat > {path}", stdin=text)
    machine.check(
        "systemd-run --unit pebble-dns /usr/bin/pebble-challtestsrv "
        f"-defaultIPv4 {shlex.quote(answers_for.private_ip)} -defaultIPv6 '' "
        "-http01 '' -https01 '' -tlsalpn01 '' -management 127.0.0.1:8055"
    )
    # No nonce rejections and no pauses before checks: failures then mean the deploy's, not Pebble's noise.
    machine.check(
        "systemd-run --unit pebble --setenv=PEBBLE_VA_NOSLEEP=1 --setenv=PEBBLE_WFE_NONCEREJECT=0 "
        "/usr/bin/pebble -config /etc/pebble/config.json -dnsserver 127.0.0.1:8053"
    )
    listener_ca = operator.home / "acme-listener-ca.pem"
    listener_ca.write_text(fleet_ca.trust_bundle(operator.ca_keys))
    ca = AcmeCa(machine, listener_ca)
    _wait_for(ca)
    return ca


def _wait_for(ca: AcmeCa, attempts: int = 60) -> None:
    for _ in range(attempts):
        try:
            ca.root()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"Pebble did not answer: {ca.machine.exec('journalctl -u pebble --no-pager').stdout}")
