"""The application's side of an app server: the locked account it runs as (guide 4.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from pyinfra import host
from pyinfra.api import deploy

from . import access_rules
from .accounts import AccountSettings, locked_system_account
from .backups import ACCOUNT as BACKUP_ACCOUNT
from .data_types import HostSettings, LoginName
from .settings import Problem, settings_for, validated

if TYPE_CHECKING:
    from pyinfra.api.host import Host


class ApplicationSettings(HostSettings):
    title = "Application"
    group = "app_servers"

    app_user: LoginName = Field(
        "application",
        description="locked account the application runs as: no home, no shell, no password (guide 4.1); "
        "never an admin's, root's or a system account's name",
    )

    def problems(self, host: Host) -> list[Problem]:
        accounts, _ = validated(host, AccountSettings, in_use=False)  # its own rules report the rest
        if accounts is None:
            return []
        taken = access_rules.account_taken(self.app_user, accounts)
        if self.app_user == BACKUP_ACCOUNT:
            taken = "is the backup drop box's account"
        if taken is None:
            return access_rules.existing_account_problems(host, "app_user", self.app_user, person=False)
        return [Problem(host.name, "app_user", self.app_user, taken, "give the application an account of its own")]


@deploy("Application user")
def application_user() -> None:
    """
    The system account ``app_user``: no home, no login shell, no password.

    Example:

    .. code:: python

        from pyinfra_hardening import application
        application.application_user()
    """
    app_user = settings_for(host, ApplicationSettings).app_user
    locked_system_account(app_user, "/nonexistent", "Application user")
