"""AIDE's part: the rules it is given, its record written only when a run changed the host, and
the nightly check's line that Monit alerts on, proven by running the check script itself."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from harness.operations import run_operation
from pyinfra_hardening import file_integrity
from pyinfra_hardening.file_integrity import AideChecksums, AideDatabase
from pyinfra_hardening.managed_files import render


def test_an_ignored_path_leaves_out_its_folder_and_nothing_beside_it():
    rule = file_integrity.ignore_rule("/srv/app.uploads")
    assert rule == "!/srv/app\\.uploads(/|$)"
    pattern = re.compile(rule[1:])
    assert pattern.match("/srv/app.uploads") and pattern.match("/srv/app.uploads/a.png")
    assert not pattern.match("/srv/app.uploads2") and not pattern.match("/srv/appXuploads")


def test_debians_config_gets_sha512_at_run_time_checked_before_it_lands_then_is_left_alone():
    edit = run_operation(file_integrity.checksums_set, {AideChecksums: None})
    command = edit.commands[0]
    assert command.startswith("sed 's/^Checksums[[:space:]]*=.*/Checksums = sha512/' /etc/aide/aide.conf > ")
    assert "aide --config-check --config /etc/aide/aide.conf.hardening-candidate && mv -f" in command
    assert run_operation(file_integrity.checksums_set, {AideChecksums: "H"}).commands == [command]
    done = run_operation(file_integrity.checksums_set, {AideChecksums: "sha512"})
    assert not done.commands and done.noop
    assert AideChecksums().process(["H"]) == "H" and AideChecksums().process([]) is None


@pytest.mark.parametrize("state", ["missing", "stale", "current"])
def test_the_record_is_written_as_is_and_only_a_pending_lock_marks_it_stale(state):
    written = run_operation(file_integrity.database_recorded, {AideDatabase: state})
    assert written.commands == [
        "aide --config /etc/aide/aide.conf --init >/dev/null && mv -f /var/lib/aide/aide.db.new /var/lib/aide/aide.db"
        " && rm -f /var/lib/aide/pyinfra-hardening.stale"
    ]
    marked = run_operation(file_integrity.database_recorded, {AideDatabase: state}, mark_stale=True)
    assert marked.commands[0].endswith("&& touch /var/lib/aide/pyinfra-hardening.stale")


def test_the_record_fact_tells_missing_stale_and_current_apart():
    assert AideDatabase().process(["stale\n"]) == "stale"
    assert "pyinfra-hardening.stale" in AideDatabase().command()


def test_the_project_rules_leave_out_its_backups_and_watch_its_logs_grow_only():
    text = render(
        file_integrity.AIDE_DROP_IN,
        project_rules=["!/var/backups/db\\-encrypted(/|$)", "/var/log/db\\-backup\\.log$ f Log"],
        rules=[file_integrity.ignore_rule("/srv/uploads")],
        report=re.escape(file_integrity.CHECK_REPORT),
    )
    lines = text.splitlines()
    assert "!/tmp(/|$)" in lines and "!/var/backups/db\\-encrypted(/|$)" in lines
    assert "!/var/lib/aide/aide\\.db\\.new$" in lines
    assert "/var/log/db\\-backup\\.log$ f Log" in lines
    assert lines[-2:] == ["# file_integrity_ignored_paths", "!/srv/uploads(/|$)"]


def fake_aide(tmp_path: Path, status: int, report: str) -> dict[str, str]:
    """A PATH whose ``aide`` prints ``report`` and exits with ``status``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    aide = folder / "aide"
    aide.write_text(f"#!/bin/sh\ncat <<'EOF'\n{report}\nEOF\nexit {status}\n")
    aide.chmod(aide.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{folder}:/usr/bin:/bin"}


def run_check(tmp_path: Path, status: int, report: str) -> str:
    script = tmp_path / "aide-check"
    log, report_file = tmp_path / "aide-check.log", tmp_path / "aide" / "aide-check.report"
    script.write_text(
        render(file_integrity.CHECK_SCRIPT, config="/etc/aide/aide.conf", log=str(log), report=str(report_file))
    )
    done = subprocess.run(["sh", str(script)], env=fake_aide(tmp_path, status, report), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert report_file.read_text().strip() == report
    return log.read_text()


REPORT = """AIDE found differences between database and filesystem!!

Summary:
  Total number of entries:\t12788
  Added entries:\t\t1
  Removed entries:\t\t0
  Changed entries:\t\t2

---------------------------------------------------
Added entries:
---------------------------------------------------

f++++++++++++++++: /usr/local/bin/x"""


def test_a_difference_is_a_failed_line_with_aides_counts(tmp_path):
    line = run_check(tmp_path, 5, REPORT)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d FAILED: AIDE found files that differ from its record "
        r"\(Added 1, Removed 0, Changed 2\): see \S+/aide/aide-check.report\n",
        line,
    )


def test_a_clean_check_is_an_ok_line_and_an_error_is_a_failed_one(tmp_path):
    assert " OK: every recorded file is as AIDE recorded it\n" in run_check(tmp_path, 0, "no differences")
    other = tmp_path / "other"
    other.mkdir()
    assert "FAILED: AIDE could not check the host (exit 17)" in run_check(other, 17, "ERROR: no database")
