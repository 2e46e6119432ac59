"""The operator's flow: bad data is refused untouched, dry run first, apply, re-apply, re-run as admin."""

from __future__ import annotations

import re

import pytest

from harness.operator import ADMIN_PASSWORD, DEPLOYED_ON, DEPLOYS, SMTP_PASSWORD, Operator
from pyinfra_hardening import database, session_store
from pyinfra_hardening.secret_store import Secret

ROLES = list(DEPLOYS)


def secrets_of(operator: Operator) -> list[str]:
    """Every secret value in the store, each scratch code and each line of a key on its own
    (except a PEM key's BEGIN and END lines, which every key has)."""
    values = []
    for path in operator.secrets.iterdir():
        if path.name.endswith((".totp-enrollment.txt", ".json")):
            continue
        words = [word for word in path.read_text().split() if not word.startswith("-----") and len(word) > 8]
        values += [path.read_text().strip(), *words]
    return values


def test_bad_data_is_refused_before_any_host_is_touched(deployment):
    rejected = deployment.rejected
    assert rejected.returncode != 0
    for machine in deployment.machines.values():
        assert f"host {machine.name}: password_minlenght" in rejected.output
    assert "rename it to 'password_minlen'" in rejected.output
    assert "nothing was changed on any host" in rejected.output
    assert deployment.untouched_by_rejected


def test_dry_run_shows_each_file_change_as_a_diff_and_changes_nothing(deployment):
    dry = deployment.dry
    assert dry.returncode == 0, dry.output
    assert "Will create /etc/sudoers.d/10-hardening" in dry.output
    assert "+ %sudo\tALL=(ALL:ALL) ALL" in dry.output
    assert "Will modify /etc/pam.d/common-password" in dry.output
    assert "+ password requisite pam_pwquality.so retry=3 minlen=15 minclass=4 difok=3" in dry.output
    assert "Will modify /etc/pam.d/common-auth" in dry.output
    assert "+ auth required pam_faillock.so preauth" in dry.output
    assert "Will create /usr/share/pam-configs/pyinfra-hardening-faillock" in dry.output
    # The provider's NOPASSWD rules, shown being taken away.
    assert "- %sudo\tALL=(ALL:ALL) NOPASSWD: ALL" in dry.output
    assert "- debian ALL=(ALL) NOPASSWD:ALL" in dry.output
    assert "+ debian ALL=(ALL) ALL" in dry.output
    assert "Will create /etc/iptables/rules.v4" in dry.output
    app_ip = deployment.machines["app"].private_ip
    assert f"+ -A TCP -s {app_ip}/32 -p tcp --dport 3306 -j ACCEPT" in dry.output
    assert "+ -A TCP -p tcp --dport 443 -j ACCEPT" in dry.output and "REDIRECT" not in dry.output
    # The front's config, and the certificate certbot would be asked for.
    assert re.search(r"^\s*\+\s+ssl_protocols TLSv1\.2 TLSv1\.3;$", dry.output, re.M)
    assert "Will create /etc/nginx/nginx.conf" in dry.output
    db_ip = deployment.machines["db"].private_ip
    assert f"+ bind-address = {db_ip}" in dry.output
    assert "+ Match User db-backup" in dry.output
    # Files with secrets show them masked.
    assert 'username "monit" password "*MASKED*"' in dry.output
    assert '+ password = "*MASKED*"' in dry.output  # the dump account's
    assert "+ -----BEGIN OPENSSH PRIVATE KEY-----" in dry.output and "+ *MASKED*" in dry.output
    app_ip = deployment.machines["app"].private_ip
    assert f"CREATE USER 'application'@'{app_ip}' IDENTIFIED BY PASSWORD '*MASKED*' REQUIRE X509;" in dry.output
    assert "+ DB_PASSWORD=*MASKED*" in dry.output and f"+ DB_HOST={db_ip}" in dry.output
    assert "+ require_secure_transport = ON" in dry.output
    assert '"webhook_url": "*MASKED*"' in dry.output
    # The session store: its users (hashes masked), its TLS-only config, its port for app servers only.
    assert "Will create /etc/redis/users.acl" in dry.output
    assert "+ user default off sanitize-payload resetkeys resetchannels -@all" in dry.output
    assert "+ user application on sanitize-payload #*MASKED* ~session:* resetchannels -@all +@read" in dry.output
    assert "+ port 0" in dry.output and "+ tls-auth-clients yes" in dry.output
    assert "+ REDIS_PASSWORD=*MASKED*" in dry.output and f"+ REDIS_HOST={db_ip}" in dry.output
    assert f"+ -A TCP -s {app_ip}/32 -p tcp --dport 6379 -j ACCEPT" in dry.output
    assert deployment.untouched_by_dry


