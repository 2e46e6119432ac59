"""Remote logging: every host sends its syslog to the backup server over mutual TLS with the
fleet CA, so an intruder who takes a host cannot erase what it logged before. The backup server
keeps each sender's log apart, named by the address the connection came from (a sender cannot
write under another's name), and its firewall admits the fleet's private addresses alone.

rsyslog's own ``ossl`` driver carries it (TLS 1.3 only; a sender without a leaf of the fleet
CA is refused in the handshake). A sender queues on disk while the backup server is away.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from pydantic import Field
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import fleet, fleet_tls, services
from .data_types import Flag, HostSettings, Port
from .managed_files import directory, render, validated_file
from .packages import ensure_packages
from .settings import Problem, settings_for, validated

if TYPE_CHECKING:
    from pyinfra.api.host import Host
    from pyinfra.api.inventory import Inventory

SENDER_CONFIG = "/etc/rsyslog.d/60-pyinfra-hardening-send.conf"
RECEIVER_CONFIG = "/etc/rsyslog.d/60-pyinfra-hardening-receive.conf"
LOGROTATE_CONFIG = "/etc/logrotate.d/pyinfra-hardening-remote"
REMOTE_LOG_DIR = "/var/log/remote"
QUEUE_DIR = "/var/spool/rsyslog"  # Debian's $WorkDirectory: a sender's queue waits there
TLS_DIR = posixpath.dirname(fleet_tls.TRUST_BUNDLE)  # beside the trust bundle
SENDER_KEY, SENDER_CERTIFICATE = f"{TLS_DIR}/syslog-client.key", f"{TLS_DIR}/syslog-client.pem"
RECEIVER_KEY, RECEIVER_CERTIFICATE = f"{TLS_DIR}/syslog-server.key", f"{TLS_DIR}/syslog-server.pem"
# rsyslog checks a whole config with -N1; a drop-in alone is a whole config to it.
RSYSLOG_VALIDATOR = "rsyslogd -N1 -f {}"


class RemoteLoggingSettings(HostSettings):
    title = "Remote logging"

    remote_logging: Flag = Field(
        True,
        description="every host sends its syslog to the inventory's backup server (the first with a "
        "private_ip) over TLS with the fleet CA, both ends proving who they are; the backup server keeps "
        f"each host's log in {REMOTE_LOG_DIR}. Off, or without a backup server: logs stay on each host",
    )
    remote_logging_port: Port = Field(
        6514, description="the backup server's port for syslog over TLS (RFC 5425's), open to the fleet's hosts only"
    )

    def problems(self, host: Host) -> list[Problem]:
        taking = taking_server(host.inventory)
        if not self.remote_logging or taking is None:
            return []
        server = taking[0]
        # Both ends need a leaf from the fleet CA, and the server's firewall admits senders by
        # their private address.
        problems = validated(host, fleet_tls.FleetTlsSettings)[1]
        if host.data.get("private_ip") is None:
            problems.append(
                Problem(
                    host.name,
                    "private_ip",
                    None,
                    f"is not set, but remote logging (to {server.name}) needs it: this host's certificate "
                    "names it, and the log server's firewall lets senders in by it",
                    "set this host's private_ip in the inventory, or remote_logging = False",
                )
            )
        return problems


def log_server(inventory: Inventory) -> Host | None:
    """The host every other host sends its logs to: the first backup server with a private address."""
    return fleet.first_with_private_ip(inventory, fleet.BACKUP_SERVERS)


def _settings_of(peer: Host) -> RemoteLoggingSettings | None:
    """A peer's settings (it may be outside this run's hosts); None when its values are bad,
    which its own run reports."""
    return validated(peer, RemoteLoggingSettings, in_use=False)[0]


def _on(peer: Host) -> bool:
    settings = _settings_of(peer)
    return settings is not None and settings.remote_logging


def taking_server(inventory: Inventory) -> tuple[Host, RemoteLoggingSettings] | None:
    """The log server and its settings when it takes the fleet's logs (it has remote logging on);
    else None."""
    server = log_server(inventory)
    settings = _settings_of(server) if server is not None else None
    if server is None or settings is None or not settings.remote_logging:
        return None
    return server, settings


def senders(inventory: Inventory) -> tuple[str, ...]:
    """The private addresses of the hosts that send their logs to the log server: those of the
    role groups (but the server itself) with remote logging on."""
    taking = taking_server(inventory)
    if taking is None:
        return ()
    server = taking[0]
    hosts = dict.fromkeys(peer for group in fleet.ROLE_GROUPS for peer in inventory.get_group(group, []))
    addresses = (peer.data.get("private_ip") for peer in hosts if peer is not server and _on(peer))
    return tuple(dict.fromkeys(address for address in addresses if address))


def receiving_port(host: Host) -> int:
    """The port ``host`` takes the fleet's logs on, or 0 when it is not the log server."""
    taking = taking_server(host.inventory)
    if taking is None or taking[0].name != host.name:
        return 0
    return taking[1].remote_logging_port


