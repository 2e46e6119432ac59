"""Lets pyinfra itself log in where sshd asks for a TOTP code after the key, with no prompt.

paramiko answers keyboard-interactive prompts through ``auth_interactive_dumb``, which reads
the terminal. Installed from the project's config.py (pyinfra loads it before connecting), this
answers instead from the operator's secret store: a fresh TOTP code for "Verification code",
the admin's password for "Password" (an admin not enrolled yet).
"""

from __future__ import annotations

from typing import Callable

import paramiko

from . import compat, secret_store, totp


def answers_for(transport: paramiko.Transport, username: str) -> Callable[..., list[str]]:
    # Taken before the exchange starts: the PAM module counts (and rate-limits) the attempt
    # before it asks, so any waiting must happen first.
    secret = secret_store.lookup(totp.secret_name(username))
    code = (
        None if secret is None else totp.fresh_code(secret.reveal(), totp.peer_label(username, transport.getpeername()))
    )

    def handler(title: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
        answers = []
        for prompt, _echo in prompts:
            asked = prompt.strip().lower()
            if asked.startswith("verification code"):
                if code is None:
                    raise paramiko.AuthenticationException(
                        f"sshd asks {username} for a TOTP code; put the secret in "
                        f"{secret_store.where(totp.secret_name(username))}"
                    )
                answers.append(code)
            elif asked.startswith("password"):
                password = secret_store.lookup(secret_store.admin_password_name(username))
                if password is None:
                    raise paramiko.AuthenticationException(f"sshd asks {username} for a password; none stored")
                answers.append(password.reveal())
            else:
                raise paramiko.AuthenticationException(f"sshd asked {username} {prompt!r}, which has no answer")
        return answers

    return handler


def install() -> None:
    """Answer sshd's prompts in pyinfra's own logins from the store (config.py calls this)."""
    compat.answer_keyboard_interactive(answers_for)
