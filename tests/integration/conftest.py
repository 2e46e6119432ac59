"""One fleet per Debian release: app, db and backup containers set up like a provider's fresh
VMs, then driven through the operator's whole first-run flow once for the session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.acme import PUBLIC_NAME, AcmeCa, start_acme_ca
from harness.containers import RELEASES, Fleet, Machine, build_images
from harness.operator import (
    ADMIN,
    DB_BACKUP_KEEP,
    DEPLOYS,
    OFFSITE_BACKUP_KEEP,
    REDIS_PERSISTENCE,
    ROLE_GROUPS,
    Operator,
    Run,
)
from harness.provider import act_like_a_provider_image, fingerprint
from harness.sinks import Sinks, send_alerts_to, start_sinks
from harness.ssh import login
from pyinfra_hardening.fleet import CACHE_SERVERS

APP_COMMAND = "/bin/sleep infinity"


@dataclass
class Deployment:
    """A fleet after the operator's first-run flow, with what each step printed."""

    release: str
    machines: dict[str, Machine]
    outsider: Machine  # on the same network, in no inventory; runs the mail and webhook sinks
    acme: AcmeCa  # the ACME CA the app server's front gets its certificate from
    sinks: Sinks
    rejected: Run  # a run with a typo in group data
    untouched_by_rejected: bool
    dry: Run  # --dry --diff before anything was applied
    untouched_by_dry: bool
    first: Run  # the first real run, every role's deploy at once, connected as root
    second: dict[str, Run]  # role deploy -> the run right after, as the admin (key + TOTP + sudo), -v
    admin_inventory: Path


@pytest.fixture(scope="session", params=RELEASES)
def deployment(request, docker_client, operator: Operator, tmp_path_factory):
    release = request.param
    build_images(release)
    fleet = Fleet(docker_client, release)
    try:
        machines = {role: fleet.start(role, operator.root_public_key) for role in ROLE_GROUPS}
        outsider = fleet.start("outsider", operator.root_public_key)
        sinks = start_sinks(outsider)
        for role, machine in machines.items():
            act_like_a_provider_image(machine, role)
        send_alerts_to(sinks, operator, machines.values())
        # The backup server raises no alert for logins from the operator's address.
        operator.write_group_data(
            "backup_servers",
            {"alert_ignore_addresses": [outsider.operator_address], "offsite_backup_keep": OFFSITE_BACKUP_KEEP},
        )
        operator.write_group_data("db_servers", {"backup_keep": DB_BACKUP_KEEP})
        operator.also_in = {"db": (CACHE_SERVERS,)}  # the database server is the session store too
        operator.write_group_data(CACHE_SERVERS, {"redis_persistence": REDIS_PERSISTENCE[release]})
        acme = start_acme_ca(fleet.start("acme", operator.root_public_key), operator, answers_for=machines["app"])
        # The application, as a service of its own: a stand-in that only waits; its front's
        # certificate from the ACME CA, as Let's Encrypt's would come in production.
        operator.write_group_data(
            "app_servers",
            {
                "app_command": APP_COMMAND,
                "tls_certificates": "acme",
                "tls_names": [PUBLIC_NAME],
                "acme_email": "ops@fleet.test",
                "acme_server": acme.directory,
                "acme_ca_bundle": str(acme.listener_ca),
            },
        )
        inventory = operator.inventory(machines, name=f"inventory-{release}")
        before = {role: fingerprint(machine) for role, machine in machines.items()}

        typo_data = operator.write_group_data(
            "all",
            {"admin_users": [{"name": ADMIN, "ssh_keys": [operator.admin_public_key]}], "password_minlenght": 12},
            folder=tmp_path_factory.mktemp("typo_group_data"),
        )
        rejected = operator.pyinfra(inventory, *DEPLOYS.values(), group_data=typo_data)
        untouched_by_rejected = before == {role: fingerprint(m) for role, m in machines.items()}

        dry = operator.pyinfra(inventory, *DEPLOYS.values(), args=("--dry", "--diff"))
        untouched_by_dry = before == {role: fingerprint(m) for role, m in machines.items()}

        # The README's first run: every deploy in one go, as root (root login ends with it).
        first = operator.pyinfra(inventory, *DEPLOYS.values())
        # Root login is off now: re-runs connect as the admin, as the README tells operators.
        as_admin = operator.inventory(machines, user=ADMIN, name=f"as-admin-{release}")
        second = {role: operator.pyinfra(as_admin, deploy, args=("-v",)) for role, deploy in DEPLOYS.items()}
        yield Deployment(
            release,
            machines,
            outsider,
            acme,
            sinks,
            rejected,
            untouched_by_rejected,
            dry,
            untouched_by_dry,
            first,
            second,
            as_admin,
        )
    finally:
        fleet.remove()


@pytest.fixture(scope="session")
def admin_sessions(deployment, operator):
    """One SSH session per host as alice (key + TOTP), shared so TOTP rate limits stay clear."""
    sessions = {
        role: login(machine, ADMIN, key=operator.admin_key, totp_secret=operator.totp_secret(ADMIN))
        for role, machine in deployment.machines.items()
    }
    yield sessions
    for session in sessions.values():
        session.close()


@pytest.fixture
def fresh_fleet(docker_client, tmp_path, monkeypatch):
    """An empty Debian 12 fleet with an operator and secret store of its own, for tests that
    harden (or break) a machine of their own."""
    build_images("debian12")
    (tmp_path / "operator").mkdir()
    operator = Operator(tmp_path / "operator")
    operator.host_data = {"login_alerts": False}  # these tests are about SSH and the firewall
    monkeypatch.setenv("HARDENING_SECRETS_DIR", str(operator.secrets))
    fleet = Fleet(docker_client, "debian12")
    try:
        yield fleet, operator
    finally:
        fleet.remove()
