"""pyinfra loads this file before it connects, when a run starts in this directory.

Every host's settings are checked before pyinfra connects to any. Re-runs log in as an admin
with key + TOTP: the code comes from the operator's secret store.
"""

from pyinfra_hardening import compat, roles, ssh_login

roles.check_before_connecting()
ssh_login.install()
compat.speed_up_runs()
# Uploads wait in /tmp: with libpam-tmpdir (which the baseline installs) a sudo session's own
# temporary folder is root's alone, where the login user's SFTP upload could not write.
TEMP_DIR = "/tmp"
