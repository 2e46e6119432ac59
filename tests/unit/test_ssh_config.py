"""How the SSH configuration is composed, before any host sees it."""

from __future__ import annotations

from pyinfra_hardening import ssh


def test_totp_line_goes_first_in_pam_and_replaces_an_older_one():
    current = ["# PAM configuration for sshd", "auth required pam_google_authenticator.so", "@include common-auth"]
    lines = ssh.pam_sshd_lines(current, ssh.totp_pam_line(strict=True)).splitlines()
    assert lines[0].startswith("auth [success=done new_authtok_reqd=done default=die] pam_google_authenticator.so")
    assert sum("pam_google_authenticator" in line for line in lines) == 1
    assert ssh.pam_sshd_lines(current, None).count("pam_google_authenticator") == 0


def test_staged_rollout_lets_unenrolled_admins_fall_through_to_their_password():
    staged = ssh.totp_pam_line(strict=False)
    assert staged.endswith("nullok") and "ignore=ignore" in staged
    assert "nullok" not in ssh.totp_pam_line(strict=True)


def test_conflicting_settings_in_other_drop_ins_are_commented_out():
    cloud_init = ["PasswordAuthentication yes", "# PermitRootLogin yes", "ClientAliveInterval 120"]
    result = ssh.neutralise(cloud_init, {"passwordauthentication", "permitrootlogin"}).splitlines()
    assert result == [
        ssh.NEUTRALISED + "PasswordAuthentication yes",
        "# PermitRootLogin yes",
        "ClientAliveInterval 120",
    ]


def test_keywords_stop_at_the_first_match_block():
    assert ssh.keywords_of("# c\nPermitRootLogin no\nMatch User x\n  AuthenticationMethods publickey\n") == {
        "permitrootlogin"
    }


def test_main_config_gets_the_include_as_its_first_directive():
    assert ssh.main_config_with_include(["# top", ssh.INCLUDE_LINE, "UsePAM yes"]) is None
    moved = ssh.main_config_with_include(["Port 22", ssh.INCLUDE_LINE]).splitlines()
    assert moved == [ssh.INCLUDE_LINE, "Port 22"]


def test_every_supported_release_has_a_complete_crypto_profile():
    for (name, major), profile in ssh.CRYPTO_PROFILES.items():
        assert profile.policy.startswith(f"Hardened {name}"), (name, major)
        assert profile.kex and profile.macs and profile.ciphers
        assert not any(weak in profile.kex for weak in ("diffie-hellman-group14-sha1", "ecdh-sha2-nistp256"))


def drop_in(final: bool, **settings) -> str:
    """The drop-in as the SSH deploy renders it, for Debian 13 and probe admin alice."""
    return ssh.render_drop_in(
        ssh.SshSettings(**settings), ssh.CRYPTO_PROFILES[("Debian", 13)], "alice", final, admin_group="sudo"
    )


def test_stage_one_leaves_password_and_root_login_alone_but_holds_the_probe_admin_to_the_final_rule():
    staged = drop_in(final=False)
    assert "PasswordAuthentication" not in staged and "PermitRootLogin" not in staged
    assert staged.rstrip().endswith("Match User alice\n\tAuthenticationMethods publickey,keyboard-interactive")
    final = drop_in(final=True)
    assert "PermitRootLogin no\nPasswordAuthentication no\n" in final and "Match User" not in final


def test_the_legal_banner_is_shown_before_authentication_when_a_file_is_given():
    with_banner = ssh.render_drop_in(
        ssh.SshSettings(), None, "alice", True, admin_group="sudo", banner="/etc/issue.net"
    ).partition("Match ")[0]
    assert "\nBanner /etc/issue.net\n" in with_banner
    assert "Banner" not in drop_in(final=True)


def test_tunnels_and_sessions_are_held_down_except_for_admins_jumps_and_pyinfra_runs():
    final = drop_in(final=True)
    globals_, _, admins = final.partition("Match Group sudo\n")
    assert "\nAllowTcpForwarding no\n" in globals_ and "\nPermitTunnel no\n" in globals_
    assert "\nMaxSessions 2\n" in globals_
    assert admins == "\tAllowTcpForwarding local\n\tMaxSessions 10\n"
    # Stage 1 may be live while a run connects as root or the provider's user (a re-run after a
    # killed one): OpenSSH's default of 10 sessions until the last stage.
    assert "MaxSessions 2" not in drop_in(final=False).partition("Match Group")[0]


def test_allow_lists_and_paramiko_kex_are_rendered():
    text = drop_in(final=True, ssh_allow_users=["alice", "carol"], ssh_allow_groups=["sudo"])
    assert "AllowUsers alice carol\n" in text and "AllowGroups sudo\n" in text
    kex = next(line for line in text.splitlines() if line.startswith("KexAlgorithms "))
    assert kex.split()[1].split(",")[0] == "mlkem768x25519-sha256"
    assert kex.endswith("curve25519-sha256,curve25519-sha256@libssh.org")


def test_debian_13_adds_a_classic_key_exchange_only_for_a_paramiko_without_ml_kem(monkeypatch):
    debian13 = ssh.CRYPTO_PROFILES[("Debian", 13)]
    monkeypatch.setattr(ssh.compat, "paramiko_key_exchanges", lambda: {"curve25519-sha256"})
    assert ssh.for_this_client(debian13).added_kex == ssh.PARAMIKO_KEX
    monkeypatch.setattr(ssh.compat, "paramiko_key_exchanges", lambda: {"mlkem768x25519-sha256", "curve25519-sha256"})
    assert ssh.for_this_client(debian13).added_kex == ()
