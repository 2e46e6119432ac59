"""Lets pyinfra itself log in where sshd asks for a TOTP code after the key, with no prompt.

paramiko answers keyboard-interactive prompts through ``auth_interactive_dumb``, which reads
the terminal. Installed from the repo's config.py (pyinfra loads it before connecting), this
answers instead from the operator's secret store: a fresh TOTP code for "Verification code",
the admin's password for "Password" (an admin not enrolled yet).
"""

from __future__ import annotations

import paramiko

from . import secrets, totp


def answers_for(transport: paramiko.Transport, username: str):
    # Taken before the exchange starts: the PAM module counts (and rate-limits) the attempt
    # before it asks, so any waiting must happen first.
    secret = secrets.lookup(totp.secret_name(username))
    code = secret and totp.fresh_code(secret.reveal(), totp.peer_label(username, transport.getpeername()))

    def handler(title, instructions, prompts):
        answers = []
        for prompt, _echo in prompts:
            asked = prompt.strip().lower()
            if asked.startswith("verification code"):
                if code is None:
                    raise paramiko.AuthenticationException(
                        f"sshd asks {username} for a TOTP code; put the secret in "
                        f"{secrets.where(totp.secret_name(username))}"
                    )
                answers.append(code)
            elif asked.startswith("password"):
                password = secrets.lookup(secrets.admin_password_name(username))
                if password is None:
                    raise paramiko.AuthenticationException(f"sshd asks {username} for a password; none stored")
                answers.append(password.reveal())
            else:
                raise paramiko.AuthenticationException(f"sshd asked {username} {prompt!r}, which has no answer")
        return answers

    return handler


def _answering(original):
    def auth_interactive_dumb(self, username, handler=None, submethods=""):
        return original(self, username, handler or answers_for(self, username), submethods)

    auth_interactive_dumb.answers_from_store = True
    return auth_interactive_dumb


def install() -> None:
    for transport_class in (paramiko.Transport, paramiko.transport.ServiceRequestingTransport):
        method = transport_class.__dict__.get("auth_interactive_dumb")
        if method is not None and not getattr(method, "answers_from_store", False):
            transport_class.auth_interactive_dumb = _answering(method)
