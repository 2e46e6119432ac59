"""The fleet's private certificate authority, on the operator's machine (guide 4.2: encrypt all
communications, the private network included).

    hardening-ca init                  # the first CA: it signs, every host trusts it
    hardening-ca introduce             # a new CA beside it: trusted everywhere, not signing yet
    hardening-ca promote fleet-ca-2   # the new one signs (hosts trust it already: no outage)
    hardening-ca retire fleet-ca-1    # the old one is trusted no more
    hardening-ca list

Keys are ECDSA P-256: every TLS stack the fleet uses (MariaDB's OpenSSL and its clients,
Redis, nginx, Python's ssl) takes them; Ed25519 certificates are still refused by some
clients (Java's, older MariaDB connectors). A CA's private key lives in the secret store only
(``fleet-ca-N.key``, owner-only, encrypted when ``$HARDENING_FLEET_CA_PASSPHRASE`` is set) and
never reaches a server. Its certificate and the manifest of which CA signs and which are
trusted are public: they live under ``keys/`` in the project, beside the backup public key.

Leaves are signed here from a host's certificate request (the host keeps its key), last
``LEAF_DAYS`` days, and are renewed by a re-run once fewer than ``RENEW_DAYS`` remain or once
another CA signs.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import secret_store

KEYS_DIR = Path("keys")
MANIFEST = "fleet-ca.json"
PASSPHRASE_ENV = "HARDENING_FLEET_CA_PASSPHRASE"
CA_DAYS = 3650
LEAF_DAYS = 90
RENEW_DAYS = 30
# Issued a little in the past: a host whose clock is a minute behind still takes a new leaf.
BACKDATE = datetime.timedelta(minutes=5)


class CaError(Exception):
    """A CA operation that cannot be done, and what would fix it."""


@dataclass(frozen=True)
class Authority:
    """One CA: its name (``fleet-ca-N``), certificate, and whether it signs."""

    name: str
    certificate: x509.Certificate
    signing: bool


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _manifest(keys: Path) -> dict:
    path = keys / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"signing": None, "trusted": []}


def _write_manifest(keys: Path, manifest: dict) -> None:
    keys.mkdir(parents=True, exist_ok=True)
    (keys / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def authorities(keys: Path = KEYS_DIR) -> list[Authority]:
    """The CAs every host trusts, the signing one among them (empty before ``init``)."""
    manifest = _manifest(keys)
    return [
        Authority(
            name,
            x509.load_pem_x509_certificate((keys / f"{name}.crt").read_bytes()),
            name == manifest["signing"],
        )
        for name in manifest["trusted"]
    ]


def trust_bundle(keys: Path = KEYS_DIR) -> str:
    """The PEM certificates of every trusted CA, for a host's CA file."""
    return "".join(
        authority.certificate.public_bytes(serialization.Encoding.PEM).decode() for authority in authorities(keys)
    )


def _passphrase() -> serialization.KeySerializationEncryption:
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase:
        return serialization.BestAvailableEncryption(passphrase.encode())
    return serialization.NoEncryption()


def _create(keys: Path) -> str:
    """A new CA beside any others: its key into the store, its certificate under ``keys``."""
    manifest = _manifest(keys)
    known = {*manifest["trusted"], *manifest.get("retired", [])}
    number = 1 + max((int(name.rsplit("-", 1)[1]) for name in known), default=0)
    name = f"fleet-ca-{number}"
    if secret_store.lookup(f"{name}.key") is not None:
        raise CaError(f"{secret_store.where(f'{name}.key')} exists already; it is not overwritten")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pyinfra-hardening {name}")])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, _passphrase())
    secret_store.store(f"{name}.key", pem.decode())
    keys.mkdir(parents=True, exist_ok=True)
    (keys / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    manifest["trusted"].append(name)
    _write_manifest(keys, manifest)
    return name


def init(keys: Path = KEYS_DIR) -> str:
    """The fleet's first CA, signing at once."""
    if _manifest(keys)["trusted"]:
        raise CaError(f"{keys / MANIFEST} already names a CA; to replace it, use introduce, promote, retire")
    name = _create(keys)
    manifest = _manifest(keys)
    manifest["signing"] = name
    _write_manifest(keys, manifest)
    return name


def introduce(keys: Path = KEYS_DIR) -> str:
    """A new CA that every host will trust from the next run on, before it signs anything."""
    if not _manifest(keys)["trusted"]:
        raise CaError("no CA yet: start with hardening-ca init")
    return _create(keys)


def promote(name: str, keys: Path = KEYS_DIR) -> None:
    """Make a trusted CA the signing one: the next run re-issues every leaf under it."""
    manifest = _manifest(keys)
    if name not in manifest["trusted"]:
        raise CaError(f"{name} is not a trusted CA ({', '.join(manifest['trusted']) or 'none'})")
    manifest["signing"] = name
    _write_manifest(keys, manifest)


def retire(name: str, keys: Path = KEYS_DIR) -> None:
    """Trust a CA no more (not the signing one); its key stays in the store until you delete it."""
    manifest = _manifest(keys)
    if name not in manifest["trusted"]:
        raise CaError(f"{name} is not a trusted CA ({', '.join(manifest['trusted']) or 'none'})")
    if name == manifest["signing"]:
        raise CaError(f"{name} signs the fleet's certificates: promote another CA first")
    manifest["trusted"].remove(name)
    manifest.setdefault("retired", []).append(name)
    _write_manifest(keys, manifest)


def signing_key(keys: Path = KEYS_DIR) -> tuple[Authority, ec.EllipticCurvePrivateKey]:
    """The CA that signs and its private key, or why there is none."""
    signer = next((authority for authority in authorities(keys) if authority.signing), None)
    if signer is None:
        raise CaError(f"{keys / MANIFEST} names no CA that signs: run hardening-ca init")
    return signer, _private_key(signer.name)


def _private_key(name: str) -> ec.EllipticCurvePrivateKey:
    stored = secret_store.lookup(f"{name}.key")
    if stored is None:
        raise CaError(f"the key of {name} is not in the store: {secret_store.where(f'{name}.key')}")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(stored.reveal().encode(), passphrase.encode() if passphrase else None)
    except (TypeError, ValueError) as error:
        raise CaError(f"the key of {name} does not load ({error}); is ${PASSPHRASE_ENV} right?") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"the key of {name} is not an ECDSA key")
    return key


