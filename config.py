"""pyinfra loads this file before it connects, when a run starts in this directory.

Re-runs log in as an admin with key + TOTP: the code comes from the operator's secret store.
"""

from pyinfra_hardening import ssh_login

ssh_login.install()
