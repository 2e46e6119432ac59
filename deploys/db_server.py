"""Database server (hosts in the db_servers group).

    pyinfra inventories/prod.py deploys/db_server.py
"""

from pyinfra import host

from hardening import backups, database, firewall, sudo
from hardening.baseline import baseline
from hardening.settings import settings_for

if "db_servers" in host.groups:
    settings = settings_for(host)
    baseline(settings)
    firewall.firewall(settings)
    database.mariadb(settings)
    backups.database_backups(settings)
    sudo.lock_sudo(settings)  # last: may end passwordless sudo for the user connected as
