"""The project's promises about itself: documented knobs, shipped templates, no secrets in git."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from hardening.settings import KNOBS

REPO = Path(__file__).resolve().parents[2]


def documented_defaults(path: Path) -> dict[str, object]:
    """``# key = value  # reason`` lines of a group_data file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"# (\w+) = (.+?)  # \S", line)
        if match:
            found[match.group(1)] = ast.literal_eval(match.group(2))
    return found


def test_group_data_documents_every_knob_with_its_real_default():
    for knob in KNOBS:
        if knob.key == "admin_users":
            continue  # required: documented with an example instead of its empty default
        documented = documented_defaults(REPO / "group_data" / f"{knob.group}.py")
        assert knob.key in documented, f"{knob.key} is not documented in group_data/{knob.group}.py"
        assert documented[knob.key] == knob.default, f"{knob.key}: group_data says {documented[knob.key]!r}"


def test_readme_table_matches_the_settings_layer():
    rows = re.findall(r"^\| `(\w+)` \| `(.+?)` \| (\w+) \| (.+?) \|$", (REPO / "README.md").read_text(), re.M)
    assert [row[0] for row in rows] == [knob.key for knob in KNOBS]
    for (key, default, group, reason), knob in zip(rows, KNOBS):
        assert (ast.literal_eval(default), group, reason) == (knob.default, knob.group, knob.reason), key


def test_group_data_files_hold_no_values_only_documentation():
    """Defaults live in the settings layer alone; group_data only shows them."""
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
        [sys.executable, "-c",
         "import hardening.files as f; print(f.template_root()); "
         "print(f.render('/etc/sudoers.d/10-hardening', admin_group='wheel'))"],
        cwd=tmp_path, env={"PYTHONPATH": str(target)}, capture_output=True, text=True, check=True,
    ).stdout
    assert rendered.startswith(str(target))
    assert "%wheel\tALL=(ALL:ALL) ALL" in rendered


def test_no_secret_store_is_tracked_by_git():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert not [path for path in tracked.splitlines() if path.startswith(".secrets/")]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".secrets/admin-alice.password"], cwd=REPO)
    assert ignored.returncode == 0, ".secrets/ must be git-ignored"
