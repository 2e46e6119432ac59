"""Every case of the corpus of operator mistakes (tests/harness/bad_data.py), applied with -y as
the README's command against three stock Debian 12 machines (one per role): each is refused
before any change, naming host, key and fix, with no secret and no traceback; the machines'
files, packages, units and firewall rules are the same before and after the whole corpus."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.bad_data import ALSO_IN, CASES, ROLE_HOSTS, Case, Project, make_keys, refusal_problems
from harness.containers import Fleet, Machine, build_images
from harness.operator import make_key
from harness.provider import act_like_a_provider_image

DEPLOYS = [
    *(f"deploys/{group.removesuffix('_servers')}_server.py" for group in [*ROLE_HOSTS.values(), *ALSO_IN]),
]
# What a run could change: files (content, mode, owner) where the deploys write, packages,
# unit files and their enablement, and the firewall's rules.
FINGERPRINT = (
    "find /etc /home /root /srv /usr/local /var/spool/cron -xdev -type f -print0 2>/dev/null | sort -z"
    " | xargs -0 sha256sum; find /etc /home /root /srv -xdev -printf '%p %m %u %g\\n' | sort;"
    " dpkg-query -W; systemctl list-unit-files --no-legend --no-pager;"
    " iptables-save | grep -v '^#'; ip6tables-save | grep -v '^#'; true"
)


def fingerprint(machine: Machine) -> str:
    return machine.check(FINGERPRINT)


def applied(root: Path, *options: str) -> tuple[int, str]:
    """The README's command, from the project's folder: every role at once, with ``options``."""
    done = subprocess.run(
        [sys.executable, "-m", "pyinfra", *options, "inventory.py", *DEPLOYS],
        cwd=root,
        env={**os.environ, "HARDENING_SECRETS_DIR": str(root / ".secrets"), "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def corpus_run(docker_client, tmp_path_factory):
    """The machines, their fingerprints before, each case's (exit, output, project), the valid
    project's dry run, and the fingerprints after all of it."""
    build_images("debian12")
    folder = tmp_path_factory.mktemp("corpus")
    root_key = folder / "root_ed25519"
    root_public_key = make_key(root_key, "operator@test")
    fleet = Fleet(docker_client, "debian12")
    try:
        machines = {}
        for name, group in ROLE_HOSTS.items():
            role = group.removesuffix("_servers")
            machines[name] = fleet.start(role, root_public_key)
            act_like_a_provider_image(machines[name], role)
        hosts = {
            name: {
                "ssh_hostname": "127.0.0.1",
                "ssh_port": machine.ssh_port,
                "ssh_user": "root",
                "ssh_key": str(root_key),
                "ssh_known_hosts_file": str(folder / "known_hosts"),
                "ssh_strict_host_key_checking": "off",
                "private_ip": machine.private_ip,
            }
            for name, machine in machines.items()
        }
        operator_networks = sorted({f"{machine.operator_address}/32" for machine in machines.values()})
        project = Project(folder, make_keys(folder), hosts, admin_cidrs=operator_networks)
        before = {name: fingerprint(machine) for name, machine in machines.items()}
        roots = {case.id: project.write(case) for case in CASES}
        with ThreadPoolExecutor(max_workers=3) as pool:
            # Applied as the README does, confirmed with -y: a case not refused would change the machines.
            results = dict(zip(roots, pool.map(lambda root: applied(root, "-y"), roots.values())))
        valid_dry_run = applied(project.write(None), "--dry")
        after = {name: fingerprint(machine) for name, machine in machines.items()}
        yield results, roots, valid_dry_run, before, after
    finally:
        fleet.remove()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_each_mistake_is_refused_before_any_change(corpus_run, case: Case):
    results, roots, *_ = corpus_run
    returncode, output = results[case.id]
    assert returncode != 0, output
    assert refusal_problems(case, output, roots[case.id]) == [], output


def test_no_case_changed_anything_on_any_machine(corpus_run):
    *_, before, after = corpus_run
    for name in before:
        assert after[name] == before[name], f"{name} changed"


def test_the_valid_project_passes_every_check_on_the_machines(corpus_run):
    _, _, (returncode, output), _, _ = corpus_run
    assert returncode == 0, output
    assert "nothing was changed on any host" not in output
