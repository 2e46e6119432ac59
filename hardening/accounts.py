"""Who may log in: admin users (guide 3.6), a locked root (3.9), a locked application user (4.1)."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, deploy, operation
from pyinfra.api.hiddenvalue import HiddenValue
from pyinfra.facts.server import Users
from pyinfra.operations import server

from .secrets import Secret
from .settings import Settings

NO_LOGIN_SHELL = "/usr/sbin/nologin"


def _shadow_field(user: str) -> str | None:
    entry = host.get_fact(Users).get(user)
    return entry["password"] if entry else None


@operation()
def password_hash(user: str, hashed: Secret):
    """Set ``user``'s shadow password to ``hashed``; the hash never shows in pyinfra's output."""
    if _shadow_field(user) == hashed.reveal():
        host.noop(f"{user}'s password hash is already set")
        return
    yield StringCommand("usermod", "-p", QuoteString(HiddenValue(hashed.reveal())), QuoteString(user))


@operation()
def locked_password(user: str):
    """No password can log in as ``user``: a shadow field of ``*`` matches no password."""
    field = _shadow_field(user)
    if field is not None and field.startswith(("*", "!")):
        host.noop(f"{user}'s password is already locked")
        return
    yield StringCommand("usermod", "-p", QuoteString("*"), QuoteString(user))


@deploy("Admin users")
def admin_users(settings: Settings):
    server.group(name=f"Admin group {settings.admin_group}", group=settings.admin_group)
    for admin in settings.admin_users:
        server.user(
            name=f"Admin {admin.name}: account in {settings.admin_group}, bash, SSH keys",
            user=admin.name,
            groups=[settings.admin_group],
            append=True,  # keep any groups the admin already has
            shell="/bin/bash",
            home=f"/home/{admin.name}",
            create_home=True,
            public_keys=list(admin.ssh_keys),
            delete_keys=True,  # a key removed from data is revoked on the next run
        )
        password_hash(
            name=f"Admin {admin.name}: password hash from the secret store",
            user=admin.name,
            hashed=admin.password_hash,
        )


@deploy("Root account")
def lock_root(settings: Settings):
    if settings.lock_root_password:
        locked_password(name="Lock root's password (admins use sudo)", user="root")


@deploy("Application user")
def application_user(settings: Settings):
    server.user(
        name=f"Application user {settings.app_user}: system account, no home, no login shell",
        user=settings.app_user,
        system=True,
        shell=NO_LOGIN_SHELL,
        home="/nonexistent",
        ensure_home=False,
        create_home=False,
    )
    locked_password(name=f"Application user {settings.app_user}: no password", user=settings.app_user)
