"""The app server role, for the hosts of the app_servers group (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/app_server.py
"""

from pyinfra_hardening.roles import app_server

app_server()