def test_first_run_as_root_hardens_every_host(deployment):
    first = deployment.first
    assert first.returncode == 0 and not first.failed, first.output
    assert set(first.changed) == {machine.name for machine in deployment.machines.values()}
    for role, machine in deployment.machines.items():
        changed = " ".join(first.changed[machine.name])
        assert "Prove a fresh SSH login as alice works" in changed, role
        assert "Firewall: prove a fresh SSH connection gets through" in changed, role


@pytest.mark.parametrize("role", ROLES)
def test_each_deploy_changes_nothing_on_a_second_run(deployment, role):
    second = deployment.second[role]
    assert second.returncode == 0 and not second.failed, second.output
    assert second.changed == {}, f"second run changed: {second.changed}\n{second.output}"
    assert "Connected" in second.output  # as alice: key, then a TOTP code, then sudo with her password


def test_all_servers_does_what_the_role_deploys_did(deployment, operator):
    """deploys/all_servers.py after the four role deploys: the same state, so nothing to change,
    on every host of every role (a host of two roles, db and cache, included)."""
    run = operator.pyinfra(deployment.admin_inventory, "deploys/all_servers.py")
    assert run.returncode == 0 and not run.failed, run.output
    assert run.changed == {}, f"all_servers changed: {run.changed}\n{run.output}"
    for machine in deployment.machines.values():
        assert machine.name in run.output


@pytest.mark.parametrize("role", ROLES)
def test_a_role_run_logs_in_to_the_hosts_of_its_role_only(deployment, role):
    """So the README's role runs, one after the other, each log in to a host once, and never
    wait for a TOTP window another run used."""
    output = deployment.second[role].output
    for other, machine in deployment.machines.items():
        assert (machine.name in output) == (other == DEPLOYED_ON[role]), f"{role} run and {machine.name}"


def test_secrets_never_show_in_output(deployment, operator):
    """Default output, --dry --diff, and -v (the admin re-runs): no password, hash or TOTP secret."""
    runs = [deployment.dry, deployment.first, *deployment.second.values()]
    for secret in secrets_of(operator):
        for run in runs:
            assert secret not in run.output
    assert ADMIN_PASSWORD in secrets_of(operator) and SMTP_PASSWORD in secrets_of(operator)


def test_secrets_never_show_in_the_most_verbose_output(deployment, operator):
    """-vvv prints every fact's output; the facts that read secrets stay unprinted."""
    run = operator.pyinfra(deployment.admin_inventory, *DEPLOYS.values(), args=("-vvv",))

    assert run.returncode == 0 and run.changed == {}, run.output
    assert "PubkeyAuthentication yes" in run.output, "-vvv printed no fact output at all"
    app_password = Secret((operator.secrets / "app-database-password").read_text().strip(), "store")
    redis_hashes = [
        session_store.password_hash((operator.secrets / name).read_text().strip())[1:]
        for name in (session_store.APP_REDIS_PASSWORD, session_store.REDIS_ADMIN_PASSWORD)
    ]
    for secret in [*secrets_of(operator), database.password_hash(app_password), *redis_hashes]:
        assert secret not in run.output
