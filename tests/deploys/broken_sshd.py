"""Fault injection: try to land an sshd drop-in that sshd cannot parse over the managed one."""

from pyinfra import host

from pyinfra_hardening.managed_files import validated_file
from pyinfra_hardening.settings import settings_for
from pyinfra_hardening.ssh import MANAGED_DROP_IN, SshSettings, sshd_validator

settings_for(host, SshSettings)  # as every deploy does: connects through sudo with the stored password

validated_file(
    name="Land a broken sshd drop-in",
    dest=MANAGED_DROP_IN,
    content="PasswordAuthentication yes\nPermitRootLogin maybe-on-tuesdays\n",
    validator=sshd_validator(MANAGED_DROP_IN, "alice", []),
)
