"""The documentation generated from the settings models: the README's data-key table and the
commented ``group_data/*.py`` files, so neither can drift from the defaults and rules in code.

    python -m pyinfra_hardening.docs [--check] [DIR]

writes both in DIR (default: here); ``--check`` writes nothing and fails if either differs.
"""

from __future__ import annotations

import argparse
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from .data_types import HostSettings, Rule
from .roles import ROLE_SETTINGS

TABLE_START, TABLE_END = "<!-- data-keys:start -->", "<!-- data-keys:end -->"
GROUPS = ("all", "app_servers", "db_servers", "cache_servers", "backup_servers")
ADMIN_EXAMPLE = """\
# Required: at least one admin, with the public half of an SSH key. Their password hash goes in
# the secret store (.secrets/admin-NAME.password-hash), never here. "two_factor": False marks an
# admin not enrolled in TOTP yet (key + password until then); the default is True.
# admin_users = [{"name": "alice", "ssh_keys": ["ssh-ed25519 AAAAC3Nza... alice@laptop"]}]
"""
HEADERS = {
    "all": """\
Settings for every host. Each commented line shows a key with its default and why it exists.

Uncomment and change a line to override it; every value is validated before any host is
touched, and the defaults are defined only in the package's settings models (this file is
generated from them by `python -m pyinfra_hardening.docs`). Secrets never go here: see
README.md, "Secrets".""",
    "app_servers": "Settings for application servers (the app_servers group); group_data/all.py has the rest.",
    "db_servers": """\
Settings for database servers (the db_servers group); group_data/all.py has the rest.

MariaDB listens on the host's private_ip only; the firewall admits the database port and SSH
only from the app servers' private_ip (read from the inventory) and admin_cidrs. The
application's account may connect only from those app servers. Its password, the dump
account's password and the key the backups are copied offsite with are generated into the
secret store on the first apply (README, Secrets); only the backup public key is yours to make:

    hardening-backup keygen --private-key ~/backup-private.pem --public-key keys/backup-public.pem""",
    "cache_servers": """\
Settings for session stores (the cache_servers group); group_data/all.py has the rest.

Redis listens on the host's private_ip only, over TLS only, and takes only clients with a
certificate from the fleet CA (each app server gets one); the firewall admits its port and SSH
only from the app servers' private_ip and admin_cidrs. The application's user and password,
and an admin user's for root on this host (redis-admin), are generated into the secret store
on the first apply; the app servers' production config carries the application's.""",
    "backup_servers": """\
Settings for backup servers (the backup_servers group); group_data/all.py has the rest.

The backup server gets the baseline from all.py; its firewall admits SSH only from the
database servers' private_ip and admin_cidrs. The account the database servers copy their
encrypted backups to (db-backup) takes only their key, only from their addresses, and can only
add files to /srv/db-backups/incoming; what arrives is made root's and read-only at once.""",
}


def models() -> list[type[HostSettings]]:
    """Every settings model the roles use, each once, in the order the roles list them."""
    return list(dict.fromkeys(model for group_models in ROLE_SETTINGS.values() for model in group_models))


def group_of(model: type[HostSettings], field: FieldInfo) -> str:
    extra = field.json_schema_extra
    return str(extra["group"]) if isinstance(extra, dict) and "group" in extra else model.group


def rules_in(annotation: Any) -> list[str]:
    """The messages of the ``Rule`` metadata in an annotation, outermost first."""
    found = []
    if typing.get_origin(annotation) is typing.Annotated:
        found += [item.message for item in annotation.__metadata__ if isinstance(item, Rule)]
    for argument in typing.get_args(annotation):
        found += rules_in(argument)
    return found


def rule_of(field: FieldInfo) -> str:
    found = [item.message for item in field.metadata if isinstance(item, Rule)] + rules_in(field.annotation)
    return found[0] if found else ""


def table() -> str:
    rows = ["| Key | Default | Documented in | Rule | What it does and why |", "|---|---|---|---|---|"]
    for model in models():
        for key, field in model.model_fields.items():
            rule = rule_of(field).replace("|", "\\|")
            rows.append(f"| `{key}` | `{field.default!r}` | {group_of(model, field)} | {rule} | {field.description} |")
    return "\n".join(rows) + "\n"


def group_data(group: str) -> str:
    lines = ['"""' + HEADERS[group] + '\n"""\n']
    for model in models():
        fields = [(key, field) for key, field in model.model_fields.items() if group_of(model, field) == group]
        if not fields:
            continue
        lines.append(f"\n# {model.title}")
        for key, field in fields:
            if key == "admin_users":
                lines.append(ADMIN_EXAMPLE.rstrip("\n"))
            else:
                lines.append(f"# {key} = {field.default!r}  # {field.description}")
    return "\n".join(lines) + "\n"


def generated(root: Path) -> dict[Path, str]:
    """Each generated file's path under ``root`` and its whole text."""
    readme = root / "README.md"
    text = readme.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    files = {readme: text[:start] + "\n" + table() + text[end:]}
    for group in GROUPS:
        files[root / "group_data" / f"{group}.py"] = group_data(group)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; fail if a file differs")
    parser.add_argument("root", nargs="?", type=Path, default=Path("."))
    options = parser.parse_args(argv)
    stale = []
    for path, text in generated(options.root).items():
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if not options.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    for path in stale:
        print(f"{'differs' if options.check else 'wrote'}: {path}", file=sys.stderr)
    return 1 if stale and options.check else 0


if __name__ == "__main__":
    sys.exit(main())
