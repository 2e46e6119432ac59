"""pyinfra loads this file before it connects (runs start from the repo root).

Re-runs log in as an admin with key + TOTP: the code comes from the operator's secret store.
"""

from pyinfra_hardening import ssh_login

ssh_login.install()
