"""Password hashes for /etc/shadow: complete per scheme, and checked against the stored password."""

from __future__ import annotations

import pytest

from harness.operator import ADMIN_PASSWORD, crypt_hash
from pyinfra_hardening.password_hashes import _libcrypt, hash_problem, password_matches


def hashed(password: str, setting: str) -> str:
    """libcrypt's hash of ``password`` for a scheme's setting (prefix, parameters, salt)."""
    library = _libcrypt()
    assert library is not None, "the tests need libcrypt (Debian's libcrypt1)"
    return str(library.crypt(password.encode(), setting.encode()).decode())


SETTINGS = {
    "yescrypt": "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$",
    "SHA-512": "$6$rounds=5000$saltsaltsaltsalt$",
    "SHA-256": "$5$saltsalt$",
    "bcrypt": "$2b$05$abcdefghijklmnopqrstuu",
}


@pytest.mark.parametrize("scheme", SETTINGS)
def test_each_scheme_shadow_takes_is_accepted_whole_and_refused_cut_short(scheme):
    full = hashed(ADMIN_PASSWORD, SETTINGS[scheme])
    assert hash_problem(full) is None
    assert hash_problem(full[:-1]) == f"is an incomplete or malformed {scheme} hash (cut short when pasted?)"
    assert hash_problem(full + "\n") is not None
    assert password_matches(ADMIN_PASSWORD, full) is True
    assert password_matches("Not-" + ADMIN_PASSWORD, full) is False


@pytest.mark.parametrize("value", ["Correct-Horse-42-Battery", "$1$abcdefgh$abcdefghijklmnopqrstuv", "!", "*", ""])
def test_what_is_not_a_shadow_hash_is_refused_without_quoting_it(value):
    problem = hash_problem(value)
    assert problem == "is not a crypt(3) hash of a scheme shadow takes (yescrypt, SHA-512, SHA-256, bcrypt)"


def test_openssls_hash_as_the_readme_makes_it_is_accepted():
    assert hash_problem(crypt_hash(ADMIN_PASSWORD)) is None
