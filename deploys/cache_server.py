"""The cache server role, for the hosts of the cache_servers group (pyinfra_hardening.roles).

pyinfra inventories/prod.py deploys/cache_server.py
"""

from pyinfra_hardening.roles import cache_server

cache_server()
