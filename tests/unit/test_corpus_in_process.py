"""The corpus of operator mistakes (tests/harness/bad_data.py), checked in-process and quickly:
each is refused before any host is touched, naming host, key and fix, with no secret shown.
tests/integration/test_bad_data_corpus.py runs every case against containers and fingerprints them."""

from __future__ import annotations

import pytest

from harness.bad_data import CASES, ROLE_HOSTS, Case, Project, make_keys, refusal_problems
from pyinfra_hardening import compat
from pyinfra_hardening.roles import check_roles
from pyinfra_hardening.settings import SettingsError

DATA_CASES = [case for case in CASES if not case.on_host]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    folder = tmp_path_factory.mktemp("corpus")
    hosts = {name: {"ssh_port": 22, "private_ip": f"10.0.0.{11 + number}"} for number, name in enumerate(ROLE_HOSTS)}
    return Project(folder, make_keys(folder), hosts, admin_cidrs=["192.0.2.0/24"])


def checked(project: Project, case: Case | None, monkeypatch) -> str | None:
    """The refusal of the project with ``case``'s change, loaded as pyinfra's command line does;
    None when it is accepted."""
    root = project.write(case)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HARDENING_SECRETS_DIR", str(root / ".secrets"))
    try:
        # An absolute path: pyinfra's loader caches a file's code by the name it is given.
        check_roles(list(compat.load_inventory(str(root / "inventory.py"))))
    except SettingsError as error:
        return str(error)
    return None


def test_the_corpus_covers_every_data_key_and_has_enough_cases():
    from pyinfra_hardening.docs import models

    keys = {key for model in models() for key in model.model_fields}
    assert keys - {case.key for case in CASES} == set()
    assert len(CASES) >= 120


def test_the_valid_project_is_accepted(project, monkeypatch):
    assert checked(project, None, monkeypatch) is None


@pytest.mark.parametrize("case", DATA_CASES, ids=[case.id for case in DATA_CASES])
def test_each_mistake_is_refused_naming_host_key_and_fix(project, case, monkeypatch):
    refusal = checked(project, case, monkeypatch)
    assert refusal is not None, f"{case.id} was accepted"
    assert refusal_problems(case, refusal, project.folder / case.id) == [], refusal
