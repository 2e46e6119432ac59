"""The operating system's hardening, as pyinfra tests its operations: facts in, commands or a
noop reason out; and the texts written into files users and packages also edit."""

from __future__ import annotations

import subprocess

import pytest

from harness.operations import run_operation
from pyinfra_hardening import accounts, os_hardening
from pyinfra_hardening.managed_files import render
from pyinfra_hardening.os_hardening import (
    BLOCK_END,
    BLOCK_START,
    ExecutableByOthers,
    KernelParameters,
    KernelParameterState,
    PendingSecurityUpdates,
)

WANTED = {"kernel.kptr_restrict": 2, "net.ipv4.conf.all.rp_filter": 1}
KEYS = (("keys", tuple(sorted(WANTED))),)


def live(kptr: KernelParameterState, rp_filter: KernelParameterState) -> dict:
    return {(KernelParameters, KEYS): {"kernel.kptr_restrict": kptr, "net.ipv4.conf.all.rp_filter": rp_filter}}


def test_kernel_parameters_as_configured_are_a_noop():
    outcome = run_operation(
        os_hardening.live_kernel_parameters,
        live(KernelParameterState("2", True), KernelParameterState("1", True)),
        parameters=WANTED,
    )
    assert not outcome.changes and outcome.noop


def test_a_drifted_kernel_parameter_is_set_and_checked():
    outcome = run_operation(
        os_hardening.live_kernel_parameters,
        live(KernelParameterState("0", True), KernelParameterState("1", True)),
        parameters=WANTED,
    )
    assert outcome.commands == ['sysctl -q -w kernel.kptr_restrict=2 && [ "$(sysctl -n kernel.kptr_restrict)" = 2 ]']


def test_parameters_a_container_cannot_set_or_its_kernel_lacks_report_no_change():
    """A container's /proc/sys is its host's: a re-run must not report a change it cannot make."""
    outcome = run_operation(
        os_hardening.live_kernel_parameters,
        live(KernelParameterState("0", False), KernelParameterState(None, False)),
        parameters=WANTED,
    )
    assert not outcome.changes and outcome.noop


