"""Certificates the fleet CA did not sign: self-signed ones, and someone else's CA with a
client certificate of its own, for the refusals that must tell them apart."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _built(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
    names: tuple[str, ...] = (),
    ca: bool = False,
    days: int = 30,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    if issuer is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def self_signed(*names: str, days: int = 20) -> str:
    """A self-signed leaf for ``names`` (PEM)."""
    return pem(_built(names[0], ec.generate_private_key(ec.SECP256R1()), names=names, days=days))


def another_ca() -> str:
    """A CA certificate (PEM) the fleet does not trust."""
    return pem(_built("someone else's CA", ec.generate_private_key(ec.SECP256R1()), ca=True))


def client_of_another_ca() -> tuple[str, str]:
    """A client key and certificate (PEM) signed by a CA the fleet does not trust."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _built("someone else's CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _built("app", key, issuer=(ca.subject, ca_key))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, pem(leaf)
