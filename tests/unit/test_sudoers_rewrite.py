"""How a sudoers file is rewritten so that every rule asks for a password."""

from pyinfra_hardening.sudo import require_password


def test_nopasswd_tags_are_removed_and_the_rest_kept():
    lines = [
        "Defaults\tenv_reset",
        "%sudo\tALL=(ALL:ALL) NOPASSWD: ALL",
        "debian ALL=(ALL) NOPASSWD:ALL",
        "ops ALL=(root) NOPASSWD: /usr/bin/systemctl, PASSWD: /bin/sh",
    ]
    assert require_password(lines).splitlines() == [
        "Defaults\tenv_reset",
        "%sudo\tALL=(ALL:ALL) ALL",
        "debian ALL=(ALL) ALL",
        "ops ALL=(root) /usr/bin/systemctl, PASSWD: /bin/sh",
    ]


def test_defaults_that_skip_authentication_are_disabled():
    assert require_password(["Defaults:deploy !authenticate"]) == (
        "# disabled by pyinfra-hardening (sudo must ask a password): Defaults:deploy !authenticate\n"
    )


def test_comments_are_left_as_they_are():
    assert require_password(["# %sudo ALL=(ALL) NOPASSWD: ALL"]) == "# %sudo ALL=(ALL) NOPASSWD: ALL\n"
