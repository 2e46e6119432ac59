"""Settings for session stores (the cache_servers group); group_data/all.py has the rest.

Redis listens on the host's private_ip only, over TLS only, and takes only clients with a
certificate from the fleet CA (each app server gets one); the firewall admits its port and SSH
only from the app servers' private_ip and admin_cidrs. The application's user and password,
and an admin user's for root on this host (redis-admin), are generated into the secret store
on the first apply; the app servers' production config carries the application's.
"""


# Session store
# redis_port = 6379  # Redis's TLS port on the private address (there is no plaintext port); only the app servers' private addresses may reach it
# redis_tls_protocols = 'TLSv1.3'  # TLS versions Redis accepts: 'TLSv1.3', or 'TLSv1.2 TLSv1.3' for clients without 1.3 (1.2 with ECDHE-ECDSA AEAD suites only)
# redis_persistence = 'none'  # how Redis keeps data across restarts: 'none' (sessions live in memory only: no user data at rest), 'rdb' (snapshots) or 'aof' (an append-only log), in /var/lib/redis (750)
# redis_app_user = 'application'  # the application's Redis user; its password is generated into the secret store and delivered in the app servers' production config; never 'default' or 'admin'
# redis_app_keys = ['session:*']  # the only keys the application's user may touch (ACL key patterns); at least one, and never '*' alone
# redis_app_commands = ['+@read', '+@write', '+@keyspace', '+@connection', '+@transaction', '-@scripting']  # what the application's user may run, after '-@all' and before '-@dangerous -@admin' (which always come last: FLUSHALL, KEYS, CONFIG, DEBUG, MIGRATE, ACL ... stay refused); no pub/sub channels
# redis_disabled_commands = ['config']  # commands renamed away for every user, the admin too (rename-command NAME ""); acl, auth and hello must stay. CONFIG by default: settings change through data and a run, never live (the Redis checklist: disable commands nobody needs)
