"""The db server role, for the hosts of the db_servers group (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/db_server.py
"""

from pyinfra_hardening.roles import db_server

db_server()
