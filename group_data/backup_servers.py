"""Settings for backup servers (the backup_servers group); group_data/all.py has the rest.

The backup server gets the baseline from all.py; its firewall admits SSH only from the
database servers' private_ip and admin_cidrs. The account the database servers copy their
encrypted backups to (db-backup) takes only their key, only from their addresses, and can only
add files to /srv/db-backups/incoming; what arrives is made root's and read-only at once.
"""


# Backup drop box
# offsite_backup_keep = 30  # how many backups of each kind from each host a backup server keeps, newest first
