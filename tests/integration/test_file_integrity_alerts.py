"""AIDE on a hardened host: the deploy's own changes are in its record (they never raise an
alert), while a file planted or edited afterwards is a FAILED line that Monit mails."""

from __future__ import annotations

import re
import time

import pytest

from pyinfra_hardening import file_integrity

# Files the deploy writes or edits on every role; the record must hold them as written.
DEPLOYED = ["/etc/ssh/sshd_config.d/00-hardening.conf", "/etc/login.defs", "/etc/monit/monitrc", "/etc/issue.net"]
PLANTED = "/usr/local/bin/pyinfra-hardening-test-implant"
EDITED = "/etc/motd"


def run_check(machine) -> tuple[str, str]:
    """The nightly check as cron runs it: its log's last line, and AIDE's report."""
    machine.check(file_integrity.CHECK_SCRIPT)
    last = machine.check(f"tail -1 {file_integrity.CHECK_LOG}")
    return last, machine.check(f"cat {file_integrity.CHECK_REPORT}")


def record(machine) -> None:
    machine.check(
        f"aide --config {file_integrity.AIDE_CONFIG} --init >/dev/null && "
        f"mv -f {file_integrity.DATABASE}.new {file_integrity.DATABASE}"
    )


@pytest.fixture(scope="module")
def app(deployment):
    """The app server, left as it was found, its record written again, for later tests."""
    machine = deployment.machines["app"]
    machine.check(f"cp -p {EDITED} /root/edited.orig")
    yield machine
    machine.check(f"rm -f {PLANTED} && cp -p /root/edited.orig {EDITED} && rm /root/edited.orig")
    record(machine)


def test_every_host_has_a_current_record_and_a_nightly_check(deployment):
    for machine in deployment.machines.values():
        assert machine.check(f"test -s {file_integrity.DATABASE} && echo ok").strip() == "ok", machine.name
        assert machine.exec(f"test -e {file_integrity.STALE_MARK}").returncode != 0, machine.name
        cron = machine.check(f"cat {file_integrity.CHECK_CRON}")
        assert f"15 5 * * * root {file_integrity.CHECK_SCRIPT}" in cron
        assert machine.exec("systemctl is-enabled -q dailyaidecheck.timer").returncode != 0


def test_the_deploys_own_changes_raise_no_alert(app):
    _, report = run_check(app)
    for path in DEPLOYED:
        assert f": {path}\n" not in report, report


def test_a_planted_and_an_edited_file_are_a_failed_line_that_is_mailed(deployment, app):
    record(app)  # what earlier tests changed on the app server is not this test's finding
    started = time.time()
    app.check(f"printf '#!/bin/sh\\n' > {PLANTED} && chmod 755 {PLANTED} && echo 'edited' >> {EDITED}")
    last, report = run_check(app)
    # Changed counts the edited file and the folders whose times moved with it.
    found = r" FAILED: AIDE found files that differ from its record \(Added 1, Removed 0, Changed \d+\)"
    assert re.search(found, last), last
    assert f": {PLANTED}\n" in report, report
    assert f": {EDITED}\n" in report, report
    mail = deployment.sinks.wait_for("mail", ["FAILED: AIDE found files", "From: monit@app"], since=started)
    assert mail is not None, "no alert mail for AIDE's finding on the app server within 30 s"