@deploy("Remote logging")
def remote_logging() -> None:
    """
    Send this host's syslog to the log server (``log_server``) over TLS, or on the log server,
    take the fleet's: rsyslog with its OpenSSL driver, a leaf of the fleet CA on each end.

    Example:

    .. code:: python

        from pyinfra_hardening import remote_logging
        remote_logging.remote_logging()
    """
    if not settings_for(host, RemoteLoggingSettings).remote_logging:
        host.noop("remote_logging is off: logs stay on this host")
        return
    taking = taking_server(host.inventory)
    if taking is None:
        host.noop(
            "the inventory has no backup server with a private_ip: logs stay on this host"
            if log_server(host.inventory) is None
            else "the log server takes no logs (remote_logging is off there): logs stay on this host"
        )
        return
    server, server_settings = taking
    receives = server.name == host.name  # ``host`` is pyinfra's context proxy, not the Host itself
    private_ip = host.data.get("private_ip")
    assert private_ip is not None  # the settings' problems require it
    ensure_packages(
        "Install rsyslog and its TLS driver" + (", and logrotate for the fleet's logs" if receives else ""),
        ["rsyslog", "rsyslog-openssl", *(["logrotate"] if receives else [])],
    )
    key, certificate = (RECEIVER_KEY, RECEIVER_CERTIFICATE) if receives else (SENDER_KEY, SENDER_CERTIFICATE)
    tls = fleet_tls.host_certificate(key, certificate, "root", private_ip, client=not receives)
    common = {"key": key, "certificate": certificate, "ca": fleet_tls.TRUST_BUNDLE}
    if receives:
        directory(
            name=f"{REMOTE_LOG_DIR}: the fleet's logs, root's and adm's alone",
            path=REMOTE_LOG_DIR,
            user="root",
            group="adm",
            mode="750",
        )
        validated_file(
            name="Rotate the fleet's logs weekly, a year kept",
            dest=LOGROTATE_CONFIG,
            content=render(LOGROTATE_CONFIG, folder=REMOTE_LOG_DIR),
            validator="logrotate --debug {}",
        )
        config = validated_file(
            name=f"rsyslog takes the fleet's logs over TLS on {private_ip}:{server_settings.remote_logging_port}",
            dest=RECEIVER_CONFIG,
            content=render(
                RECEIVER_CONFIG,
                address=private_ip,
                port=server_settings.remote_logging_port,
                folder=REMOTE_LOG_DIR,
                **common,
            ),
            validator=RSYSLOG_VALIDATOR,
        )
    else:
        address = server.data.get("private_ip")
        config = validated_file(
            # The server by its address: a run names only the hosts it logs in to.
            name=f"rsyslog sends this host's logs to the log server, {address}:{server_settings.remote_logging_port}, "
            "over TLS",
            dest=SENDER_CONFIG,
            content=render(
                SENDER_CONFIG,
                address=address,
                port=server_settings.remote_logging_port,
                queue=QUEUE_DIR,
                **common,
            ),
            validator=RSYSLOG_VALIDATOR,
        )
    services.unit_running(name="rsyslog runs", unit="rsyslog")
    # The driver reads the key and certificates when rsyslog starts.
    systemd.service(name="Restart rsyslog", service="rsyslog", restarted=True, _if=any_changed(config, *tls))
