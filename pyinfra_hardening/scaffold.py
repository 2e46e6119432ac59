"""``pyinfra-hardening init DIR``: a project of your own for your fleet, outside this package.

    pyinfra-hardening init ~/fleet

writes an example inventory, the commented settings of every role (group_data), one-line deploys
per role, a config.py that lets pyinfra log in with TOTP from your secret store, and a
.gitignore that keeps the store and private keys out of git. It never overwrites a file.
This repository's own top-level project files are this command's output (a test says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import docs

INVENTORY = '''"""Example production inventory: an app server, a database server, a session store, a backup server.

Replace the addresses with yours. `private_ip` is each host's address on the private network
that the servers use to talk to each other (firewall and database rules are built from it).
No secrets here: they live in the operator's secret store (see README, "Secrets").
"""

app_servers = [
    ("app1.example.com", {"private_ip": "10.0.0.11"}),
]

db_servers = [
    ("db1.example.com", {"private_ip": "10.0.0.21"}),
]

# The session store (Redis). A database server may be one too: list it in both groups.
cache_servers = [
    ("cache1.example.com", {"private_ip": "10.0.0.26"}),
]

backup_servers = [
    ("backup1.example.com", {"private_ip": "10.0.0.31"}),
]
'''
CONFIG = '''"""pyinfra loads this file before it connects, when a run starts in this directory.

Every host's settings are checked before pyinfra connects to any. Re-runs log in as an admin
with key + TOTP: the code comes from the operator's secret store.
"""

from pyinfra_hardening import compat, roles, ssh_login

roles.check_before_connecting()
ssh_login.install()
compat.speed_up_runs()
# Uploads wait in /tmp: with libpam-tmpdir (which the baseline installs) a sudo session's own
# temporary folder is root's alone, where the login user's SFTP upload could not write.
TEMP_DIR = "/tmp"
'''
DEPLOY = '''"""The {role} server role, for the hosts of the {role}_servers group (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/{role}_server.py
"""

from pyinfra_hardening.roles import {role}_server

{role}_server()
'''
ALL_SERVERS = '''"""Every server role, each on the hosts of its group, in one deploy (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/all_servers.py
"""

from pyinfra_hardening.roles import all_servers

all_servers()
'''
GITIGNORE = """# The operator's secret store: never committed.
/.secrets/
/.venv/
pyinfra-debug.log
# Backup private keys belong off the servers and out of the repo.
*private*.pem
"""


def project_files() -> dict[str, str]:
    """Each file of a new project, by its path in the project, and its text."""
    files = {"inventories/prod.py": INVENTORY, "config.py": CONFIG, ".gitignore": GITIGNORE}
    files.update({f"deploys/{role}_server.py": DEPLOY.format(role=role) for role in ("app", "db", "cache", "backup")})
    files["deploys/all_servers.py"] = ALL_SERVERS
    files.update({f"group_data/{group}.py": docs.group_data(group) for group in docs.GROUPS})
    return files


def init(directory: Path) -> list[Path]:
    """Write a new project into ``directory``; refuse, writing nothing, if any file exists."""
    targets = {directory / path: text for path, text in project_files().items()}
    existing = [path for path in targets if path.exists()]
    if existing:
        raise FileExistsError(f"{', '.join(map(str, existing))} exist(s): nothing was written")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyinfra-hardening", description="A project of your own for your fleet.")
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("init", help="write a new project for your fleet into DIR")
    start.add_argument("directory", type=Path)
    options = parser.parse_args(argv)
    try:
        written = init(options.directory)
    except FileExistsError as error:
        print(f"pyinfra-hardening: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {len(written)} files into {options.directory}; next: edit inventories/prod.py and "
        "group_data/all.py, then read README.md, First run"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
