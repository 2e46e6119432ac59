"""auditd on every hardened host. A container's audit subsystem is its host kernel's, so here
the deploy installs auditd and its rules, and the unit is skipped (not failed, not restarting),
and every run says why the rules are not loaded."""

from __future__ import annotations

from pyinfra_hardening import audit_trail


def test_auditd_and_its_rules_are_in_place_on_every_host(deployment):
    for role, machine in deployment.machines.items():
        assert machine.check("systemctl is-enabled auditd").strip() == "enabled", role
        # Read after Debian's audit.rules, whose -D clears the kernel's rules first.
        assert machine.check(f"ls {audit_trail.RULES_DIR}").split() == ["audit.rules", "pyinfra-hardening.rules"]
        assert machine.check(f"stat -c '%a %U:%G' {audit_trail.RULES_FILE}").strip() == "640 root:root", role
        rules = machine.check(f"cat {audit_trail.RULES_FILE}")
        assert "-w /etc/sudoers.d -p wa -k privilege" in rules.splitlines(), role


def test_in_a_container_auditd_is_skipped_not_failed(deployment):
    for role, machine in deployment.machines.items():
        shown = machine.check("systemctl show auditd -p ActiveState -p ConditionResult -p NRestarts")
        properties = dict(line.split("=", 1) for line in shown.split())
        assert properties == {"NRestarts": "0", "ActiveState": "inactive", "ConditionResult": "no"}, (role, shown)
        assert machine.exec("systemctl is-failed auditd").returncode != 0, role


def test_every_run_says_why_the_rules_are_not_loaded(deployment):
    for role, run in deployment.second.items():
        assert "audit rules not loaded: in a container the audit subsystem is the host kernel's" in run.output, role
