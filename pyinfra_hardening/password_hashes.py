"""crypt(3) password hashes as /etc/shadow takes them: complete per scheme, and checked against
the admin's password where the operator's store holds both.

A hash cut short when pasted still starts with ``$6$``; written to shadow, it matches no
password, and with root locked nobody could sudo. So each scheme's hash must have its full
length, and where the password is stored too, it must produce the hash (libcrypt, the library
shadow itself uses, on the operator's machine: Python's ``crypt`` module is gone in 3.13).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from functools import cache

B64 = "[./0-9A-Za-z]"
# Each scheme's complete form (salt, parameters, and the hash's exact length).
SCHEMES = {
    "yescrypt": re.compile(rf"\$y\${B64}+\${B64}{{1,86}}\${B64}{{43}}"),
    "gost-yescrypt": re.compile(rf"\$gy\${B64}+\${B64}{{1,86}}\${B64}{{43}}"),
    "SHA-512": re.compile(rf"\$6\$(rounds=[0-9]{{4,9}}\$)?{B64}{{1,16}}\${B64}{{86}}"),
    "SHA-256": re.compile(rf"\$5\$(rounds=[0-9]{{4,9}}\$)?{B64}{{1,16}}\${B64}{{43}}"),
    "bcrypt": re.compile(rf"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\${B64}{{53}}"),
}
PREFIXES = {"$y$": "yescrypt", "$gy$": "gost-yescrypt", "$6$": "SHA-512", "$5$": "SHA-256", "$2": "bcrypt"}


def hash_problem(hashed: str) -> str | None:
    """Why ``hashed`` cannot go into /etc/shadow, or None. Never quotes the hash."""
    scheme = next((name for prefix, name in PREFIXES.items() if hashed.startswith(prefix)), None)
    if scheme is None:
        return "is not a crypt(3) hash of a scheme shadow takes (yescrypt, SHA-512, SHA-256, bcrypt)"
    if not SCHEMES[scheme].fullmatch(hashed):
        return f"is an incomplete or malformed {scheme} hash (cut short when pasted?)"
    return None


@cache
def _libcrypt() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("crypt")
    if name is None:
        return None
    library = ctypes.CDLL(name)
    library.crypt.restype = ctypes.c_char_p
    library.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return library


def password_matches(password: str, hashed: str) -> bool | None:
    """Whether ``password`` produces ``hashed``; None where this machine's libcrypt cannot tell
    (no libcrypt, or one without the scheme, as on macOS)."""
    library = _libcrypt()
    if library is None:
        return None
    result = library.crypt(password.encode(), hashed.encode())
    if not result or result.startswith(b"*"):
        return None
    return bool(result.decode() == hashed)
