"""Fault injection: try to land a sudoers drop-in with a syntax error over the managed one."""

from pyinfra import host

from pyinfra_hardening.managed_files import validated_file
from pyinfra_hardening.settings import settings_for
from pyinfra_hardening.sudo import MANAGED_DROP_IN, SUDOERS_VALIDATOR, SudoSettings

settings_for(host, SudoSettings)  # as every deploy does: connects through sudo with the stored password

validated_file(
    name="Land a broken sudoers drop-in",
    dest=MANAGED_DROP_IN,
    content="%sudo ALL=(ALL:ALL ALL\n",  # unbalanced parenthesis: visudo rejects it
    validator=SUDOERS_VALIDATOR,
    mode="440",
)
