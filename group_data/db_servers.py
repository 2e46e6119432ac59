"""Settings for database servers (the db_servers group); group_data/all.py has the rest.

MariaDB listens on the host's private_ip only; the firewall admits the database port and SSH
only from the app servers' private_ip (read from the inventory) and admin_cidrs. The
application's account may connect only from those app servers. Its password, the dump
account's password and the key the backups are copied offsite with are generated into the
secret store on the first apply (README, Secrets); only the backup public key is yours to make:

    hardening-backup keygen --private-key ~/backup-private.pem --public-key keys/backup-public.pem
"""


# Database
# database_port = 3306  # the database's TCP port; only the app servers' private addresses may reach it (guide 3.11)
# app_database = 'application'  # the application's database (guide 4.6); never one of MariaDB's own (mysql, sys, ...) or test
# app_database_user = 'application'  # its account: SELECT, INSERT, UPDATE, DELETE there, from app servers only (4.6); never root, mysql or backup_dump
