"""Intrusion detection (guide 3.12): Monit watches the auth log and tells you of every SSH login,
by email and, optionally, a webhook or Pushover.

Monit's whole configuration is one managed ``monitrc`` (it holds the SMTP password: mode 600,
masked in diffs), checked with ``monit -t`` before it lands; Monit reloads only after a change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field
from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.facts.files import File
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import compat, secret_store, services
from .data_types import Email, Flag, HostName, HostSettings, IpAddresses, MailLogin, Port, one_of, whole_number
from .managed_files import directory, plain_file, render, validated_file
from .packages import ensure_packages
from .secret_store import Secret
from .settings import Problem, settings_for, stored

if TYPE_CHECKING:
    from pyinfra.api.host import Host

MONITRC = "/etc/monit/monitrc"
MONIT_VALIDATOR = "monit -t -c {}"
AUTH_LOG = "/var/log/auth.log"
IGNORE_FILE = "/etc/monit/ssh-login-ignore.regex"
NOTIFIER_DIR = "/usr/local/lib/pyinfra-hardening"
NOTIFIER = f"{NOTIFIER_DIR}/monit-notify"
NOTIFIER_CONFIG = "/etc/monit/pyinfra-hardening-notify.json"
PUSHOVER_API = "https://api.pushover.net/1/messages.json"
# Secrets inside the managed files, for masking diffs: monitrc's password, the notifier's values.
MONITRC_SECRET = r'password "([^"]*)"'
NOTIFIER_SECRET = r'"(?:webhook_url|token|user)": "([^"]*)"'
# Monit speaks STARTTLS only on these ports, and TLS from the first byte on any other.
MONIT_STARTTLS_PORTS = (25, 587)
SMTP_PASSWORD = "smtp-password"
WEBHOOK_URL = "alert-webhook-url"
PUSHOVER_SECRETS = ("pushover-app-token", "pushover-user-key")


class LoginAlertSettings(HostSettings):
    title = "Login alerts"

    login_alerts: Flag = Field(
        True, description="Monit tells you of every SSH login, by email and/or webhook (guide 3.12)"
    )
    monit_check_interval: Annotated[int, whole_number(1, 300)] = Field(
        5, description="seconds between Monit's looks at the auth log: how soon an alert goes out (guide 3.12)"
    )
    alert_email: Email | None = Field(
        None, description="address that gets an email for every SSH login (needs smtp_host)"
    )
    smtp_host: HostName | None = Field(None, description="mail server Monit sends alerts through")
    smtp_port: Port = Field(587, description="its port: 587 for submission with STARTTLS, 465 for TLS from the start")
    smtp_security: Annotated[str, one_of("starttls", "tls", "none")] = Field(
        "starttls", description="encryption to the mail server; 'none' only without a password"
    )
    smtp_verify_certificate: Flag = Field(
        True, description="verify the mail server's certificate with the system CAs (no password for impostors)"
    )
    smtp_user: MailLogin | None = Field(
        None, description="login at the mail server; its password is the secret smtp-password"
    )
    alert_ignore_addresses: IpAddresses = Field(
        [], description="logins from these source addresses raise no alert (the guide's ignore list)"
    )
    alert_webhook: Flag = Field(
        False, description="also post each login as Slack-style JSON to the URL in the secret alert-webhook-url"
    )
    alert_pushover: Flag = Field(
        False, description="also push each login through Pushover (secrets pushover-app-token, pushover-user-key)"
    )

    def problems(self, host: Host) -> list[Problem]:
        return resolve_alerts(host, self)[1]


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str  # starttls, tls or none
    verify_certificate: bool
    user: str | None
    password: Secret | None


@dataclass(frozen=True)
class LoginAlerts:
    """Who hears of an SSH login, and how (guide 3.12), with the secrets from the store."""

    check_interval: int
    email: str | None
    smtp: SmtpServer | None  # set whenever email is
    ignore_addresses: tuple[str, ...]
    webhook_url: Secret | None
    pushover: tuple[Secret, Secret] | None  # application token, user key

    @property
    def pushes(self) -> bool:
        return bool(self.webhook_url or self.pushover)


@dataclass(frozen=True)
class WatchedLog:
    """A log Monit alerts on when a line says ``FAILED`` (a nightly job's, for one)."""

    name: str
    path: str
    comment: str


def _stored(host: Host, name: str, needed_for: str, problems: list[Problem], key: str, value: Any) -> Secret | None:
    """A secret the alerts need, or a problem saying where to put it. Monit's configuration
    quotes values with double quotes, so a secret may not contain one."""
    unsafe_before = len(problems)
    secret = stored(host, name, key, value, problems)
    if len(problems) > unsafe_before:
        return None
    if secret is None:
        problems.append(
            Problem(
                host.name,
                key,
                value,
                f"needs {needed_for}, which the secret store lacks",
                f"put it in {secret_store.where(name)}",
            )
        )
    elif '"' in secret.reveal() or "\n" in secret.reveal():
        problems.append(
            Problem(
                host.name,
                key,
                value,
                f"needs {needed_for}, but {secret.source} holds a double quote or a line break",
                "store the value alone, unquoted, on one line",
            )
        )
        return None
    return secret


def _smtp(host: Host, settings: LoginAlertSettings, problems: list[Problem]) -> SmtpServer | None:
    if not settings.alert_email:
        return None
    if not settings.smtp_host:
        problems.append(
            Problem(
                host.name,
                "smtp_host",
                None,
                f"is not set, so no mail could reach {settings.alert_email}",
                "set smtp_host (and smtp_user, with its password in the secret store)",
            )
        )
        return None
    user, security, port = settings.smtp_user, settings.smtp_security, settings.smtp_port
    password = _stored(host, SMTP_PASSWORD, "the SMTP password", problems, "smtp_user", user) if user else None
    if security != "none" and (security == "starttls") != (port in MONIT_STARTTLS_PORTS):
        problems.append(
            Problem(
                host.name,
                "smtp_security",
                security,
                f"does not fit smtp_port {port}: Monit speaks STARTTLS on ports 25 and 587 only, and TLS from the "
                "first byte on any other",
                "use 'starttls' with port 587 (or 25), 'tls' with port 465",
            )
        )
    if user and security == "none":
        problems.append(
            Problem(
                host.name,
                "smtp_security",
                "none",
                "would send the SMTP password unencrypted",
                "use 'starttls' (port 587) or 'tls' (port 465)",
            )
        )
    return SmtpServer(settings.smtp_host, port, security, settings.smtp_verify_certificate, user, password)


def resolve_alerts(host: Host, settings: LoginAlertSettings) -> tuple[LoginAlerts | None, list[Problem]]:
    """The alert destinations with their secrets (None with login_alerts off), and what is wrong."""
    if not settings.login_alerts:
        return None, []
    problems: list[Problem] = []
    smtp = _smtp(host, settings, problems)
    webhook = pushover = None
    if settings.alert_webhook:
        webhook = _stored(host, WEBHOOK_URL, "the webhook URL", problems, "alert_webhook", True)
        if webhook and not re.fullmatch(r"https?://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+", webhook.reveal()):
            problems.append(
                Problem(
                    host.name,
                    "alert_webhook",
                    True,
                    f"has a URL in {webhook.source} that is not http(s)://... of URL characters (no quotes)",
                    "store the whole URL the chat service gave you",
                )
            )
    if settings.alert_pushover:
        token, user_key = (_stored(host, name, name, problems, "alert_pushover", True) for name in PUSHOVER_SECRETS)
        pushover = (token, user_key) if token and user_key else None
    if not (settings.alert_email or settings.alert_webhook or settings.alert_pushover):
        problems.append(
            Problem(
                host.name,
                "login_alerts",
                True,
                "is on, but nobody would hear of an SSH login",
                "set alert_email and smtp_host (and/or alert_webhook, alert_pushover), or login_alerts = False",
            )
        )
    alerts = LoginAlerts(
        settings.monit_check_interval,
        settings.alert_email,
        smtp,
        tuple(settings.alert_ignore_addresses),
        webhook,
        pushover,
    )
    return alerts, problems


def login_pattern(two_factor: bool, key_logins: bool) -> str:
    """The auth-log line of a successful login (a POSIX extended regex). With two-factor on, sshd
    reports the last method, keyboard-interactive (the TOTP code, or the password of an admin not
    enrolled yet); ``key_logins`` adds accounts that log in with a key alone."""
    if not two_factor:
        return "Accepted publickey for "
    if key_logins:
        return "Accepted (keyboard-interactive/pam|publickey) for "
    return "Accepted keyboard-interactive/pam for "


def ignore_regexes(alerts: LoginAlerts, ignore_lines: Sequence[str] = ()) -> str:
    """One regex per allowed source address, matching sshd's ``from ADDRESS port``, then
    ``ignore_lines`` (regexes of whole logins that raise no alert)."""
    lines = [f"from {re.escape(address)} port " for address in alerts.ignore_addresses]
    return "".join(f"{line}\n" for line in [*lines, *ignore_lines])


def notifier_config(alerts: LoginAlerts) -> str:
    config: dict = {}
    if alerts.webhook_url:
        config["webhook_url"] = alerts.webhook_url.reveal()
    if alerts.pushover:
        token, user = alerts.pushover
        config["pushover"] = {"url": PUSHOVER_API, "token": token.reveal(), "user": user.reveal()}
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def monitrc(alerts: LoginAlerts, pattern: str, ignores: bool, watched_logs: Sequence[WatchedLog] = ()) -> str:
    smtp = alerts.smtp
    return render(
        MONITRC,
        alerts=alerts,
        smtp=smtp,
        smtp_password=smtp.password.reveal() if smtp and smtp.password else "",
        auth_log=AUTH_LOG,
        ignore_file=IGNORE_FILE,
        ignores=ignores,
        notifier=NOTIFIER,
        login_pattern=pattern,
        watched_logs=watched_logs,
    )


class RsyslogWritesAuthLog(FactBase[bool]):
    """Whether rsyslog sends the auth facility to the auth log (Debian's and Ubuntu's default)."""

    def command(self) -> str:
        return f"grep -rqsE '^[^#]*auth[,.].*{AUTH_LOG}' /etc/rsyslog.conf /etc/rsyslog.d && echo yes || echo no"

    def process(self, output: list[str]) -> bool:
        return output[0].strip() == "yes"


@compat.announces_reads(lambda **_: [(File, {"path": AUTH_LOG})])
@operation()
def auth_log_exists() -> Any:
    """Have rsyslog create the auth log (with its own owner and mode) before Monit watches it:
    a log that does not exist would raise an alert of its own."""
    if host.get_fact(File, path=AUTH_LOG):
        host.noop(f"{AUTH_LOG} exists")
        return
    yield StringCommand(
        "logger -p auth.info 'pyinfra-hardening: Monit watches this log for SSH logins'; "
        f"for attempt in 1 2 3 4 5 6 7 8 9 10; do test -e {AUTH_LOG} && exit 0; sleep 0.5; done; "
        f"echo 'hardening: rsyslog did not create {AUTH_LOG}' >&2; exit 1"
    )


def log_exists(log: WatchedLog) -> None:
    """``log``, with root's owner and adm's group, before Monit watches it: a log that does not
    exist raises an alert of its own."""
    plain_file(name=f"{log.path} exists", path=log.path, user="root", group="adm", mode="640")


def alerts_of(host: Host) -> LoginAlerts | None:
    """``host``'s alert destinations with their secrets; None with login_alerts off."""
    return resolve_alerts(host, settings_for(host, LoginAlertSettings))[0]


def facts_read_first() -> compat.FactReads:
    """What ``login_alerts`` reads while it loads."""
    return [(RsyslogWritesAuthLog, {})]


@deploy("Login alerts")
def login_alerts(
    two_factor: bool = True,
    key_logins: bool = False,
    ignore_lines: Sequence[str] = (),
    watched_logs: Sequence[WatchedLog] = (),
) -> None:
    """
    Monit alerts on every SSH login (and on a FAILED line in ``watched_logs``), by mail,
    webhook or Pushover, as the ``alert_*`` and ``smtp_*`` settings say. Nothing with
    ``login_alerts = False``.

    + two_factor: whether sshd asks a TOTP code after the key (the logged method differs)
    + key_logins: also alert on logins with a key alone (an account that has no second factor)
    + ignore_lines: regexes of auth-log lines that raise no alert
    + watched_logs: logs of jobs whose FAILED lines are alerts too

    Example:

    .. code:: python

        from pyinfra_hardening import login_alerts
        login_alerts.login_alerts()
    """
    alerts = alerts_of(host)
    if alerts is None:
        return
    # Debian 12 and later log to the journal only; rsyslog writes the auth log Monit reads.
    ensure_packages("Install Monit and rsyslog", ["monit", "rsyslog", *(["python3"] if alerts.pushes else [])])
    services.unit_running(name="rsyslog runs", unit="rsyslog")
    if not host.get_fact(RsyslogWritesAuthLog):
        host.log(f"rsyslog has no rule for {AUTH_LOG}: login alerts will not fire until auth.* goes there")
    auth_log_exists(name=f"{AUTH_LOG} exists")
    for log in watched_logs:
        log_exists(log)

    changed = []
    ignored = ignore_regexes(alerts, ignore_lines)
    if ignored:
        changed.append(
            validated_file(name="Logins that raise no alert", dest=IGNORE_FILE, content=ignored, validator=None)
        )
    if alerts.pushes:
        directory(name=f"{NOTIFIER_DIR} exists", path=NOTIFIER_DIR, mode="755")
        validated_file(
            name="Monit's notifier for webhooks and Pushover",
            dest=NOTIFIER,
            content=render(NOTIFIER, config=NOTIFIER_CONFIG),
            validator=None,
            mode="755",
        )
        validated_file(
            name="Where the notifier sends (secret)",
            dest=NOTIFIER_CONFIG,
            content=notifier_config(alerts),
            validator=None,
            mode="600",
            secret_pattern=NOTIFIER_SECRET,
        )
    changed.append(
        validated_file(
            name="Monit: watch SSH logins, alert by mail" if alerts.email else "Monit: watch SSH logins",
            dest=MONITRC,
            content=monitrc(alerts, login_pattern(two_factor, key_logins), bool(ignored), watched_logs),
            validator=MONIT_VALIDATOR,
            mode="600",
            secret_pattern=MONITRC_SECRET,
        )
    )
    # Running only: the package enables it at boot, and on Debian 12 it is an LSB script whose
    # "generated" unit pyinfra would try to enable on every run.
    services.unit_running(name="Monit runs", unit="monit", enabled=None)
    systemd.service(name="Reload Monit", service="monit", reloaded=True, _if=any_changed(*changed))
