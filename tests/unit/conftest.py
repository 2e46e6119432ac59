"""Fixtures for unit tests: nothing here starts a container."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.operator import ADMIN_PASSWORD, crypt_hash, write_secret
from pyinfra_hardening import fleet_ca
from pyinfra_hardening.backup_cli import generate_key_pair


@pytest.fixture(scope="session")
def backup_key_pair(tmp_path_factory) -> tuple[Path, Path]:
    """An operator's backup key pair (private, public), made once: RSA keys take a moment."""
    folder = tmp_path_factory.mktemp("backup-keys")
    private, public = folder / "backup-private.pem", folder / "backup-public.pem"
    generate_key_pair(private, public, bits=3072)
    return private, public


@pytest.fixture
def secret_store(store_without_ca):
    """``store_without_ca`` and a fleet CA made in it, as ``hardening-ca init`` makes one."""
    fleet_ca.init(Path("keys"))
    return store_without_ca


@pytest.fixture
def store_without_ca(tmp_path, monkeypatch, backup_key_pair):
    """A secret store for admin alice (hash and password), used instead of the real one, run from
    a folder with the backup public key where the settings look for it by default."""
    (tmp_path / "keys").mkdir()
    shutil.copy(backup_key_pair[1], tmp_path / "keys" / "backup-public.pem")
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "secrets"
    write_secret(store, "admin-alice.password-hash", crypt_hash(ADMIN_PASSWORD))
    write_secret(store, "admin-alice.password", ADMIN_PASSWORD)
    monkeypatch.setenv("HARDENING_SECRETS_DIR", str(store))
    for name in ("HARDENING_ADMIN_ALICE_PASSWORD_HASH", "HARDENING_ADMIN_ALICE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return store
