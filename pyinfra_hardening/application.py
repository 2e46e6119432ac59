"""The application's side of an app server: the locked account it runs as (guide 4.1), and its
production config, kept on the server and readable by that account alone (guide 4.5): where
the database and the session store are, their credentials, and the fleet CA's files for
verified TLS connections to both (4.2)."""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import systemd
from pyinfra.operations.util import any_changed

from . import access_rules, compat, fleet, fleet_tls, secret_store, services, session_store
from .accounts import AccountSettings, locked_system_account
from .backups import ACCOUNT as BACKUP_ACCOUNT
from .data_types import HostSettings, LoginName, RemoteDirectory, described, one_of
from .database import APP_DATABASE_PASSWORD, DatabaseSettings, random_password
from .managed_files import directory, plain_file, render, validated_file
from .settings import Problem, settings_for, stored, validated

if TYPE_CHECKING:
    from pyinfra.api.host import Host

DEFAULT_CONFIG_DIR = "/usr/local/application/config"
CONFIG_FILES = {"env": "production.env", "json": "production.json"}
# The passwords' places in each format, masked in diffs.
PASSWORD_SECRETS = {"env": r"(?m)^(?:DB|REDIS)_PASSWORD=(.+)$", "json": r'"password": "((?:[^"\\]|\\.)*)"'}
CLIENT_KEY, CLIENT_CERTIFICATE = "database-client.key", "database-client.pem"
# What every .env reader (docker's env-file, systemd's EnvironmentFile, dotenv, a shell) reads
# alike when unquoted: no quotes, spaces, $, backslashes or backticks.
ENV_VALUE = re.compile(r"^[A-Za-z0-9._~+/=@%:,-]+$")
ConfigFormat = Annotated[str, one_of(*CONFIG_FILES)]
# systemd reads \\ and % in ExecStart= as escapes and specifiers: refused rather than translated.
AppCommand = Annotated[
    str,
    StringConstraints(pattern=r"^/[A-Za-z0-9._/+-]+( [^\\%]*)?$", max_length=1024),
    described(
        "must be a command line that starts with an absolute path, like '/usr/bin/node /srv/app/server.js', "
        "without backslashes or %"
    ),
]
SERVICE_UNIT = "/etc/systemd/system/application.service"


class ApplicationSettings(HostSettings):
    title = "Application"
    group = "app_servers"

    app_user: LoginName = Field(
        "application",
        description="locked account the application runs as: no home, no shell, no password (guide 4.1); "
        "never an admin's, root's or a system account's name",
    )
    app_config_dir: RemoteDirectory = Field(
        DEFAULT_CONFIG_DIR,
        description="where the production config and the database client's key and certificate live: "
        "app_user's alone (700, files 400; guide 4.5); written when the inventory has a db server",
    )
    app_command: AppCommand | None = Field(
        None,
        description="the command that starts the application, an absolute path first (like "
        "'/usr/bin/node /srv/app/server.js', outside /home); set, it runs as app_user in the sandboxed systemd "
        "service application.service (writable: /var/lib/application and /run/application only), with the .env "
        "config as its environment; None: no service",
    )
    app_config_format: ConfigFormat = Field(
        "env",
        description="the production config's format: 'env' (production.env, KEY=value lines) or "
        "'json' (production.json, a \"database\" object)",
    )

    def problems(self, host: Host) -> list[Problem]:
        accounts, _ = validated(host, AccountSettings, in_use=False)  # its own rules report the rest
        if accounts is None:
            return []
        taken = access_rules.account_taken(self.app_user, accounts)
        if self.app_user == BACKUP_ACCOUNT:
            taken = "is the backup drop box's account"
        if taken is not None:
            return [Problem(host.name, "app_user", self.app_user, taken, "give the application an account of its own")]
        problems = access_rules.existing_account_problems(host, "app_user", self.app_user, person=False)
        db_host, cache_host = config_stores(host)
        if db_host is None and cache_host is None:
            return problems
        admitting = [name for name, peer in (("the database", db_host), ("the session store", cache_host)) if peer]
        verb = "admits" if len(admitting) == 1 else "admit"
        problems += access_rules.needs_private_ip(host, f"{' and '.join(admitting)} {verb} the application by it")
        problems += validated(host, fleet_tls.FleetTlsSettings)[1]  # the client certificate's CA
        secrets = []
        if db_host is not None:
            problems += validated(db_host, DatabaseSettings, in_use=False)[1]
            secrets.append(APP_DATABASE_PASSWORD)
        if cache_host is not None:
            problems += validated(cache_host, session_store.SessionStoreSettings, in_use=False)[1]
            secrets.append(session_store.APP_REDIS_PASSWORD)
        for name in secrets:
            password = stored(host, name, "app_config_format", self.app_config_format, problems)
            if self.app_config_format == "env" and password is not None and not ENV_VALUE.match(password.reveal()):
                problems.append(
                    Problem(
                        host.name,
                        "app_config_format",
                        self.app_config_format,
                        f"cannot carry the stored {name} as every .env reader reads it "
                        "(it holds a quote, space, $, backslash, backtick or line break)",
                        "use app_config_format = 'json', or store a password of A-Z a-z 0-9 . _ ~ + / = @ % : , - "
                        "(delete it to have one generated), then re-run the db or cache role before the app role",
                    )
                )
        return problems


