"""Every server role, each on the hosts of its group, in one deploy (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/all_servers.py
"""

from pyinfra_hardening.roles import all_servers

all_servers()
