"""Example production inventory: an app server, a database server, a session store, a backup server.

Replace the addresses with yours. `private_ip` is each host's address on the private network
that the servers use to talk to each other (firewall and database rules are built from it).
No secrets here: they live in the operator's secret store (see README, "Secrets").
"""

app_servers = [
    ("app1.example.com", {"private_ip": "10.0.0.11"}),
]

db_servers = [
    ("db1.example.com", {"private_ip": "10.0.0.21"}),
]

# The session store (Redis). A database server may be one too: list it in both groups.
cache_servers = [
    ("cache1.example.com", {"private_ip": "10.0.0.26"}),
]

backup_servers = [
    ("backup1.example.com", {"private_ip": "10.0.0.31"}),
]
