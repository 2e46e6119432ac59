"""The application's side of an app server: the locked account it runs as (guide 4.1)."""

from __future__ import annotations

from pydantic import Field
from pyinfra import host
from pyinfra.api import deploy

from .accounts import locked_system_account
from .data_types import HostSettings, LoginName
from .settings import settings_for


class ApplicationSettings(HostSettings):
    title = "Application"
    group = "app_servers"

    app_user: LoginName = Field(
        "application",
        description="locked account the application runs as: no home, no shell, no password (guide 4.1)",
    )


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
