"""Application server (hosts in the app_servers group).

    pyinfra inventories/prod.py deploys/app_server.py
"""

from pyinfra import host

from hardening import accounts, firewall, sudo
from hardening.baseline import baseline
from hardening.settings import settings_for

if "app_servers" in host.groups:
    settings = settings_for(host)
    baseline(settings)
    accounts.application_user(settings)
    firewall.firewall(settings)
    sudo.lock_sudo(settings)  # last: may end passwordless sudo for the user connected as
