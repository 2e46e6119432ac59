"""The backup server role, for the hosts of the backup_servers group (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/backup_server.py
"""

from pyinfra_hardening.roles import backup_server

backup_server()
