"""The project's promises about itself: documented knobs, shipped templates, no secrets in git."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from pyinfra_hardening import docs

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
