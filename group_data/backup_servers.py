"""Settings for backup servers (the backup_servers group); group_data/all.py has the rest.

The backup server gets the baseline from all.py; its firewall admits SSH only from the
database servers' private_ip and admin_cidrs. Its own keys (the backup account, how many
backups to keep) arrive with the backup deploy.
"""
