"""The project's promises about itself: documented knobs, shipped templates, no secrets in git."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from pyinfra_hardening import docs, scaffold

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_docs_are_what_the_models_generate():
    """The README's data-key table and group_data/*.py come from the settings models alone."""
    for path, text in docs.generated(REPO).items():
        assert path.read_text() == text, f"{path} is stale: run python -m pyinfra_hardening.docs"


def test_every_key_is_documented_once_with_its_default_and_rule():
    table = (REPO / "README.md").read_text()
    for model in docs.models():
        for key, field in model.model_fields.items():
            assert table.count(f"| `{key}` | `{field.default!r}` |") == 1, key
            assert field.description and docs.rule_of(field), key


def test_group_data_files_hold_no_values_only_documentation():
    """Defaults live in the settings models alone; group_data only shows them."""
    for path in (REPO / "group_data").glob("*.py"):
        tree = ast.parse(path.read_text())
        assert [node for node in tree.body if not isinstance(node, ast.Expr)] == [], path


def test_templates_ship_inside_the_installed_package(tmp_path):
    """A copy installed from the wheel, away from the checkout, still renders its templates."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
    )
    wheel = next(tmp_path.glob("*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    rendered = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pyinfra_hardening.managed_files as f; print(f.template_root()); "
            "print(f.render('/etc/sudoers.d/10-hardening', admin_group='wheel'))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert rendered.startswith(str(target))
    assert "%wheel\tALL=(ALL:ALL) ALL" in rendered


def test_no_secret_store_is_tracked_by_git():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert not [path for path in tracked.splitlines() if path.startswith(".secrets/")]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".secrets/admin-alice.password"], cwd=REPO)
    assert ignored.returncode == 0, ".secrets/ must be git-ignored"


def test_this_repositorys_project_files_are_what_init_writes():
    """The top-level inventories/, group_data/, deploys/ and config.py are a scaffolded project."""
    for path, text in scaffold.project_files().items():
        if path != ".gitignore":  # the repository ignores more (the build's own files)
            assert (REPO / path).read_text() == text, path


def test_init_writes_a_project_and_never_overwrites_one(tmp_path):
    project = tmp_path / "fleet"
    assert scaffold.main(["init", str(project)]) == 0
    assert sorted(str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()) == sorted(
        scaffold.project_files()
    )
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    ignored = subprocess.run(
        ["git", "check-ignore", ".secrets/x", "keys/backup-private.pem"], cwd=project, capture_output=True, text=True
    )
    assert ignored.stdout.split() == [".secrets/x", "keys/backup-private.pem"], ".gitignore keeps them out"
    (project / "group_data" / "all.py").write_text("# mine\n")
    assert scaffold.main(["init", str(project)]) == 1
    assert (project / "group_data" / "all.py").read_text() == "# mine\n"


def test_a_run_of_role_deploys_is_narrowed_to_their_groups(tmp_path):
    from pyinfra_hardening.roles import deployed_groups
    from pyinfra_hardening.scaffold import ALL_SERVERS, DEPLOY

    for role in ("app", "db"):
        (tmp_path / f"{role}_server.py").write_text(DEPLOY.format(role=role))
    (tmp_path / "all_servers.py").write_text(ALL_SERVERS)
    (tmp_path / "own.py").write_text("from pyinfra_hardening.roles import app_server\n\napp_server()\nprint('mine')\n")
    assert deployed_groups([str(tmp_path / "app_server.py")]) == {"app_servers"}
    assert deployed_groups([str(tmp_path / "app_server.py"), "pyinfra_hardening.roles.db_server"]) == {
        "app_servers",
        "db_servers",
    }
    assert deployed_groups([str(tmp_path / "all_servers.py")]) == {
        "app_servers",
        "db_servers",
        "cache_servers",
        "backup_servers",
    }
    # Anything else in the run: every host of the inventory, as pyinfra would.
    assert deployed_groups([str(tmp_path / "own.py")]) is None
    assert deployed_groups([str(tmp_path / "app_server.py"), "deploys/someone_elses.py"]) is None
