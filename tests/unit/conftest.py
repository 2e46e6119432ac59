"""Fixtures for unit tests: nothing here starts a container."""

from __future__ import annotations

import pytest

from harness.operator import ADMIN_PASSWORD, crypt_hash, write_secret


@pytest.fixture
def secret_store(tmp_path, monkeypatch):
    """A secret store for admin alice (hash and password), used instead of the real one."""
    store = tmp_path / "secrets"
    write_secret(store, "admin-alice.password-hash", crypt_hash(ADMIN_PASSWORD))
    write_secret(store, "admin-alice.password", ADMIN_PASSWORD)
    monkeypatch.setenv("HARDENING_SECRETS_DIR", str(store))
    for name in ("HARDENING_ADMIN_ALICE_PASSWORD_HASH", "HARDENING_ADMIN_ALICE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return store
