"""Backup server (hosts in the backup_servers group).

    pyinfra inventories/prod.py deploys/backup_server.py
"""

from pyinfra import host

from hardening import backups, firewall, sudo
from hardening.baseline import baseline
from hardening.settings import settings_for

if "backup_servers" in host.groups:
    settings = settings_for(host)
    baseline(settings)
    firewall.firewall(settings)
    backups.backup_receiver(settings)
    sudo.lock_sudo(settings)  # last: may end passwordless sudo for the user connected as
