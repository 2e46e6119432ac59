"""Intrusion detection (guide 3.12): Monit watches the auth log and tells you of every SSH login,
by email and, optionally, a webhook or Pushover.

Monit's whole configuration is one managed ``monitrc`` (it holds the SMTP password: mode 600,
masked in diffs), checked with ``monit -t`` before it lands; Monit reloads only after a change.
"""

from __future__ import annotations

import json
import re

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.facts.files import File
from pyinfra.operations import files, systemd

from . import backups
from .files import any_changed, render, validated_file
from .packages import ensure_packages
from .settings import LoginAlerts, Settings

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


def login_pattern(settings: Settings) -> str:
    """The auth-log line of a successful login (a POSIX extended regex). With two-factor on, sshd
    reports the last method, keyboard-interactive (the TOTP code, or the password of an admin not
    enrolled yet); a backup server's backup account logs in with its key alone."""
    if not settings.ssh_two_factor:
        return "Accepted publickey for "
    if settings.backup_receiver:
        return "Accepted (keyboard-interactive/pam|publickey) for "
    return "Accepted keyboard-interactive/pam for "


def ignore_regexes(settings: Settings) -> str:
    """One regex per allowed source address, matching sshd's ``from ADDRESS port``, and on a backup
    server one per database server for the backup account's nightly login."""
    lines = [f"from {re.escape(address)} port " for address in settings.login_alerts.ignore_addresses]
    if settings.backup_receiver:
        lines += [f"Accepted publickey for {re.escape(backups.ACCOUNT)} from {re.escape(address)} port "
                  for address in settings.backup_receiver.sources]
    return "".join(f"{line}\n" for line in lines)


def notifier_config(alerts: LoginAlerts) -> str:
    config: dict = {}
    if alerts.webhook_url:
        config["webhook_url"] = alerts.webhook_url.reveal()
    if alerts.pushover:
        token, user = alerts.pushover
        config["pushover"] = {"url": PUSHOVER_API, "token": token.reveal(), "user": user.reveal()}
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def monitrc(settings: Settings) -> str:
    alerts = settings.login_alerts
    smtp = alerts.smtp
    return render(
        MONITRC, alerts=alerts, smtp=smtp,
        smtp_password=smtp.password.reveal() if smtp and smtp.password else "",
        auth_log=AUTH_LOG, ignore_file=IGNORE_FILE, ignores=bool(ignore_regexes(settings)), notifier=NOTIFIER,
        login_pattern=login_pattern(settings), backup_log=backups.LOG_FILE if settings.backups else None,
    )


class RsyslogWritesAuthLog(FactBase):
    """Whether rsyslog sends the auth facility to the auth log (Debian's and Ubuntu's default)."""

    def command(self) -> str:
        return f"grep -rqsE '^[^#]*auth[,.].*{AUTH_LOG}' /etc/rsyslog.conf /etc/rsyslog.d && echo yes || echo no"

    def process(self, output) -> bool:
        return output[0].strip() == "yes"


@operation()
def auth_log_exists():
    """Have rsyslog create the auth log (with its own owner and mode) before Monit watches it:
    a log that does not exist would raise an alert of its own."""
    if host.get_fact(File, path=AUTH_LOG):
        return
    yield StringCommand(
        "logger -p auth.info 'pyinfra-hardening: Monit watches this log for SSH logins'; "
        f"for attempt in 1 2 3 4 5 6 7 8 9 10; do test -e {AUTH_LOG} && exit 0; sleep 0.5; done; "
        f"echo 'hardening: rsyslog did not create {AUTH_LOG}' >&2; exit 1"
    )


@deploy("Login alerts")
def login_alerts(settings: Settings):
    alerts = settings.login_alerts
    if alerts is None:
        return
    # Debian 12 and later log to the journal only; rsyslog writes the auth log Monit reads.
    ensure_packages("Install Monit and rsyslog", ["monit", "rsyslog", *(["python3"] if alerts.pushes else [])])
    systemd.service(name="rsyslog runs", service="rsyslog", running=True, enabled=True)
    if not host.get_fact(RsyslogWritesAuthLog):
        host.log(f"rsyslog has no rule for {AUTH_LOG}: login alerts will not fire until auth.* goes there")
    auth_log_exists(name=f"{AUTH_LOG} exists")
    if settings.backups:
        backups.log_file_exists()

    changed = []
    ignored = ignore_regexes(settings)
    if ignored:
        changed.append(validated_file(name="Logins that raise no alert", dest=IGNORE_FILE,
                                      content=ignored, validator=None))
    if alerts.pushes:
        files.directory(name=f"{NOTIFIER_DIR} exists", path=NOTIFIER_DIR, mode="755")
        validated_file(name="Monit's notifier for webhooks and Pushover", dest=NOTIFIER,
                       content=render(NOTIFIER, config=NOTIFIER_CONFIG), validator=None, mode="755")
        validated_file(name="Where the notifier sends (secret)", dest=NOTIFIER_CONFIG,
                       content=notifier_config(alerts), validator=None, mode="600",
                       secret_pattern=NOTIFIER_SECRET)
    changed.append(validated_file(
        name="Monit: watch SSH logins, alert by mail" if alerts.email else "Monit: watch SSH logins",
        dest=MONITRC, content=monitrc(settings), validator=MONIT_VALIDATOR, mode="600",
        secret_pattern=MONITRC_SECRET,
    ))
    # Running only: the package enables it at boot, and on Debian 12 it is an LSB script whose
    # "generated" unit pyinfra would try to enable on every run.
    systemd.service(name="Monit runs", service="monit", running=True)
    systemd.service(name="Reload Monit", service="monit", reloaded=True, _if=any_changed(changed))
