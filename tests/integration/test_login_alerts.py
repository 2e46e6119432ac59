"""Every SSH login is told to the operator (guide 3.12): Monit reads the auth log and sends mail
through a real mail relay (STARTTLS, a login) and posts to a webhook, both in another container."""

from __future__ import annotations

import json
import time

import pytest

from harness.operator import ALERT_EMAIL, OTHER_ADMIN, SMTP_PASSWORD, SMTP_USER
from harness.sinks import WEBHOOK_PATH
from harness.ssh import login

BROKEN_MONITRC_DEPLOY = "tests/deploys/broken_monitrc.py"
LOGIN_LINE = f"Accepted keyboard-interactive/pam for {OTHER_ADMIN} from "


@pytest.fixture(scope="module")
def logins(deployment, operator):
    """carol logs in (key + TOTP) on the app server, then on the backup server, where logins
    from the operator's address are allow-listed. Returns when it started."""
    started = time.time()
    for role in ("app", "backup"):
        with login(
            deployment.machines[role],
            OTHER_ADMIN,
            key=operator.other_admin_key,
            totp_secret=operator.totp_secret(OTHER_ADMIN),
        ) as session:
            assert session.run("true").status == 0
    return started


def test_a_login_is_mailed_within_30_seconds_naming_host_and_user(deployment, logins):
    mail = deployment.sinks.wait_for("mail", [LOGIN_LINE, "From: monit@app"], since=logins, timeout=30)

    assert mail, "no alert mail for carol's login on the app server within 30 s"
    assert mail["to"] == [f"<{ALERT_EMAIL}>"]
    assert "Subject: monit alert --  Content match ssh_logins" in mail["data"]
    # The relay was reached the way the settings say: STARTTLS, verified, with the stored login.
    assert mail["tls"] and mail["auth"] == {"user": SMTP_USER, "password": SMTP_PASSWORD}


def test_a_login_is_posted_to_the_webhook_as_json(deployment, logins):
    post = deployment.sinks.wait_for("http", [LOGIN_LINE, "[app]"], since=logins, timeout=30)

    assert post, "no webhook post for carol's login on the app server within 30 s"
    assert post["path"] == WEBHOOK_PATH and post["content_type"] == "application/json"
    assert set(json.loads(post["body"])) == {"text"}


def test_a_login_from_an_allow_listed_address_raises_no_alert(deployment, logins):
    backup = deployment.machines["backup"]
    # By the time the app server's alert arrived, backup's Monit (same interval) has looked too.
    assert deployment.sinks.wait_for("mail", [LOGIN_LINE, "From: monit@app"], since=logins, timeout=30)
    time.sleep(10)

    assert LOGIN_LINE in backup.check("cat /var/log/auth.log"), "the login was logged, and ignored"
    assert deployment.sinks.wait_for("mail", ["From: monit@backup"], since=logins, timeout=0) is None
    assert deployment.sinks.wait_for("http", ["[backup]"], since=logins, timeout=0) is None

    # Positive control: the same host does alert on a login from an address not on the list.
    stranger = "203.0.113.9"
    backup.check(f"logger -t sshd -p auth.info '{LOGIN_LINE}{stranger} port 40022 ssh2'")
    mail = deployment.sinks.wait_for("mail", ["From: monit@backup", stranger], since=logins, timeout=30)
    assert mail, "the backup server's Monit sent nothing for a login from a non-ignored address"


def test_monit_configuration_and_secrets_are_root_only(deployment):
    for machine in deployment.machines.values():
        modes = machine.check("stat -c '%a %U' /etc/monit/monitrc /etc/monit/pyinfra-hardening-notify.json")
        assert modes.split("\n")[:2] == ["600 root", "600 root"]
        assert machine.exec("monit -t", user="root").returncode == 0


def test_a_monitrc_monit_rejects_never_lands(deployment, operator):
    machine = deployment.machines["db"]
    before = machine.check("sha256sum /etc/monit/monitrc")

    run = operator.pyinfra(deployment.admin_inventory, BROKEN_MONITRC_DEPLOY, args=("--limit", machine.name))

    assert run.returncode != 0 and run.failed, run.output
    assert "failed validation; the live file was left as it was" in run.output
    assert SMTP_PASSWORD not in run.output
    assert machine.check("sha256sum /etc/monit/monitrc") == before
    assert machine.exec("systemctl is-active --quiet monit").returncode == 0