def config_stores(host: Host) -> tuple[Host | None, Host | None]:
    """The database server and the session store the application uses: the first of
    ``db_servers`` and of ``cache_servers`` with a private address (None for a group without)."""
    return (
        fleet.first_with_private_ip(host.inventory, fleet.DB_SERVERS),
        fleet.first_with_private_ip(host.inventory, fleet.CACHE_SERVERS),
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


def config_directory(settings: ApplicationSettings) -> OperationMeta:
    """``app_config_dir``, ``app_user``'s alone (700): the config and the application's keys."""
    folder, user = settings.app_config_dir, settings.app_user
    return directory(name=f"{folder} is {user}'s alone", path=folder, user=user, group=user, mode="700")


def database_section(db_host: Host) -> dict[str, object]:
    """The database's part of the production config (its password from the store)."""
    database, _ = validated(db_host, DatabaseSettings, in_use=False)
    assert database is not None  # ApplicationSettings.problems refuses the run otherwise
    return {
        "host": db_host.data.get("private_ip"),
        "port": database.database_port,
        "name": database.app_database,
        "user": database.app_database_user,
        "password": secret_store.generated(APP_DATABASE_PASSWORD, random_password, compat.executing()).reveal(),
    }


def session_store_section(cache_host: Host) -> dict[str, object]:
    """The session store's part of the production config (its password from the store)."""
    store, _ = validated(cache_host, session_store.SessionStoreSettings, in_use=False)
    assert store is not None  # ApplicationSettings.problems refuses the run otherwise
    password = secret_store.generated(session_store.APP_REDIS_PASSWORD, random_password, compat.executing())
    return {
        "host": cache_host.data.get("private_ip"),
        "port": store.redis_port,
        "user": store.redis_app_user,
        "key_patterns": store.redis_app_keys,
        "password": password.reveal(),
    }


@deploy("Application production config")
def production_config() -> OperationMeta | None:
    """
    The application's production config in ``app_config_dir`` (guide 4.5): the database
    server's private address, port, database, account and password, the session store's
    address, port, user and password (passwords from the secret store), and the paths of the
    fleet CA and of a client certificate for this app server (key made here), which both take.
    The folder is ``app_user``'s alone (700) and so is every file in it (400). Nothing when the
    inventory has neither a db server nor a cache server. Returns the config file's operation
    (None without one).

    Example:

    .. code:: python

        from pyinfra_hardening import application
        application.production_config()
    """
    settings = settings_for(host, ApplicationSettings)
    db_host, cache_host = config_stores(host)
    if db_host is None and cache_host is None:
        host.log("No db_servers or cache_servers in the inventory: no production config is written")
        return None
    private_ip = settings_for(host, fleet.FleetSettings).private_ip
    assert private_ip is not None
    user, directory = settings.app_user, settings.app_config_dir
    key, certificate = posixpath.join(directory, CLIENT_KEY), posixpath.join(directory, CLIENT_CERTIFICATE)
    config_directory(settings)
    fleet_tls.host_certificate(key, certificate, user, private_ip, client=True, certificate_mode="400")

    def content() -> str:
        return render(
            posixpath.join(DEFAULT_CONFIG_DIR, CONFIG_FILES[settings.app_config_format]),
            database=database_section(db_host) if db_host is not None else None,
            session_store=session_store_section(cache_host) if cache_host is not None else None,
            ca=fleet_tls.TRUST_BUNDLE,
            certificate=certificate,
            key=key,
        )

    config = validated_file(
        name=f"The application's production config, {user}'s alone (secret)",
        dest=posixpath.join(directory, CONFIG_FILES[settings.app_config_format]),
        content=content,
        validator=None,
        user=user,
        group=user,
        mode="400",
        secret_pattern=PASSWORD_SECRETS[settings.app_config_format],
    )
    # A config left in the other format would still hold the password.
    other = posixpath.join(directory, CONFIG_FILES["json" if settings.app_config_format == "env" else "env"])
    plain_file(name=f"No production config in the other format ({other})", path=other, present=False)
    return config


@deploy("Application service")
def application_service(config: OperationMeta | None = None, certificate: OperationMeta | None = None) -> None:
    """
    With ``app_command`` set, the systemd service ``application.service`` that runs it as
    ``app_user``, sandboxed: no new privileges, no capabilities, the system read-only, a
    private /tmp and devices, IPv4, IPv6 and local sockets only, and a system call filter
    (``systemd-analyze security`` rates it 2.0 or better). Its environment is the ``.env``
    production config, when there is one. Nothing without ``app_command``.

    + config: the production config's operation (``production_config()``): the service restarts
      when it changed
    + certificate: the operation of the certificate it serves TLS with
      (``tls_front.application_certificate()``): likewise

    Example:

    .. code:: python

        from pyinfra_hardening import application
        application.application_service()
    """
    settings = settings_for(host, ApplicationSettings)
    if settings.app_command is None:
        return
    environment = None
    if settings.app_config_format == "env" and config_stores(host) != (None, None):
        environment = posixpath.join(settings.app_config_dir, CONFIG_FILES["env"])
    unit = validated_file(
        name="The application's sandboxed service",
        dest=SERVICE_UNIT,
        content=render(
            SERVICE_UNIT, user=settings.app_user, command=settings.app_command, environment_file=environment
        ),
        validator=None,
    )
    systemd.daemon_reload(name="systemd reads the application's unit", _if=any_changed(unit))
    services.unit_running(name="The application runs", unit="application")
    systemd.service(
        name="Restart the application (new unit, config or certificate)",
        service="application",
        restarted=True,
        _if=any_changed(*(operation for operation in (unit, config, certificate) if operation is not None)),
    )
