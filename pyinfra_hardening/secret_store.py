"""The operator's secret store: values that must never sit in the repo or in pyinfra's output.

A secret is looked up first in the environment, then in a git-ignored directory of owner-only
files on the operator's machine (``$HARDENING_SECRETS_DIR``, default ``./.secrets``):

    .secrets/admin-alice.password-hash   crypt(3) hash written to /etc/shadow for admin ``alice``
    .secrets/admin-alice.password        alice's plaintext password, used only as pyinfra's sudo
                                         password when a re-run connects as alice

The environment variable for a file is its name upper-cased with ``-`` and ``.`` turned into
``_`` and prefixed ``HARDENING_``: ``HARDENING_ADMIN_ALICE_PASSWORD_HASH``.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SECRETS_DIR_ENV = "HARDENING_SECRETS_DIR"
DEFAULT_SECRETS_DIR = ".secrets"
MASK = "*MASKED*"
# Shorter values are not masked wherever they appear: they would hide harmless words.
MIN_MASKED_LENGTH = 4
# Credentials inside a URL or host name: scheme://user:password@host, or user:password@host.
USERINFO_RE = re.compile(r"(?<=://)[^/\s@'\"]+@|\b[^\s:/@'\"]+:[^\s/@'\"]+@")


class SecretStoreError(Exception):
    """A secret exists but cannot be trusted (wrong owner or permissions)."""


@dataclass(frozen=True)
class Secret:
    """A value that prints as ``*MASKED*`` wherever it ends up in a message, repr or f-string."""

    value: str
    source: str

    def reveal(self) -> str:
        return self.value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret(*MASKED* from {self.source})"


def admin_password_name(admin: str) -> str:
    """The store's name for an admin's plaintext password (pyinfra's sudo password)."""
    return f"admin-{admin}.password"


def secrets_dir() -> Path:
    return Path(os.environ.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR)).expanduser()


def env_name(secret_name: str) -> str:
    return "HARDENING_" + re.sub(r"[^A-Za-z0-9]", "_", secret_name).upper()


def where(secret_name: str) -> str:
    """Where the operator can put a secret, for error messages."""
    return f"the file {secrets_dir() / secret_name} (mode 600) or ${env_name(secret_name)}"


def lookup(secret_name: str) -> Secret | None:
    """The secret, or None when neither the environment nor the store has it."""
    variable = env_name(secret_name)
    if os.environ.get(variable):
        return Secret(os.environ[variable], f"${variable}")

    path = secrets_dir() / secret_name
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretStoreError(
            f"{path} can be read by others than its owner (mode {stat.S_IMODE(info.st_mode):o}, "
            f"uid {info.st_uid}); fix with: chmod 600 {path} (owned by you)"
        )
    value = path.read_text().strip()
    return Secret(value, str(path)) if value else None


def store(secret_name: str, value: str) -> Path:
    """Write a secret the operator's side generated, readable by its owner only."""
    directory = secrets_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / secret_name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value if value.endswith("\n") else value + "\n")
    path.chmod(0o600)
    return path


def generated(secret_name: str, make: Callable[[], str], executing: bool) -> Secret:
    """The stored secret, or a new one from ``make()`` kept in the store for every later run.

    For secrets nobody types (database passwords, the backup copy key, TOTP secrets). A new one
    is written only while pyinfra executes (``executing``); while it plans, detects changes or
    runs ``--dry``, a throwaway value stands in and the store is left as it was."""
    secret = lookup(secret_name)
    if secret is not None:
        return secret
    if not executing:
        if secret_name not in _announced:
            _announced.add(secret_name)
            sys.stderr.write(
                f"Secret {secret_name} is not in the store yet: an apply generates it into "
                f"{secrets_dir() / secret_name}\n"
            )
        return Secret(_stand_ins.setdefault(secret_name, make()), "(generated on apply)")
    path = store(secret_name, make())
    sys.stderr.write(f"New secret {secret_name} generated into {path}\n")
    stored = lookup(secret_name)
    assert stored is not None
    return stored


def known_values() -> set[str]:
    """Every secret this run could know: the store's files (each whole, and each line), the
    ``HARDENING_*`` environment, and the stand-ins of secrets not generated yet."""
    values = set(_stand_ins.values())
    values |= {value for name, value in os.environ.items() if name.startswith("HARDENING_") and name != SECRETS_DIR_ENV}
    directory = secrets_dir()
    for path in directory.iterdir() if directory.is_dir() else ():
        try:
            text = path.read_text() if path.is_file() else ""
        except (OSError, UnicodeDecodeError):
            continue
        values |= {text, *text.splitlines()}
    return {value.strip() for value in values if len(value.strip()) >= MIN_MASKED_LENGTH}


def mask(text: str) -> str:
    """``text`` with every secret the run could know, and credentials in URLs, masked."""
    for value in sorted(known_values(), key=len, reverse=True):
        text = text.replace(value, MASK).replace(repr(value)[1:-1], MASK)
    return USERINFO_RE.sub(MASK + "@", text)


# One stand-in per secret and process, so every place that shows a secret not generated yet
# shows the same one; and one notice per secret.
_stand_ins: dict[str, str] = {}
_announced: set[str] = set()