def sign(
    request_pem: str,
    names: list[str],
    addresses: list[str],
    client: bool,
    keys: Path = KEYS_DIR,
    days: int = LEAF_DAYS,
) -> str:
    """A leaf for a host's certificate request (PEM), signed by the signing CA: ``names`` and
    ``addresses`` as its subject alternative names, for a server or (``client``) a client,
    valid ``days`` (fewer only to try out renewal)."""
    signer, key = signing_key(keys)
    request = x509.load_pem_x509_csr(request_pem.encode())
    if not request.is_signature_valid:
        raise CaError("the certificate request's signature does not verify")
    if not isinstance(request.public_key(), ec.EllipticCurvePublicKey):
        raise CaError("the certificate request is not for an ECDSA key")
    now = _now()
    alternative: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternative += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or addresses)[0])]))
        .issuer_name(signer.certificate.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def needs_renewal(leaf_pem: str | None, keys: Path = KEYS_DIR, now: datetime.datetime | None = None) -> bool:
    """Whether a host's leaf must be issued anew: missing, unreadable, signed by a CA that no
    longer signs, or with fewer than ``RENEW_DAYS`` days left."""
    if not leaf_pem:
        return True
    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem.encode())
    except ValueError:
        return True
    signer = next((authority for authority in authorities(keys) if authority.signing), None)
    if signer is None or leaf.issuer != signer.certificate.subject:
        return True
    try:
        leaf.verify_directly_issued_by(signer.certificate)
    except (InvalidSignature, ValueError, TypeError):
        return True
    return leaf.not_valid_after_utc - (now or _now()) < datetime.timedelta(days=RENEW_DAYS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hardening-ca", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=Path, default=KEYS_DIR, help="the project's public keys directory")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create the fleet's first CA")
    commands.add_parser("introduce", help="create a new CA, trusted but not signing yet")
    for command, what in (("promote", "make a trusted CA the signing one"), ("retire", "trust a CA no more")):
        commands.add_parser(command, help=what).add_argument("name")
    commands.add_parser("list", help="the trusted CAs, which signs, and their expiry")
    arguments = parser.parse_args(argv)
    keys: Path = arguments.keys
    try:
        if arguments.command == "init":
            print(f"{init(keys)} signs the fleet's certificates; commit {keys / MANIFEST} and its .crt")
        elif arguments.command == "introduce":
            name = introduce(keys)
            print(f"{name} is trusted from the next run on; once every host has had that run: promote {name}")
        elif arguments.command == "promote":
            promote(arguments.name, keys)
            print(f"{arguments.name} signs: the next run re-issues every leaf")
        elif arguments.command == "retire":
            retire(arguments.name, keys)
            print(f"{arguments.name} is trusted no more from the next run on")
        for authority in authorities(keys):
            expiry = authority.certificate.not_valid_after_utc.date().isoformat()
            print(f"{authority.name}\t{'signing' if authority.signing else 'trusted'}\tuntil {expiry}")
    except (CaError, secret_store.SecretStoreError) as error:
        print(f"hardening-ca: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
