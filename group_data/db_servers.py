"""Settings for database servers (the db_servers group); group_data/all.py has the rest.

The firewall admits the database port and SSH only from the app servers' private_ip (read from
the inventory) and admin_cidrs. The database's own keys arrive with the database deploy.
"""

# database_port = 3306  # the database's TCP port; only the app servers' private addresses may reach it (guide 3.11)
