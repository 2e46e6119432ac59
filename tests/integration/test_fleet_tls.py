"""The fleet CA's leaves on a real host: the key made there and never read back, the leaf
verified by the host's own OpenSSL against the trust bundle, re-runs that change nothing, and a
rotation that re-issues the leaf for the same key."""

from __future__ import annotations

import pytest

from pyinfra_hardening import fleet_tls

DEPLOY = "tests/deploys/fleet_tls_leaf.py"
KEY, CERT = "/etc/fleet-tls/server.key", "/etc/fleet-tls/server.crt"


@pytest.fixture
def host_with_ca(fresh_fleet):
    fleet, operator = fresh_fleet
    machine = fleet.start("app", operator.root_public_key)
    return machine, operator, operator.inventory({"app": machine})


def test_a_leaf_for_a_key_made_on_the_host_verifies_there_and_a_rerun_changes_nothing(host_with_ca):
    machine, operator, inventory = host_with_ca

    first = operator.pyinfra(inventory, DEPLOY)

    assert first.returncode == 0 and not first.failed, first.output
    assert "PRIVATE KEY" not in first.output
    assert machine.check(f"stat -c '%U %G %a' {KEY}").strip() == "root root 400"
    verified = machine.exec(f"openssl verify -CAfile {fleet_tls.TRUST_BUNDLE} {CERT}")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert operator.pyinfra(inventory, DEPLOY).changed == {}


def test_a_promoted_ca_reissues_the_leaf_for_the_same_key_and_the_retired_one_is_trusted_no_more(host_with_ca):
    machine, operator, inventory = host_with_ca
    assert operator.pyinfra(inventory, DEPLOY).returncode == 0
    key_before = machine.check(f"sha256sum {KEY}")

    operator.hardening_ca("introduce")
    assert operator.pyinfra(inventory, DEPLOY).changed  # the bundle gains the new CA; the leaf stays
    assert "fleet-ca-1" in machine.check(f"openssl x509 -noout -issuer -in {CERT}")
    operator.hardening_ca("promote", "fleet-ca-2")
    operator.hardening_ca("retire", "fleet-ca-1")
    rotated = operator.pyinfra(inventory, DEPLOY)

    assert rotated.returncode == 0 and not rotated.failed, rotated.output
    assert "fleet-ca-2" in machine.check(f"openssl x509 -noout -issuer -in {CERT}")
    assert machine.check(f"sha256sum {KEY}") == key_before
    assert machine.check(f"grep -c 'BEGIN CERTIFICATE' {fleet_tls.TRUST_BUNDLE}").strip() == "1"
    assert machine.exec(f"openssl verify -CAfile {fleet_tls.TRUST_BUNDLE} {CERT}").returncode == 0
