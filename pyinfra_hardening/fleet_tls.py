"""Certificates from the fleet CA on the hosts (guide 4.2): each host's key is made on the host
and never leaves it; its certificate request is read (a public document), signed on the
operator's machine by ``fleet_ca`` when the operation runs, and the leaf uploaded beside the key.
A re-run changes nothing until the leaf has fewer than 30 days left, another CA signs, or the
key changed; the trust bundle follows the CAs the project trusts.
"""

from __future__ import annotations

import ipaddress
import posixpath
import shlex
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pydantic import Field
from pyinfra import host
from pyinfra.api import FactBase, OperationError, StringCommand, deploy, operation
from pyinfra.api.host import Host
from pyinfra.api.operation import OperationMeta

from . import compat, fleet_ca, secret_store
from .data_types import FilePath, HostSettings
from .managed_files import candidate_path, directory, upload_text, validated_file
from .packages import ensure_packages
from .settings import Problem, settings_for

TRUST_BUNDLE = "/etc/ssl/pyinfra-hardening/fleet-ca.pem"
INIT_FIX = "run `hardening-ca init` where you run pyinfra (or set fleet_ca_keys to where you ran it)"


class FleetTlsSettings(HostSettings):
    title = "Fleet CA"

    fleet_ca_keys: FilePath = Field(
        "keys",
        description="the folder where `hardening-ca` keeps the fleet CA's certificates and "
        "fleet-ca.json, on your machine (its keys are in the secret store)",
    )

    def keys(self) -> Path:
        return Path(self.fleet_ca_keys).expanduser()

    def problems(self, host: Host) -> list[Problem]:
        try:
            fleet_ca.signing_key(self.keys())
        except (fleet_ca.CaError, secret_store.SecretStoreError, OSError, ValueError) as error:
            return [
                Problem(host.name, "fleet_ca_keys", self.fleet_ca_keys, f"has no CA that can sign: {error}", INIT_FIX)
            ]
        return []


class PrivateKeyPresent(FactBase[bool]):
    """Whether a key file exists (its content is never read)."""

    def command(self, path: str) -> str:
        return f"test -f {shlex.quote(path)} && echo present || true"

    @staticmethod
    def default() -> bool:
        return False

    def process(self, output: list[str]) -> bool:
        return output == ["present"]


class CertificateRequest(FactBase["str | None"]):
    """A certificate request for the key at ``key`` (PEM), made on the host; None without a key."""

    def command(self, key: str) -> str:
        quoted = shlex.quote(key)
        return f"if test -f {quoted}; then openssl req -new -key {quoted} -subj /CN=fleet; fi"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output) + "\n" if output else None


class Certificate(FactBase["str | None"]):
    """A certificate file's PEM; None when there is none."""

    def command(self, path: str) -> str:
        quoted = shlex.quote(path)
        return f"if test -f {quoted}; then cat {quoted}; fi"

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output) + "\n" if output else None


def _same_key(certificate: str | None, request: str | None) -> bool:
    if not certificate or not request:
        return False
    try:
        held = x509.load_pem_x509_certificate(certificate.encode()).public_key()
        asked = x509.load_pem_x509_csr(request.encode()).public_key()
    except ValueError:
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return held.public_bytes(serialization.Encoding.DER, spki) == asked.public_bytes(serialization.Encoding.DER, spki)


