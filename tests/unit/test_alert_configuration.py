"""Login alerts: settings that could not alert anyone are refused; Monit's configuration says
what the settings say; the notifier posts what a webhook and Pushover expect."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pyinfra.api import Inventory

from harness.checked import checked_hosts
from harness.operator import make_key, write_secret
from pyinfra_hardening import login_alerts
from pyinfra_hardening.managed_files import masked, render
from pyinfra_hardening.settings import SettingsError, settings_for
from pyinfra_hardening.ssh import SshSettings

pytestmark = pytest.mark.usefixtures("secret_store")

MAIL = {"alert_email": "ops@example.com", "smtp_host": "smtp.example.com"}
SSHD_LINE = "sshd[812]: Accepted keyboard-interactive/pam for alice from {} port 51234 ssh2"


@pytest.fixture
def settings_with(tmp_path):
    admins = [{"name": "alice", "ssh_keys": [make_key(tmp_path / "alice", "alice@test")]}]

    def build(**data):
        inventory = Inventory(
            ([("app1", {"private_ip": "10.0.0.11"})], {"admin_users": admins, **data}), app_servers=(["app1"], {})
        )
        return checked_hosts(inventory)["app1"]

    return build


def monitrc(host) -> str:
    """Monit's configuration for ``host``, as the login alerts deploy writes it."""
    alerts = login_alerts.alerts_of(host)
    pattern = login_alerts.login_pattern(settings_for(host, SshSettings).ssh_two_factor, key_logins=False)
    return login_alerts.monitrc(alerts, pattern, bool(login_alerts.ignore_regexes(alerts)))


def refusal(settings_with, **data) -> str:
    with pytest.raises(SettingsError) as error:
        settings_with(**data)
    return str(error.value)


@pytest.mark.parametrize(
    "data, words",
    [
        ({}, "login_alerts = True is on, but nobody would hear of an SSH login"),
        ({"alert_email": "ops@example.com"}, "smtp_host = None is not set, so no mail could reach ops@example.com"),
        ({**MAIL, "smtp_user": "monit"}, "smtp_user = 'monit' needs the SMTP password, which the secret store lacks"),
        ({"alert_webhook": True}, "alert_webhook = True needs the webhook URL, which the secret store lacks"),
        ({"alert_pushover": True}, "needs pushover-app-token, which the secret store lacks"),
        ({**MAIL, "alert_email": "ops.example.com"}, "must be an email address"),
        ({**MAIL, "smtp_security": "ssl"}, "must be one of 'starttls', 'tls', 'none'"),
        ({**MAIL, "alert_ignore_addresses": ["10.0.0.0/24"]}, "not a single IP address"),
        ({**MAIL, "smtp_port": 2587}, "Monit speaks STARTTLS on ports 25 and 587 only"),
        ({**MAIL, "smtp_security": "tls"}, "smtp_security = 'tls' does not fit smtp_port 587"),
    ],
)
def test_settings_that_could_not_alert_anyone_are_refused(settings_with, data, words):
    assert words in refusal(settings_with, **data)


def test_the_smtp_password_never_travels_unencrypted(settings_with, secret_store):
    write_secret(secret_store, "smtp-password", "Relay-Pass-1")
    message = refusal(settings_with, **MAIL, smtp_user="monit", smtp_security="none")
    assert "would send the SMTP password unencrypted" in message
    assert "Relay-Pass-1" not in message


def test_a_webhook_url_must_be_a_url(settings_with, secret_store):
    write_secret(secret_store, "alert-webhook-url", "hooks.example.com/T000/B000/XXXX")
    message = refusal(settings_with, alert_webhook=True)
    assert "that is not http(s)://" in message and "XXXX" not in message


def test_monitrc_mails_every_login_through_the_relay_with_starttls(settings_with, secret_store):
    write_secret(secret_store, "smtp-password", "Relay-Pass-1")
    text = monitrc(settings_with(**MAIL, smtp_user="monit"))
    assert re.search(r"^set daemon 5$", text, re.M)
    assert 'set mailserver smtp.example.com port 587\n    username "monit" password "Relay-Pass-1"\n' in text
    assert "using tls { verify: enable }" in text
    assert "set alert ops@example.com not on { instance, action }" in text
    assert 'if match "Accepted keyboard-interactive/pam for " then alert' in text
    assert "ignore match" not in text


