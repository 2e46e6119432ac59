"""TOTP on the operator's side: enrollment once, and codes the server will accept."""

from __future__ import annotations

import pyotp
import pytest

from pyinfra_hardening import totp


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDENING_SECRETS_DIR", str(tmp_path / "store"))
    return tmp_path / "store"


def test_enrollment_generates_once_and_never_rotates(store, capsys):
    secret, scratch = totp.enroll("alice", executing=True)
    again, _ = totp.enroll("alice", executing=True)
    assert again.reveal() == secret.reveal()
    assert totp.problem_with(secret, scratch) is None
    assert len(scratch.reveal().split()) == totp.SCRATCH_CODES
    for path in store.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    sheet = (store / "admin-alice.totp-enrollment.txt").read_text()
    assert f"secret={secret.reveal()}" in sheet and "issuer=pyinfra-hardening" in sheet
    # Not a terminal here: the sheet's place is named, the secret is not printed.
    assert secret.reveal() not in capsys.readouterr().err


def test_google_authenticator_file_has_secret_options_and_scratch_codes(store):
    secret, scratch = totp.enroll("alice", executing=True)
    lines = totp.google_authenticator_file(secret, scratch).splitlines()
    assert lines[0] == secret.reveal()
    assert '" DISALLOW_REUSE' in lines and '" RATE_LIMIT 3 30' in lines and '" TOTP_AUTH' in lines
    assert lines[-totp.SCRATCH_CODES :] == scratch.reveal().split()


def test_a_secret_that_is_not_base32_is_reported(store):
    totp.secret_store.store(totp.secret_name("bob"), "not-base32!")
    secret, scratch = totp.enroll("bob", executing=True)
    assert "not base32" in totp.problem_with(secret, scratch)


class FakeClock:
    def __init__(self, start: float):
        self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_fresh_codes_are_never_reused_and_respect_the_rate_limit(store, monkeypatch):
    clock = FakeClock(1_800_000_010.0)
    monkeypatch.setattr(totp.time, "time", clock.time)
    monkeypatch.setattr(totp.time, "sleep", clock.sleep)
    secret = pyotp.random_base32()
    logins = []  # (moment, code)
    for _ in range(6):
        code = totp.fresh_code(secret, "alice@10.0.0.1:22")
        logins.append((clock.now, code))
        clock.now += 0.5
    codes = [code for _, code in logins]
    assert len(set(codes)) == len(codes), "a code was handed out twice"
    for moment, code in logins:
        # WINDOW_SIZE 3: the server takes the code of this window or the one either side.
        assert pyotp.TOTP(secret).verify(code, for_time=moment, valid_window=1)
    for first, (moment, _) in zip(logins, logins[3:]):
        assert moment - first[0] > totp.RATE_LIMIT_SECONDS, "a fourth login within 30 s"


def test_other_users_and_hosts_do_not_wait_for_each_other(store, monkeypatch):
    clock = FakeClock(1_800_000_010.0)
    monkeypatch.setattr(totp.time, "time", clock.time)
    monkeypatch.setattr(totp.time, "sleep", clock.sleep)
    secret = pyotp.random_base32()
    for who in ("alice@10.0.0.1:22", "alice@10.0.0.2:22", "carol@10.0.0.1:22"):
        totp.fresh_code(secret, who)
    assert clock.now == 1_800_000_010.0


def test_a_given_secret_is_kept_and_gets_scratch_codes(store):
    given = pyotp.random_base32(32)
    totp.secret_store.store(totp.secret_name("dave"), given)
    secret, scratch = totp.enroll("dave", executing=True)
    assert secret.reveal() == given
    assert totp.problem_with(secret, scratch) is None
    assert totp.google_authenticator_file(secret, scratch).startswith(given + "\n")
