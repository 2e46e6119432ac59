"""Firewall changes that would shut the operator out: refused up front when the run can tell,
undone by the rollback timer when it cannot. Each test uses its own fresh machine (Debian 12)."""

from __future__ import annotations

import socket
import time

import pytest

from harness.operator import DEPLOYS

ROLLBACK_SECONDS = 30
CUTOFF_DEPLOY = "tests/deploys/firewall_cutoff.py"
# A rule the machine has before the run, which must be live again after a rollback.
MARKER_RULE = "-A INPUT -p tcp -m tcp --dport 9999 -j ACCEPT"


@pytest.fixture
def fresh(fresh_fleet):
    fleet, operator = fresh_fleet
    operator.write_group_data("all", {**operator.base_group_data(), "firewall_rollback_seconds": ROLLBACK_SECONDS})
    machine = fleet.start("db", operator.root_public_key)
    # A live server with a firewall of its own (a fresh image has no iptables).
    machine.install("iptables")
    machine.check(f"iptables {MARKER_RULE}")
    return machine, operator


def sshd_answers(port: int) -> bool:
    """Whether a new connection from this machine reaches sshd (through Docker's published port)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
            connection.settimeout(3)
            return connection.recv(4) == b"SSH-"
    except OSError:
        return False


def live_rules(machine) -> str:
    return machine.check("iptables-save | grep -v '^#'")


def test_rules_that_cut_off_ssh_are_undone_by_the_timer(fresh):
    machine, operator = fresh
    inventory = operator.inventory({"db": machine})

    run = operator.pyinfra(inventory, CUTOFF_DEPLOY)
    cut_off_at = time.monotonic()

    assert run.returncode != 0
    assert "did not get through the new firewall rules" in run.output
    assert f"the previous rules come back by themselves within {ROLLBACK_SECONDS} s" in run.output
    # The bad rules really went live: no new connection gets in, and the marker rule is gone.
    assert not sshd_answers(machine.ssh_port)
    assert ":INPUT DROP" in live_rules(machine) and MARKER_RULE not in live_rules(machine)
    assert "rules.v4\n" not in machine.check("ls /etc/iptables"), "unconfirmed rules are never saved"

    while not sshd_answers(machine.ssh_port):
        assert time.monotonic() - cut_off_at < ROLLBACK_SECONDS + 15, "the rollback timer never fired"
        time.sleep(1)
    assert MARKER_RULE in live_rules(machine) and ":INPUT ACCEPT" in live_rules(machine)
    assert machine.check("ls /etc/iptables") == "", "nothing of the failed change is left behind"


def test_rules_that_would_shut_out_this_run_are_refused_before_anything_changes(fresh):
    machine, operator = fresh
    inventory = operator.inventory({"db": machine}, data={"admin_cidrs": ["192.0.2.0/24"]})
    before = live_rules(machine)

    run = operator.pyinfra(inventory, DEPLOYS["db"])

    assert run.returncode != 0
    assert f"but this run connects from {machine.operator_address}" in run.output
    assert "Add your network to admin_cidrs" in run.output
    assert live_rules(machine) == before
    assert machine.exec("test -e /etc/iptables").returncode != 0
    assert machine.exec("id alice").returncode != 0, "no operation ran on the host"