def alternative_names(certificate: str | None) -> tuple[set[str], set[str]]:
    """The DNS names and IP addresses a PEM certificate is for (none when unreadable)."""
    if not certificate:
        return set(), set()
    try:
        extension = x509.load_pem_x509_certificate(certificate.encode()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except (ValueError, x509.ExtensionNotFound):
        return set(), set()
    names = extension.value
    return set(names.get_values_for_type(x509.DNSName)), {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


@compat.announces_reads(
    lambda key, certificate, **_: [
        (PrivateKeyPresent, {"path": key}),
        (CertificateRequest, {"key": key}),
        (Certificate, {"path": certificate}),
    ]
)
@operation()
def leaf_certificate(
    key: str,
    certificate: str,
    user: str,
    group: str,
    names: list[str],
    addresses: list[str],
    client: bool,
    ca_keys: str,
    certificate_mode: str = "444",
) -> Any:
    """
    A key made on the host (ECDSA P-256, ``user:group`` 400) and a leaf for it from the fleet CA,
    with the host's OpenSSL (``trust_bundle`` installs it).

    + key, certificate: where they live on the host
    + user, group: who may read the key (the service that uses it)
    + names, addresses: the leaf's DNS names and IP addresses
    + client: a client certificate (for an app server) rather than a server's
    + ca_keys: the folder ``hardening-ca`` keeps the CA's certificates in (``fleet_ca_keys``)
    + certificate_mode: the leaf's permissions (it is public; 400 where only ``user`` should see
      which files it uses)
    """
    made = False
    if not host.get_fact(PrivateKeyPresent, path=key):
        staged = shlex.quote(candidate_path(key))
        yield StringCommand(
            f"mkdir -p {shlex.quote(posixpath.dirname(key))} && rm -f {staged} && (umask 077 && "
            f"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {staged}) && "
            f"chown {user}:{group} {staged} && chmod 400 {staged} && mv -f {staged} {shlex.quote(key)}"
        )
        made = True
    current = host.get_fact(Certificate, path=certificate)
    request = host.get_fact(CertificateRequest, key=key)
    # Compared as the signer writes them (addresses in their compressed form).
    wanted = (set(names), {str(ipaddress.ip_address(address)) for address in addresses})
    if (
        not made
        and _same_key(current, request)
        and alternative_names(current) == wanted
        and not fleet_ca.needs_renewal(current, Path(ca_keys))
    ):
        host.noop(f"{certificate} is the fleet CA's, for this key and these names, with 30 days or more left")
        return
    if request is None:
        raise OperationError(f"no certificate request could be made from {key}: is it an EC key root can read?")
    leaf = fleet_ca.sign(request, names, addresses, client, Path(ca_keys))
    staged = candidate_path(certificate)
    yield upload_text(staged, leaf)
    yield StringCommand(
        f"chown {user}:{group} {shlex.quote(staged)} && chmod {certificate_mode} {shlex.quote(staged)} && "
        f"mv -f {shlex.quote(staged)} {shlex.quote(certificate)}"
    )


def install_trust_bundle() -> OperationMeta:
    """The trust bundle's operations (``trust_bundle`` without the deploy around it), for roles
    that act on a change of it. OpenSSL comes first: it checks the bundle, and makes the key and
    certificate request of a ``leaf_certificate`` (a fresh VM may lack it)."""
    ensure_packages("Install OpenSSL (it checks the trust bundle, makes keys and certificate requests)", ["openssl"])
    directory(name="A directory for the fleet CA", path=posixpath.dirname(TRUST_BUNDLE), mode="755")
    return validated_file(
        name="The fleet CA certificates this project trusts",
        dest=TRUST_BUNDLE,
        content=fleet_ca.trust_bundle(settings_for(host, FleetTlsSettings).keys()),
        validator="openssl x509 -noout -in {}",
    )


def identity(host: Host, private_ip: str) -> tuple[list[str], list[str]]:
    """The names and addresses a host's leaf is for: its inventory name (a DNS name, or an
    address when the inventory names it by one) and its private address."""
    try:
        ipaddress.ip_address(host.name)
    except ValueError:
        return [host.name], [private_ip]
    return [], list(dict.fromkeys([private_ip, host.name]))


def host_certificate(
    key: str,
    certificate: str,
    user: str,
    private_ip: str,
    client: bool = False,
    certificate_mode: str = "444",
) -> tuple[OperationMeta, OperationMeta]:
    """What a service needs for TLS in the fleet: the trust bundle, and a key of ``user``'s with
    the fleet CA's leaf for it (``leaf_certificate``, for this host's ``identity``). Returns both
    operations, whose change means the service must load them again."""
    names, addresses = identity(host, private_ip)
    bundle = install_trust_bundle()
    leaf = leaf_certificate(
        name=f"{user}'s {'client' if client else 'server'} certificate from the fleet CA",
        key=key,
        certificate=certificate,
        user=user,
        group=user,
        names=names,
        addresses=addresses,
        client=client,
        ca_keys=settings_for(host, FleetTlsSettings).fleet_ca_keys,
        certificate_mode=certificate_mode,
    )
    return bundle, leaf


@deploy("Fleet CA trust")
def trust_bundle() -> None:
    """
    The fleet's trusted CAs (``keys/fleet-ca.json``) as one PEM file every client and server
    verifies against: a CA introduced is trusted from this run on, a retired one no longer.

    Example:

    .. code:: python

        from pyinfra_hardening import fleet_tls
        fleet_tls.trust_bundle()
    """
    install_trust_bundle()
