"""The audit trail's part: its rules (per arch, locked only on request), when they are loaded
into the kernel and when a run says why not, and the fact that tells, run against stand-ins
for auditctl and augenrules."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.operations import run_operation
from pyinfra_hardening import audit_trail
from pyinfra_hardening.audit_trail import AuditRules, AuditTrailSettings
from pyinfra_hardening.services import InContainer


def directives(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_every_rule_has_a_key_and_a_64_bit_x86_kernel_watches_32_bit_calls_too():
    x86 = directives(audit_trail.rules_text(AuditTrailSettings(), "x86_64"))
    arm = directives(audit_trail.rules_text(AuditTrailSettings(), "aarch64"))
    assert all(" -k " in line for line in x86)
    assert any("arch=b32" in line for line in x86) and any("arch=b64" in line for line in x86)
    assert not any("arch=b32" in line for line in arm)
    # Every sudo by a person, spelled as OpenSCAP's audit_rules_privileged_commands_sudo wants it.
    assert "-a always,exit -F path=/usr/bin/sudo -F perm=x -F auid>=1000 -F auid!=unset -k privileged" in x86
    assert not any(line.startswith("-e") for line in x86)


def test_rules_are_locked_until_reboot_only_on_request():
    locked = directives(audit_trail.rules_text(AuditTrailSettings(audit_trail_immutable=True), "x86_64"))
    assert locked[-1] == "-e 2"


@pytest.mark.parametrize(
    "in_container, state, reason",
    [
        (True, "changed", "in a container"),
        (False, "current", "runs these audit rules"),
        (False, "immutable", "until the next reboot"),
        (False, None, "auditing is off"),
    ],
)
def test_rules_are_not_loaded_where_they_cannot_or_need_not_be(in_container, state, reason):
    outcome = run_operation(audit_trail.rules_loaded, {InContainer: in_container, AuditRules: state})
    assert not outcome.commands
    assert reason in outcome.noop


def test_changed_rules_are_loaded():
    outcome = run_operation(audit_trail.rules_loaded, {InContainer: False, AuditRules: "changed"})
    assert outcome.commands == ["augenrules --load"]


@pytest.mark.parametrize(
    "status, check, listed, expected",
    [
        ("enabled 1", "/sbin/augenrules: No change", "-w /etc/passwd -p wa -k identity", "current"),
        ("enabled 1", "/sbin/augenrules: No change", "No rules", "changed"),
        ("enabled 1", "/sbin/augenrules: Rules have changed and should be updated", "-w /x", "changed"),
        ("enabled 2", "/sbin/augenrules: Rules have changed and should be updated", "-w /x", "immutable"),
        ("enabled 2", "/sbin/augenrules: No change", "-w /etc/passwd -p wa -k identity", "current"),
        (None, "", "", None),
    ],
)
def test_the_fact_tells_what_the_kernel_runs(tmp_path: Path, status, check, listed, expected):
    """The fact's shell, with auditctl and augenrules standing in (None: the kernel refuses)."""
    status_reply = f"echo '{status}'" if status else "echo 'Error sending status request' >&2; exit 1"
    (tmp_path / "auditctl").write_text(f"#!/bin/sh\ncase $1 in -s) {status_reply};; -l) echo '{listed}';; esac\n")
    (tmp_path / "augenrules").write_text(f"#!/bin/sh\necho '{check}'\n")
    for tool in ("auditctl", "augenrules"):
        (tmp_path / tool).chmod(0o755)
    environment = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    fact = AuditRules()
    output = subprocess.run(["sh", "-c", fact.command()], env=environment, capture_output=True, text=True, check=True)
    assert fact.process(output.stdout.splitlines()) == expected
