"""The audit rules a deploy writes, loaded into a kernel of their own: a host's files booted as
a VM (tests/harness/kernel_vm.py), since containers share this machine's kernel and auditctl
asks the kernel even to parse a rule. The hosts: the hardened Debian 13 app server, and a fresh
Debian 12 machine given the audit trail alone (a deploy of a user's own: no firewall, no cron),
each booted with its release's kernel. In the VM, as on a server at boot: ``augenrules --load``
(what auditd's start and the deploy's "The kernel runs the audit rules" run), what the deploy's
``AuditRules`` fact says before and after, then the same with the rules locked
(``audit_trail_immutable``). ``make judges``."""

from __future__ import annotations

import re

import pytest

from harness import kernel_vm
from harness.containers import Fleet, build_images
from harness.operator import Operator
from pyinfra_hardening import audit_trail
from pyinfra_hardening.audit_trail import AuditRules, AuditTrailSettings

LOCKED_RULES = "/judge/locked.rules"
ALONE_DEPLOY = "tests/deploys/audit_trail_only.py"
MARK = "@@ "


def init_script() -> str:
    """The VM's first process: each step's output under a ``@@ name`` line, then power off."""
    fact = AuditRules().command()
    return f"""#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
step() {{ echo "{MARK}$1"; }}
fact() {{ sh -c {quoted(fact)} 2>/dev/null; }}  # pyinfra reads a fact's output alone
step fact-at-boot; fact
step load; augenrules --load 2>&1; echo "exit $?"
step rules; auditctl -l 2>&1
step fact-after-load; fact
step locked-load; cp {LOCKED_RULES} {audit_trail.RULES_FILE}; augenrules --load 2>&1; echo "exit $?"
step locked-status; auditctl -s 2>&1
step fact-locked; fact
step delete-locked; auditctl -D 2>&1; echo "exit $?"
step fact-locked-changed; echo '-w /etc/motd -p wa -k motd' >> {audit_trail.RULES_FILE}; fact
step end
sleep 1  # the console's buffer drains before the power goes
echo o > /proc/sysrq-trigger
sleep 60
"""


def quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def rule_lines(text: str) -> list[str]:
    """The lines that add a rule (watches and system call rules), not settings or comments."""
    return [line for line in text.splitlines() if line.startswith(("-w ", "-a "))]


def vm_steps(machine) -> tuple[dict[str, str], str]:
    """Each step's output in the VM booted from ``machine``'s files, and the rules files the
    deploy wrote there (all of rules.d)."""
    locked = audit_trail.rules_text(AuditTrailSettings(audit_trail_immutable=True), machine.check("uname -m").strip())
    console = kernel_vm.boot(machine, init_script(), {LOCKED_RULES: locked})
    assert f"{MARK}end" in console, console[-4000:]
    # The kernel's own lines ("[   11.1] sysrq: Power Off") reach the serial console ahead of
    # what init wrote just before them: they are no step's output.
    output = re.sub(r"^\[ *\d+\.\d+\] .*\n", "", console, flags=re.MULTILINE)
    steps = dict(re.findall(rf"^{MARK}(\S+)\n(.*?)(?=^{MARK})", output, re.MULTILINE | re.DOTALL))
    return steps, machine.check("cat /etc/audit/rules.d/*.rules")


@pytest.fixture(scope="module", params=["debian13-app-server", "debian12-audit-trail-alone"])
def boot(request, docker_client, tmp_path_factory) -> tuple[dict[str, str], str]:
    if reason := kernel_vm.can_boot():
        pytest.skip(reason)
    if request.param == "debian13-app-server":
        return vm_steps(request.getfixturevalue("hardened_app").app)
    build_images("debian12")
    operator = Operator(tmp_path_factory.mktemp("operator"))
    operator.host_data = {"login_alerts": False}  # the fleet's data, read for every host, asks for a choice
    fleet = Fleet(docker_client, "debian12")
    try:
        machine = fleet.start("app", operator.root_public_key)
        run = operator.pyinfra(operator.inventory({"app": machine}), ALONE_DEPLOY)
        assert run.returncode == 0, run.output
        return vm_steps(machine)
    finally:
        fleet.remove()


def test_the_deploys_rules_load_into_the_kernel_every_one(boot):
    steps, rules_d = boot
    assert steps["load"].strip().endswith("exit 0"), steps["load"]
    assert "rror" not in steps["load"], steps["load"]
    loaded = steps["rules"].strip().splitlines()
    assert len(loaded) == len(rule_lines(rules_d)) > 30, steps["rules"]
    for key in ("identity", "privileged", "firewall", "time-change", "modules", "mounts", "audit-config"):
        assert any(line.endswith((f"-k {key}", f"key={key}")) for line in loaded), (key, steps["rules"])
    # 32-bit programs' calls are watched too (an x86_64 kernel runs them).
    assert any("arch=b32" in line for line in loaded), steps["rules"]


def test_the_fact_tells_a_run_when_to_load_and_when_not(boot):
    steps, _ = boot
    # At boot before auditd: the deploy's operation would load them; after, it has nothing to do.
    assert (steps["fact-at-boot"].strip(), steps["fact-after-load"].strip()) == ("changed", "current")


def test_locked_rules_stay_until_reboot_and_a_run_says_so(boot):
    steps, _ = boot
    assert steps["locked-load"].strip().endswith("exit 0"), steps["locked-load"]
    assert "enabled 2" in steps["locked-status"].splitlines(), steps["locked-status"]
    assert steps["fact-locked"].strip() == "current"
    # Not even root removes them.
    assert not steps["delete-locked"].strip().endswith("exit 0"), steps["delete-locked"]
    assert steps["fact-locked-changed"].strip() == "immutable"