def test_the_kernel_parameters_fact_reads_value_and_access_per_key():
    fact = KernelParameters()
    assert fact.process(["kernel.kptr_restrict r 0", "net.core.bpf_jit_harden -", "fs.suid_dumpable w 0"]) == {
        "kernel.kptr_restrict": KernelParameterState("0", False),
        "net.core.bpf_jit_harden": KernelParameterState(None, False),
        "fs.suid_dumpable": KernelParameterState("0", True),
    }
    # The command runs in a real shell: a key maps to its /proc/sys path.
    output = subprocess.run(
        ["sh", "-c", fact.command(("kernel.ostype", "no.such.key"))], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    parsed = fact.process(output)
    assert parsed["kernel.ostype"].value == "Linux" and parsed["no.such.key"].value is None


def test_the_sysctl_file_lists_each_parameter_so_a_missing_one_does_not_fail_the_boot():
    text = os_hardening.kernel_parameters_text({"kernel.sysrq": 0, "fs.suid_dumpable": 0})
    assert text.splitlines()[1:] == ["-fs.suid_dumpable = 0", "-kernel.sysrq = 0"]


def test_login_defs_keys_are_set_once_in_place_and_the_rest_kept():
    lines = ["# UMASK 077 in a comment", "UMASK\t\t022", "PASS_MAX_DAYS\t99999", "UMASK 002", "ENCRYPT_METHOD SHA512"]
    text = os_hardening.with_settings(lines, {"UMASK": "027", "PASS_MAX_DAYS": "365", "PASS_MIN_DAYS": "1"})
    assert text.splitlines() == [
        "# UMASK 077 in a comment",
        "UMASK\t027",
        "PASS_MAX_DAYS\t365",
        "ENCRYPT_METHOD SHA512",
        "PASS_MIN_DAYS\t1",
    ]
    assert os_hardening.with_settings(text.splitlines(), {"UMASK": "027"}) == text


def test_the_profile_block_is_replaced_not_repeated_and_removed_when_empty():
    first = os_hardening.with_block(["# Debian's /etc/profile", "umask 022"], ["ulimit -c 0"])
    assert first.splitlines() == ["# Debian's /etc/profile", "umask 022", BLOCK_START, "ulimit -c 0", BLOCK_END]
    again = os_hardening.with_block(first.splitlines(), ["ulimit -c 0", "TMOUT=600"])
    assert again.count(BLOCK_START) == 1 and "TMOUT=600" in again
    assert os_hardening.with_block(again.splitlines(), []).splitlines() == ["# Debian's /etc/profile", "umask 022"]


def test_idle_shells_end_unless_the_timeout_is_off():
    settings = os_hardening.OsHardeningSettings()
    assert ["TMOUT=900", "readonly TMOUT", "export TMOUT"] == os_hardening.profile_block(settings)[-3:]
    off = os_hardening.OsHardeningSettings(shell_idle_timeout=0)
    assert not any("TMOUT" in line for line in os_hardening.profile_block(off))


def test_the_profile_block_is_valid_shell():
    text = os_hardening.with_block([], os_hardening.profile_block(os_hardening.OsHardeningSettings()))
    assert subprocess.run(["sh", "-n"], input=text, text=True).returncode == 0


@pytest.mark.parametrize(
    "distribution, line",
    [
        ("Debian", "deb http://deb.debian.org/debian-security bookworm-security main"),
        ("Ubuntu", "deb http://security.ubuntu.com/ubuntu bookworm-security main restricted universe multiverse"),
    ],
)
def test_the_security_suite_is_the_releases_own(distribution, line):
    found = os_hardening.security_suite(
        {"name": distribution, "major": 12, "minor": 0, "release_meta": {"VERSION_CODENAME": "bookworm"}}
    )
    assert found is not None and (found.line, found.suite) == (line, "bookworm-security")


def test_pending_security_updates_are_installed_by_name_keeping_config_files():
    none = run_operation(os_hardening.security_updates_installed, {PendingSecurityUpdates: []})
    assert not none.changes and none.noop == "no security updates pending"
    some = run_operation(os_hardening.security_updates_installed, {PendingSecurityUpdates: ["libssl3", "openssl"]})
    assert len(some.commands) == 1 and some.commands[0].endswith(
        "--only-upgrade -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef libssl3 openssl"
    )


def test_compilers_runnable_by_others_are_restricted_through_dpkg():
    paths = os_hardening.COMPILERS
    key = (ExecutableByOthers, (("paths", tuple(paths)),))
    assert run_operation(os_hardening.root_only_executables, {key: []}, paths=paths).noop
    outcome = run_operation(os_hardening.root_only_executables, {key: ["/usr/bin/x86_64-linux-gnu-as"]}, paths=paths)
    assert outcome.commands[0].endswith("dpkg-statoverride --update --add root root 750 /usr/bin/x86_64-linux-gnu-as")


@pytest.mark.parametrize("max_days, changes", [("", False), ("99999", False), ("365", True), (None, True)])
def test_an_admins_password_never_expires_even_one_this_run_creates(max_days, changes):
    """None: the admin does not exist yet; the run creates it with login.defs' age limit."""
    outcome = run_operation(
        accounts.password_max_age, {(accounts.PasswordMaxDays, (("user", "alice"),)): max_days}, user="alice", days=None
    )
    assert outcome.changes == changes
    if changes:
        assert outcome.commands == ["chage -M -1 alice"]


@pytest.mark.parametrize("max_days, changes", [("365", False), ("99999", True), ("", True), ("400", True)])
def test_roots_password_ages_like_any_other(max_days, changes):
    outcome = run_operation(
        accounts.password_max_age, {(accounts.PasswordMaxDays, (("user", "root"),)): max_days}, user="root", days=365
    )
    assert outcome.changes == changes
    if changes:
        assert outcome.commands == ["chage -M 365 root"]


def test_unattended_upgrades_take_security_updates_only_and_reboot_only_when_asked():
    never = render(os_hardening.UNATTENDED_UPGRADES, reboot_time=None)
    assert "#clear Unattended-Upgrade::Origins-Pattern;" in never
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in never
    at_four = render(os_hardening.UNATTENDED_UPGRADES, reboot_time="04:00")
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:00";' in at_four


def test_each_disabled_module_can_neither_load_nor_be_pulled_in():
    text = render(os_hardening.MODPROBE_FILE, modules=["usb-storage", "dccp"])
    assert "install usb-storage /bin/false\nblacklist usb-storage\n" in text and "install dccp /bin/false" in text


def test_home_folders_and_start_files_open_to_others_are_closed():
    fact = os_hardening.OpenToOthers()
    found = fact.process(["home /home/debian", "start /home/debian/.bashrc", "start /etc/skel/.my profile"])
    assert found == [("home", "/home/debian"), ("start", "/home/debian/.bashrc"), ("start", "/etc/skel/.my profile")]
    outcome = run_operation(os_hardening.private_homes, {os_hardening.OpenToOthers: found})
    # The group keeps entering a home (its own group); start files lose run bits too.
    assert outcome.commands == [
        "chmod g-w,o= /home/debian",
        "chmod g-wx,o= /home/debian/.bashrc '/etc/skel/.my profile'",
    ]
    assert run_operation(os_hardening.private_homes, {os_hardening.OpenToOthers: []}).noop
