"""The application's public TLS (guide 4.2, "encrypt all communications"): an nginx front on
app servers that terminates TLS on 443 with TLSRef 6.0's intermediate or modern profile and
proxies to the application on a local port, while 80 answers only the ACME challenge and a 301
to https. Its certificate comes from an ACME CA (certbot, HTTP-01 through the front's own
webroot, renewed by certbot's timer, nginx reloaded by a hook only after ``nginx -t``) or from
the fleet CA (``internal``: private names and tests, renewed by re-runs).

With ``tls_front = False`` the guide's own model stays: the firewall redirects 80/443 to the
application, and a fleet CA certificate and key are delivered to the application's config
folder for it to serve itself.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from cryptography import x509
from pydantic import Field, StringConstraints
from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import compat, fleet, fleet_tls, services
from .application import ApplicationSettings, config_directory
from .data_types import Email, FilePath, Flag, HostSettings, Port, described, one_of, whole_number
from .fleet_tls import Certificate
from .managed_files import directory, plain_file, render, validated_file
from .packages import ensure_packages
from .settings import Problem, settings_for, validated

if TYPE_CHECKING:
    from pyinfra.api.host import Host

NGINX_CONFIG = "/etc/nginx/nginx.conf"
FRONT_DIR = "/etc/nginx/pyinfra-hardening"
INTERNAL_KEY, INTERNAL_CERTIFICATE = f"{FRONT_DIR}/front.key", f"{FRONT_DIR}/front.pem"
ACME_LINEAGE = "pyinfra-hardening-front"
ACME_LIVE = f"/etc/letsencrypt/live/{ACME_LINEAGE}"
ACME_WEBROOT = "/var/lib/pyinfra-hardening/acme"
DEPLOY_HOOK = "/etc/letsencrypt/renewal-hooks/deploy/pyinfra-hardening-nginx"
ACME_CA_BUNDLE = "/etc/ssl/pyinfra-hardening/acme-ca.pem"
CERTBOT_DROP_IN = "/etc/systemd/system/certbot.service.d/pyinfra-hardening.conf"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
# The certificate and key an application that terminates TLS itself finds in its config folder.
APP_TLS_KEY, APP_TLS_CERTIFICATE = "tls.key", "tls.pem"
# What the firewall opens on an app server with the front on: nothing else is public.
FRONT_PORTS = (80, 443)
TWO_YEARS = 63072000
ONE_YEAR = 31536000  # what the HSTS preload list asks at least


@dataclass(frozen=True)
class Profile:
    """A TLSRef 6.0 server profile: protocols, and the TLS 1.2 suites (TLS 1.3 keeps OpenSSL's)."""

    protocols: str
    ciphers: str | None


PROFILES = {
    # TLS 1.2 and 1.3; for 1.2 only ECDHE with AEAD ciphers (TLSRef 6.0 drops DHE).
    "intermediate": Profile(
        "TLSv1.2 TLSv1.3",
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
    ),
    "modern": Profile("TLSv1.3", None),
}
CLASSIC_GROUPS = "X25519:prime256v1:secp384r1"
POST_QUANTUM_GROUP = "X25519MLKEM768"  # OpenSSL 3.5 and later (Debian 13)

DnsName = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length=253
    ),
    described("must be a lowercase DNS name like 'www.example.com' (no wildcards, no addresses)"),
]
DnsNames = Annotated[list[DnsName], described("must be a list of lowercase DNS names like ['www.example.com']")]
AcmeDirectory = Annotated[
    str,
    StringConstraints(pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", max_length=512),
    described("must be an https:// URL of an ACME directory, like 'https://acme-v02.api.letsencrypt.org/directory'"),
]


class TlsFrontSettings(HostSettings):
    title = "Public TLS"
    group = "app_servers"

    tls_front: Flag = Field(
        True,
        description="an nginx front terminates TLS on 443 and proxies to the application on app_port; 80 only "
        "redirects to https; the application's own ports are not public (guide 4.2); False: the guide's model "
        "(80/443 redirected to the application, which gets a fleet CA certificate in app_config_dir)",
    )
    tls_profile: Annotated[str, one_of(*PROFILES)] = Field(
        "intermediate",
        description="TLSRef 6.0 profile: 'intermediate' (TLS 1.2 and 1.3, ECDHE AEAD suites) or 'modern' "
        "(TLS 1.3 only, for clients from 2020 on); X25519MLKEM768 is offered where OpenSSL has it",
    )
    tls_certificates: Annotated[str, one_of("acme", "internal")] = Field(
        "internal",
        description="where the front's certificate comes from: 'internal' (the fleet CA, a leaf of 90 days renewed "
        "by re-runs: browsers do not trust it; for private names, trials and tests) or 'acme' (Let's Encrypt or "
        "acme_server, through certbot, renewed by its timer; needs tls_names whose DNS points at this host)",
    )
    tls_names: DnsNames = Field(
        [],
        description="the DNS names the front serves (the first is where other Host headers are redirected); "
        "needed for acme; internal: default the inventory name and private_ip",
    )
    acme_email: Email | None = Field(
        None,
        description="the ACME account's contact address (None: an account without one)",
    )
    acme_server: AcmeDirectory = Field(
        LETS_ENCRYPT,
        description="the ACME directory certbot asks: Let's Encrypt by default (its staging directory for trials)",
    )
    acme_ca_bundle: FilePath | None = Field(
        None,
        description="a PEM file on your machine with the CA that signs acme_server's own HTTPS certificate, for a "
        "private ACME server; None: the system's CAs",
    )
    app_port: Port = Field(
        3000, description="the port the application serves HTTP on, on this host; the front proxies to it"
    )
    hsts_max_age: Annotated[int, whole_number(0, TWO_YEARS)] = Field(
        TWO_YEARS,
        description="seconds browsers must use https for this site (Strict-Transport-Security); TLSRef: two years",
    )
    hsts_preload: Flag = Field(
        False,
        description="add includeSubDomains and preload to the HSTS header, for the browsers' preload list (every "
        "subdomain must then serve https)",
    )

    def problems(self, host: Host) -> list[Problem]:
        problems = []
        if self.tls_certificates == "acme":
            problems += self._acme_problems(host)
        else:
            problems += validated(host, fleet_tls.FleetTlsSettings)[1]
        if self.hsts_preload and self.hsts_max_age < ONE_YEAR:
            problems.append(
                Problem(
                    host.name,
                    "hsts_max_age",
                    self.hsts_max_age,
                    "is shorter than the year the preload list asks (hsts_preload is on)",
                    f"set hsts_max_age = {TWO_YEARS}, or hsts_preload = False",
                )
            )
        if self.tls_front and self.app_port in FRONT_PORTS:
            problems.append(
                Problem(
                    host.name,
                    "app_port",
                    self.app_port,
                    "is one of the front's own ports (80, 443)",
                    "let the application listen on another port, such as 3000",
                )
            )
        return problems

    def _acme_problems(self, host: Host) -> list[Problem]:
        if not self.tls_front:
            return [
                Problem(
                    host.name,
                    "tls_certificates",
                    self.tls_certificates,
                    "needs the front (tls_front = False): its port 80 answers the ACME challenge",
                    "set tls_front = True, or tls_certificates = 'internal' for an application that serves TLS itself",
                )
            ]
        problems = []
        if not self.tls_names:
            problems.append(
                Problem(
                    host.name,
                    "tls_names",
                    self.tls_names,
                    "is empty, so an ACME CA has no name to certify",
                    "list the public DNS names that point at this host, like ['www.example.com'], or set "
                    "tls_certificates = 'internal' (fleet CA, not trusted by browsers)",
                )
            )
        single = [name for name in self.tls_names if "." not in name]
        if single:
            problems.append(
                Problem(
                    host.name,
                    "tls_names",
                    self.tls_names,
                    f"has names no public CA certifies ({', '.join(single)}: no dot)",
                    "use the full public names, or tls_certificates = 'internal'",
                )
            )
        if self.acme_ca_bundle is not None:
            problems += _bundle_problems(host, Path(self.acme_ca_bundle).expanduser(), self.acme_ca_bundle)
        return problems

    def names(self, host: Host) -> tuple[list[str], list[str]]:
        """The names and addresses the front's certificate is for."""
        if self.tls_names:
            return list(self.tls_names), []
        private_ip = settings_for(host, fleet.FleetSettings).private_ip
        if private_ip is None:
            try:
                ipaddress.ip_address(host.name)
            except ValueError:
                return [host.name], []
            return [], [host.name]
        return fleet_tls.identity(host, private_ip)


def _bundle_problems(host: Host, path: Path, value: str) -> list[Problem]:
    try:
        x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as error:
        return [
            Problem(
                host.name,
                "acme_ca_bundle",
                value,
                f"is not a readable PEM file of certificates ({error})",
                "give the path of the CA certificate(s) that sign your ACME server's HTTPS certificate",
            )
        ]
    return []


class OpensslVersion(FactBase["tuple[int, ...] | None"]):
    """The host's OpenSSL version, like (3, 5, 1); None without OpenSSL."""

    def requires_command(self, *args: Any, **kwargs: Any) -> str:
        return "openssl"

    def command(self) -> str:
        return "openssl version"

    def process(self, output: list[str]) -> tuple[int, ...] | None:
        found = re.match(r"OpenSSL (\d+)\.(\d+)\.(\d+)", output[0]) if output else None
        return tuple(int(part) for part in found.groups()) if found else None


class AcmeServerOf(FactBase["str | None"]):
    """The ACME directory a certbot lineage renews from (its renewal config); None without one."""

    def command(self, lineage: str) -> str:
        conf = shlex.quote(f"/etc/letsencrypt/renewal/{lineage}.conf")
        return f"if test -f {conf}; then sed -n 's/^server = //p' {conf}; fi"

    def process(self, output: list[str]) -> str | None:
        return output[0].strip() if output else None


@compat.announces_reads(
    lambda lineage, **_: [
        (Certificate, {"path": f"/etc/letsencrypt/live/{lineage}/cert.pem"}),
        (AcmeServerOf, {"lineage": lineage}),
    ]
)
@operation()
def acme_certificate(
    lineage: str,
    names: list[str],
    server: str,
    webroot: str,
    email: str | None = None,
    ca_bundle: str | None = None,
) -> Any:
    """
    A certificate for ``names`` from the ACME CA at ``server``, through certbot's HTTP-01
    challenge answered from ``webroot`` (an ECDSA key made by certbot on the host). Nothing once
    the lineage holds exactly these names from this server: renewal is certbot's timer's.

    + lineage: certbot's name for the certificate (``/etc/letsencrypt/live/LINEAGE``)
    + names: the DNS names, the first one the certificate's subject
    + server: the ACME directory URL
    + webroot: the folder a web server on port 80 serves ``/.well-known/acme-challenge/`` from
    + email: the account's contact address (None: registered without one)
    + ca_bundle: a CA file on the host to verify ``server`` with (a private ACME server)
    """
    current = host.get_fact(Certificate, path=f"/etc/letsencrypt/live/{lineage}/cert.pem")
    held = fleet_tls.alternative_names(current)[0]
    from_server = host.get_fact(AcmeServerOf, lineage=lineage)
    if current and held == set(names) and from_server == server:
        host.noop(f"certificate {lineage} is for {', '.join(names)}, from {server}")
        return
    contact = f"--email {shlex.quote(email)} --no-eff-email" if email else "--register-unsafely-without-email"
    domains = " ".join(f"-d {shlex.quote(name)}" for name in names)
    # A lineage for other names or another CA is issued anew now, not when it comes due.
    again = " --force-renewal" if current else ""
    trust = f"REQUESTS_CA_BUNDLE={shlex.quote(ca_bundle)} " if ca_bundle else ""
    yield StringCommand(
        f"{trust}certbot certonly --non-interactive --quiet --agree-tos {contact} "
        f"--server {shlex.quote(server)} --webroot -w {shlex.quote(webroot)} --cert-name {shlex.quote(lineage)} "
        f"--key-type ecdsa --elliptic-curve secp256r1{again} {domains}"
    )


def front_config(settings: TlsFrontSettings, served: list[str], tls: tuple[str, str] | None) -> str:
    """nginx.conf for the front, for the ``served`` names and addresses (the first is where other
    Host headers are redirected): port 80 always; 443 with ``tls`` (certificate chain, key)."""
    profile = PROFILES[settings.tls_profile]
    version = host.get_fact(OpensslVersion)
    groups = f"{POST_QUANTUM_GROUP}:{CLASSIC_GROUPS}" if version and version >= (3, 5) else CLASSIC_GROUPS
    hsts = f"max-age={settings.hsts_max_age}" + ("; includeSubDomains; preload" if settings.hsts_preload else "")
    in_urls = [f"[{name}]" if ":" in name else name for name in served]
    return render(
        NGINX_CONFIG,
        served=in_urls,
        canonical=in_urls[0],
        profile=settings.tls_profile,
        webroot=ACME_WEBROOT,
        tls=tls,
        protocols=profile.protocols,
        ciphers=profile.ciphers,
        groups=groups,
        hsts=hsts,
        app_port=settings.app_port,
    )


def nginx_config(name: str, settings: TlsFrontSettings, served: list[str], tls: tuple[str, str] | None) -> Any:
    return validated_file(
        name=name,
        dest=NGINX_CONFIG,
        # Rendered when the operation runs: on a fresh host OpenSSL's version is known only then.
        content=lambda: front_config(settings, served, tls),
        validator="nginx -t -q -c {}",
    )


def reload_nginx(name: str, *changes: OperationMeta, restart: bool = False) -> None:
    """nginx runs, and loads what changed: reloaded, or (``restart``) restarted."""
    services.unit_running(name="nginx runs", unit="nginx")
    systemd.service(name=name, service="nginx", reloaded=not restart, restarted=restart, _if=any_changed(*changes))


def fleet_leaf(
    settings: TlsFrontSettings, name: str, key: str, certificate: str, user: str, mode: str
) -> OperationMeta:
    """A fleet CA leaf for the front's names and addresses, its key ``user``'s (the front's with
    ``tls_certificates = 'internal'``, or the application's with the front off)."""
    names, addresses = settings.names(host)
    return fleet_tls.leaf_certificate(
        name=name,
        key=key,
        certificate=certificate,
        user=user,
        group=user,
        names=names,
        addresses=addresses,
        client=False,
        ca_keys=settings_for(host, fleet_tls.FleetTlsSettings).fleet_ca_keys,
        certificate_mode=mode,
    )


def front_packages(settings: TlsFrontSettings) -> None:
    """nginx, OpenSSL's command (the host makes its key; its version says which groups nginx
    offers) and certbot for ``acme``. The app server role installs them before its firewall
    replaces the nat table, where a container's DNS lives."""
    if settings.tls_front:
        extra = ["certbot"] if settings.tls_certificates == "acme" else []
        ensure_packages("Install nginx and OpenSSL", ["nginx", "openssl", *extra])


@deploy("Public TLS front")
def public_tls() -> None:
    """
    The nginx front (``tls_front``): TLS on 443 with the ``tls_profile``, HSTS, no server
    tokens, no session tickets and no OCSP stapling (Let's Encrypt has ended OCSP), proxying
    to ``127.0.0.1:app_port``; 80 serves the ACME challenge and a 301 to https. Every
    candidate nginx.conf passes ``nginx -t`` before it lands; nginx is reloaded, not
    restarted. Nothing with ``tls_front = False`` (``application_certificate`` then).

    Example:

    .. code:: python

        from pyinfra_hardening import tls_front
        tls_front.public_tls()
    """
    settings = settings_for(host, TlsFrontSettings)
    if not settings.tls_front:
        return
    acme = settings.tls_certificates == "acme"
    front_packages(settings)
    names, addresses = settings.names(host)
    served = [*names, *addresses]
    if acme:
        certificate = acme_front(settings, names)
        tls = (f"{ACME_LIVE}/fullchain.pem", f"{ACME_LIVE}/privkey.pem")
    else:
        directory(name="A directory for the front's key", path=FRONT_DIR, mode="755")
        certificate = fleet_leaf(
            settings, "The front's certificate from the fleet CA", INTERNAL_KEY, INTERNAL_CERTIFICATE, "root", "444"
        )
        tls = (INTERNAL_CERTIFICATE, INTERNAL_KEY)
    config = nginx_config("The front's nginx.conf (checked by nginx -t)", settings, served, tls)
    reload_nginx("nginx loads the new config or certificate", config, certificate)
    if acme:
        services.unit_running(name="certbot's renewal timer runs", unit="certbot.timer")


def acme_front(settings: TlsFrontSettings, names: list[str]) -> OperationMeta:
    """certbot's side: the webroot, the reload hook, a private ACME server's CA, and the
    certificate; on a host without one yet, nginx first serves port 80 alone for the challenge."""
    bundle = ACME_CA_BUNDLE if settings.acme_ca_bundle is not None else None
    folders = [ACME_WEBROOT, posixpath.dirname(DEPLOY_HOOK)]
    if bundle:
        folders += [posixpath.dirname(bundle), posixpath.dirname(CERTBOT_DROP_IN)]
    for folder in folders:
        directory(name=f"{folder} exists", path=folder, mode="755")
    validated_file(
        name="certbot reloads nginx after a renewal, only if nginx -t passes",
        dest=DEPLOY_HOOK,
        content=render(DEPLOY_HOOK),
        validator="sh -n {}",
        mode="755",
    )
    if settings.acme_ca_bundle is not None:
        validated_file(
            name="The CA certbot verifies the ACME server with",
            dest=ACME_CA_BUNDLE,
            content=Path(settings.acme_ca_bundle).expanduser().read_text(),
            validator="openssl x509 -noout -in {}",
        )
        drop_in = validated_file(
            name="certbot's timer verifies the ACME server with that CA",
            dest=CERTBOT_DROP_IN,
            content=render(CERTBOT_DROP_IN, bundle=ACME_CA_BUNDLE),
            validator=None,
        )
    else:
        drop_in = plain_file(name="certbot's timer uses the system's CAs", path=CERTBOT_DROP_IN, present=False)
    systemd.daemon_reload(name="systemd reads certbot's settings", _if=any_changed(drop_in))
    if host.get_fact(Certificate, path=f"{ACME_LIVE}/fullchain.pem") is None:
        bootstrap = nginx_config(
            "nginx serves port 80 for the ACME challenge (no certificate yet)", settings, names, None
        )
        # A restart, not a reload: it returns only once the challenge's webroot is served.
        reload_nginx("nginx answers the ACME challenge", bootstrap, restart=True)
    return acme_certificate(
        name=f"A certificate for {', '.join(names)} from the ACME CA",
        lineage=ACME_LINEAGE,
        names=names,
        server=settings.acme_server,
        webroot=ACME_WEBROOT,
        email=settings.acme_email,
        ca_bundle=bundle,
    )


@deploy("Application TLS certificate")
def application_certificate() -> OperationMeta | None:
    """
    With ``tls_front = False`` (the application serves TLS itself): a fleet CA certificate for
    the front's names, its key made on the host, both in ``app_config_dir`` as
    ``tls.pem``/``tls.key``, ``app_user``'s alone (400); renewed by re-runs. Returns the
    certificate's operation (the application restarts when it changed); None with the front on.

    Example:

    .. code:: python

        from pyinfra_hardening import tls_front
        tls_front.application_certificate()
    """
    settings = settings_for(host, TlsFrontSettings)
    if settings.tls_front:
        return None
    application = settings_for(host, ApplicationSettings)
    config_directory(application)
    return fleet_leaf(
        settings,
        "The application's TLS certificate from the fleet CA",
        posixpath.join(application.app_config_dir, APP_TLS_KEY),
        posixpath.join(application.app_config_dir, APP_TLS_CERTIFICATE),
        application.app_user,
        "400",
    )
