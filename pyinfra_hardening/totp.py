"""TOTP on the operator's side: enrollment secrets in the secret store, and fresh codes.

Each enrolled admin has ``admin-NAME.totp-secret`` (base32) and ``admin-NAME.totp-scratch-codes``
(emergency codes, one a line) in the store. A missing pair is generated here, once, with an
enrollment sheet (otpauth URI and QR code) written beside it and shown if a person is watching.
"""

from __future__ import annotations

import io
import json
import re
import secrets as random
import sys
import time

import pyotp
import qrcode

from . import secret_store
from .secret_store import Secret

PERIOD = 30
SCRATCH_CODES = 5
ISSUER = "pyinfra-hardening"
BASE32_RE = re.compile(r"[A-Z2-7]{16,}")
SCRATCH_CODE_RE = re.compile(r"[0-9]{8}")
# google-authenticator options: one code per 30 s window, and the window either side of it
# accepted; a code works once; at most 3 attempts per 30 s.
RATE_LIMIT_LOGINS, RATE_LIMIT_SECONDS = 3, 30
FILE_OPTIONS = (
    '" TOTP_AUTH',
    '" DISALLOW_REUSE',
    f'" RATE_LIMIT {RATE_LIMIT_LOGINS} {RATE_LIMIT_SECONDS}',
    '" WINDOW_SIZE 3',
)
USED_COUNTERS_FILE = "totp-used-windows.json"


def secret_name(admin: str) -> str:
    return f"admin-{admin}.totp-secret"


def scratch_name(admin: str) -> str:
    return f"admin-{admin}.totp-scratch-codes"


def problem_with(secret: Secret | None, scratch: Secret | None) -> str | None:
    if secret is not None and not BASE32_RE.fullmatch(secret.reveal()):
        return f"the TOTP secret in {secret.source} is not base32 of at least 16 characters (80 bits)"
    if scratch is not None and not all(SCRATCH_CODE_RE.fullmatch(code) for code in scratch.reveal().split()):
        return f"the scratch codes in {scratch.source} are not 8-digit numbers, one a line"
    return None


def enroll(admin: str, executing: bool) -> tuple[Secret, Secret]:
    """The admin's TOTP secret and scratch codes; whichever the store lacks is generated there
    while pyinfra executes (a secret the operator gave keeps its value), with an enrollment
    sheet when anything was. While planning or on ``--dry``, stand-ins leave the store alone."""
    had_both = secret_store.lookup(secret_name(admin)) and secret_store.lookup(scratch_name(admin))
    secret = secret_store.generated(secret_name(admin), lambda: pyotp.random_base32(32), executing)
    scratch = secret_store.generated(
        scratch_name(admin),
        lambda: "\n".join(f"{random.randbelow(10**8):08d}" for _ in range(SCRATCH_CODES)),
        executing,
    )
    if executing and not had_both and problem_with(secret, scratch) is None:
        _write_enrollment_sheet(admin, secret.reveal(), scratch.reveal())
    return secret, scratch


def _write_enrollment_sheet(admin: str, value: str, codes: str) -> None:
    # One secret serves every host the admin logs in to, so the label names the admin alone.
    uri = pyotp.TOTP(value).provisioning_uri(name=admin, issuer_name=ISSUER)
    qr = qrcode.QRCode(border=1)
    qr.add_data(uri)
    picture = io.StringIO()
    qr.print_ascii(out=picture, invert=True)
    sheet = (
        f"TOTP enrollment for {admin} ({ISSUER}). Scan the QR code with an authenticator app,\n"
        f"or enter the URI by hand. Keep the scratch codes somewhere safe: each logs in once.\n\n"
        f"{uri}\n\n{picture.getvalue()}\nScratch codes:\n{codes}\n"
    )
    path = secret_store.store(f"admin-{admin}.totp-enrollment.txt", sheet)
    # Shown once, to a person at a terminal; never into a log or a pipe.
    if sys.stderr.isatty():
        sys.stderr.write(f"\n{sheet}\n(kept in {path})\n")
    else:
        sys.stderr.write(f"New TOTP secret for {admin}: enrollment sheet written to {path}\n")


def google_authenticator_file(secret: Secret, scratch: Secret) -> str:
    """The ~/.google_authenticator text: secret, options, scratch codes."""
    return "\n".join([secret.reveal(), *FILE_OPTIONS, *scratch.reveal().split()]) + "\n"


def fresh_code(secret: str, who: str) -> str:
    """A code for ``who`` (``user@address:port``) that the server will take, waiting if needed.

    The server refuses a code twice (DISALLOW_REUSE), takes the next window's code early
    (WINDOW_SIZE 3), and turns away a fourth login within 30 s before even asking (RATE_LIMIT).
    What was used is remembered in the secret store, across runs and parallel logins.
    """
    state_path = secret_store.secrets_dir() / USED_COUNTERS_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    used = state.get(who, {"counter": -1, "times": []})
    now = time.time()
    recent = [moment for moment in used["times"] if moment > now - RATE_LIMIT_SECONDS - 1]
    start = now
    if len(recent) >= RATE_LIMIT_LOGINS:
        start = recent[-RATE_LIMIT_LOGINS] + RATE_LIMIT_SECONDS + 1
    counter = max(int(start) // PERIOD, used["counter"] + 1)
    start = max(start, (counter - 1) * PERIOD + 1)  # the code is accepted from the window before
    # Reserved before any wait, so parallel logins never pick the same code or moment.
    state[who] = {"counter": counter, "times": [*recent, start][-RATE_LIMIT_LOGINS:]}
    secret_store.store(USED_COUNTERS_FILE, json.dumps(state))
    if start > now:
        time.sleep(start - now)
    return pyotp.TOTP(secret).at(counter * PERIOD)


def peer_label(user: str, address: tuple) -> str:
    return f"{user}@{address[0]}:{address[1]}"