def test_without_two_factor_the_alert_follows_key_logins(settings_with):
    text = monitrc(settings_with(**MAIL, ssh_two_factor=False))
    assert 'if match "Accepted publickey for " then alert' in text


def test_pushes_run_the_notifier_and_mail_still_goes_out(settings_with, secret_store):
    write_secret(secret_store, "alert-webhook-url", "https://hooks.example.com/T000/B000/XXXX")
    text = monitrc(settings_with(**MAIL, alert_webhook=True))
    assert f'then exec "{login_alerts.NOTIFIER}"' in text and "set alert ops@example.com" in text


def test_the_ignore_list_matches_exactly_the_allowed_addresses(settings_with):
    host = settings_with(**MAIL, alert_ignore_addresses=["10.0.0.5", "2001:db8::7"])
    patterns = login_alerts.ignore_regexes(login_alerts.alerts_of(host)).splitlines()
    ignored = [
        address
        for address in ("10.0.0.5", "10.0.0.50", "10.0.0.5.1", "2001:db8::7", "10a0a0a5")
        if any(re.search(pattern, SSHD_LINE.format(address)) for pattern in patterns)
    ]
    assert ignored == ["10.0.0.5", "2001:db8::7"]


def test_diffs_of_files_with_secrets_show_them_masked():
    assert masked('username "monit" password "Relay-Pass-1"\n', login_alerts.MONITRC_SECRET) == (
        'username "monit" password "*MASKED*"\n'
    )
    config = '{\n  "webhook_url": "https://hooks.example.com/XXXX"\n}\n'
    assert "XXXX" not in masked(config, login_alerts.NOTIFIER_SECRET)


class Recorder(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Recorder.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(Recorder.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    Recorder.received, Recorder.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", Recorder
    server.shutdown()


def run_notifier(tmp_path, config: dict) -> subprocess.CompletedProcess:
    script = tmp_path / "monit-notify"
    script.write_text(render(login_alerts.NOTIFIER, config=login_alerts.NOTIFIER_CONFIG))
    (tmp_path / "notify.json").write_text(json.dumps(config))
    environment = {
        "MONIT_HOST": "app1",
        "MONIT_SERVICE": "ssh_logins",
        "MONIT_DESCRIPTION": "content match:\n" + SSHD_LINE.format("203.0.113.9"),
    }
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "notify.json")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_notifier_posts_to_the_webhook_and_to_pushover(tmp_path, endpoint):
    url, recorder = endpoint
    done = run_notifier(
        tmp_path,
        {"webhook_url": f"{url}/hook", "pushover": {"url": f"{url}/push", "token": "app-token", "user": "user-key"}},
    )
    assert done.returncode == 0, done.stderr
    (hook_path, hook_type, hook_body), (push_path, push_type, push_body) = recorder.received
    assert (hook_path, hook_type) == ("/hook", "application/json")
    assert json.loads(hook_body)["text"].startswith("[app1] ssh_logins - content match:")
    assert "Accepted keyboard-interactive/pam for alice from 203.0.113.9" in json.loads(hook_body)["text"]
    form = urllib.parse.parse_qs(push_body)
    assert (push_path, push_type) == ("/push", "application/x-www-form-urlencoded")
    assert form["token"] == ["app-token"] and form["user"] == ["user-key"]
    assert "for alice from 203.0.113.9" in form["message"][0]


def test_a_failed_post_exits_non_zero_without_showing_the_url(tmp_path, endpoint):
    url, recorder = endpoint
    recorder.status = 500
    done = run_notifier(tmp_path, {"webhook_url": f"{url}/secret-token-path"})
    assert done.returncode == 1
    assert "secret-token-path" not in done.stdout + done.stderr
