"""The README's own commands, exactly as written: install into a virtualenv of one's own, write
a project with ``pyinfra-hardening init``, look with a dry run, apply, re-run as the admin.
Only the edit the README asks for at its comment line is the test's: one fresh container as
the inventory, alice as the admin."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.containers import REPO
from harness.operator import ADMIN, ADMIN_PASSWORD
from harness.readme import readme_block
from harness.ssh import login


def run(lines: list[str], cwd: Path, env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines)],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=900,
    )


def changed_operations(log: str) -> int:
    """The Success column of pyinfra's "Grand total" row: operations that changed something."""
    total = next(line.split() for line in log.splitlines() if line.strip().startswith("Grand total"))
    return 0 if total[3] == "-" else int(total[3])


@pytest.fixture
def user_machine(tmp_path, fresh_fleet):
    """A fresh container, a home folder with a checkout of this repository as ./pyinfra-hardening,
    and the environment of a shell there (no HARDENING_* variables: the project's own store)."""
    fleet, operator = fresh_fleet
    machine = fleet.start("app", operator.admin_public_key)  # root takes the admin's key, as a provider's would
    home = tmp_path / "home"
    home.mkdir()
    # A checkout of this repository as it is now, without this suite's own build state.
    shutil.copytree(
        REPO,
        home / "pyinfra-hardening",
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".images", "build", "*.egg-info", ".pytest_cache", "__pycache__"
        ),
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HARDENING_", "VIRTUAL_ENV"))}
    # This suite's own virtualenv is not on the user's PATH.
    path = [entry for entry in env["PATH"].split(":") if not entry.startswith(str(REPO))]
    env.update(HOME=str(home), PATH=":".join(path))
    return machine, operator, home, env


def test_the_readme_flow_runs_as_written(user_machine, monkeypatch):
    machine, operator, home, env = user_machine
    install = readme_block("Your own project")
    project = readme_block("", "<!-- tested: project-flow -->")
    comment = next(number for number, line in enumerate(project) if line.startswith("#"))

    installed = run([*install, *project[:comment]], home, env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    fleet = home / "fleet"
    assert (fleet / "config.py").exists() and (fleet / "deploys" / "app_server.py").exists()

    # The edit the README's comment asks for: the host, the admin and her secrets.
    (fleet / "inventories" / "prod.py").write_text(f"app_servers = [{machine.name!r}]\n")
    (fleet / "group_data" / "app_servers.py").write_text(
        repr_data(
            {
                "ssh_hostname": "127.0.0.1",
                "ssh_port": machine.ssh_port,
                "ssh_key": str(operator.admin_key),
                "ssh_known_hosts_file": str(home / "known_hosts"),
                "ssh_strict_host_key_checking": "off",
                "private_ip": machine.private_ip,
            }
        )
    )
    all_data = (fleet / "group_data" / "all.py").read_text()
    (fleet / "group_data" / "all.py").write_text(
        all_data
        + repr_data(
            {
                "admin_users": [{"name": ADMIN, "ssh_keys": [operator.admin_public_key]}],
                "login_alerts": False,
            }
        )
    )
    # The README's Secrets block, line by line, alice typing her password where it asks.
    for line in readme_block("Secrets"):
        typed = {"openssl passwd": f"{ADMIN_PASSWORD}\n" * 2, "read -rs": f"{ADMIN_PASSWORD}\n"}
        done = run(
            [line], fleet, env, stdin=next((text for start, text in typed.items() if line.startswith(start)), "")
        )
        assert done.returncode == 0, (line, done.stderr)
    stored_hash = (fleet / ".secrets" / f"admin-{ADMIN}.password-hash").read_text().strip()
    assert crypt_matches(ADMIN_PASSWORD, stored_hash)
    assert (fleet / ".secrets" / f"admin-{ADMIN}.password").read_text() == f"{ADMIN_PASSWORD}\n"

    env["PATH"] = f"{home / 'fleet-tools' / 'bin'}:{env['PATH']}"  # what `. ~/fleet-tools/bin/activate` did
    keygen, ca_init, dry, apply, rerun, role_rerun = project[comment + 1 :]
    for line in (keygen, ca_init):
        done = run([line], fleet, env)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "signing" in (fleet / "keys" / "fleet-ca.json").read_text()
    store_before = sorted(path.name for path in (fleet / ".secrets").iterdir())  # with the CA's key
    done = run([dry], fleet, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Will create /etc/sudoers.d/10-hardening" in done.stdout + done.stderr
    assert sorted(path.name for path in (fleet / ".secrets").iterdir()) == store_before, "the dry run wrote secrets"

    monkeypatch.setenv("HARDENING_SECRETS_DIR", str(fleet / ".secrets"))  # our logins share the TOTP windows used
    applied = run([apply], fleet, env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (fleet / ".secrets" / f"admin-{ADMIN}.totp-enrollment.txt").exists()
    totp_secret = (fleet / ".secrets" / f"admin-{ADMIN}.totp-secret").read_text().strip()
    with login(machine, ADMIN, key=operator.admin_key, totp_secret=totp_secret) as session:
        assert session.run("sudo -n true").status != 0, "sudo asks for a password"

    for line in (rerun, role_rerun):
        again = run([line], fleet, env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert changed_operations(again.stderr) == 0, again.stderr

    # Reaching inner servers: the README's snippet command (the ssh line after it needs a person).
    snippet = run([readme_block("Reaching inner servers (guide 3.8)")[0]], fleet, env)
    assert snippet.returncode == 0, snippet.stderr
    config = (home / ".ssh" / "config.d" / "prod").read_text()
    assert f"Host {machine.name}\n    HostName 127.0.0.1\n    User {ADMIN}\n    Port {machine.ssh_port}" in config


def crypt_matches(password: str, hashed: str) -> bool:
    """Whether ``hashed`` (SHA-512 crypt) is of ``password``: openssl hashes it again with its salt."""
    salt = hashed.split("$")[2]
    again = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password, capture_output=True, text=True, check=True
    ).stdout.strip()
    return again == hashed


def repr_data(values: dict) -> str:
    return "".join(f"{key} = {value!r}\n" for key, value in values.items())
