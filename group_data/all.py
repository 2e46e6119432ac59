"""Settings for every host. Each commented line shows a key with its default and why it exists.

Uncomment and change a line to override it; every value is validated before any host is
touched, and the defaults are defined only in the package's settings models (this file is
generated from them by `python -m pyinfra_hardening.docs`). Secrets never go here: see
README.md, "Secrets".
"""


# Private network
# private_ip = None  # this host's private-network address, set per host; firewall and database rules use it

# Admins and root
# Required: at least one admin, with the public half of an SSH key. Their password hash goes in
# the secret store (.secrets/admin-NAME.password-hash), never here. "two_factor": False marks an
# admin not enrolled in TOTP yet (key + password until then); the default is True.
# admin_users = [{"name": "alice", "ssh_keys": ["ssh-ed25519 AAAAC3Nza... alice@laptop"]}]
# admin_group = 'sudo'  # group whose members may sudo, always with their password (guide 3.5); sudo, wheel, admin or a new group, never another system group
# lock_root_password = True  # no password can log in as root; admins use sudo (guide 3.9)

# Sudo
# sudo_require_password = True  # remove every NOPASSWD rule so a stolen login alone cannot become root (guide 3.5)

# Passwords and failed logins
# password_retry = 3  # tries to type an acceptable new password (guide 3.4)
# password_minlen = 15  # minimum length of a new password: 15, as NIST SP 800-63B-4 and ANSSI BP-028 ask (the guide's 10 is dated)
# password_minclass = 4  # kinds of character (upper, lower, digit, symbol) a new password must mix (ANSSI BP-028)
# password_difok = 3  # characters that must differ from the old password (guide 3.4)
# password_ucredit = -1  # negative: at least that many uppercase letters (guide 3.4)
# password_lcredit = -2  # negative: at least that many lowercase letters (guide 3.4)
# password_dcredit = -1  # negative: at least that many digits (guide 3.4)
# password_ocredit = -1  # negative: at least that many symbols (guide 3.4)
# password_remember = 5  # a user's last passwords a new one may not repeat (pam_pwhistory; 0: none)
# faillock_deny = 3  # failed password logins (sudo, su, a console) within faillock_fail_interval that lock an account; root is never locked, and a successful SSH login (key and TOTP) clears the count
# faillock_fail_interval = 900  # seconds within which failed logins count towards faillock_deny
# faillock_unlock_time = 900  # seconds a locked account stays locked (0: until root runs 'faillock --user NAME --reset')
# password_hashing = 'sha512'  # how PAM hashes a new password (passwd, chpasswd): 'sha512' with password_hash_rounds rounds, as ANSSI BP-028 asks; 'yescrypt' at Debian's own cost is memory-hard but fails OpenSCAP's rounds rule, whose one yescrypt value (cost 11) takes 1 GiB and 1.3 s a hash
# password_hash_rounds = 65536  # SHA-512 rounds of a new password's hash (PAM, and login.defs when asked for SHA-512): 65536 take 16 ms of one core for each check (a sudo); more slow a guesser and each sudo alike

# Clock
# time_sync_service = 'systemd-timesyncd'  # keeps the clock right; TOTP codes and logs depend on it

# Operating system
# kernel_parameters = {'fs.protected_fifos': 2, 'fs.protected_hardlinks': 1, 'fs.protected_regular': 2, 'fs.protected_symlinks': 1, 'fs.suid_dumpable': 0, 'kernel.core_uses_pid': 1, 'kernel.ctrl-alt-del': 0, 'kernel.dmesg_restrict': 1, 'kernel.kptr_restrict': 2, 'kernel.perf_event_paranoid': 3, 'kernel.randomize_va_space': 2, 'kernel.sysrq': 0, 'kernel.unprivileged_bpf_disabled': 1, 'kernel.yama.ptrace_scope': 1, 'net.core.bpf_jit_harden': 2, 'dev.tty.ldisc_autoload': 0, 'net.ipv4.conf.all.accept_redirects': 0, 'net.ipv4.conf.all.accept_source_route': 0, 'net.ipv4.conf.all.bootp_relay': 0, 'net.ipv4.conf.all.forwarding': 0, 'net.ipv4.conf.all.log_martians': 1, 'net.ipv4.conf.all.mc_forwarding': 0, 'net.ipv4.conf.all.proxy_arp': 0, 'net.ipv4.conf.all.rp_filter': 1, 'net.ipv4.conf.all.send_redirects': 0, 'net.ipv4.conf.default.accept_redirects': 0, 'net.ipv4.conf.default.accept_source_route': 0, 'net.ipv4.conf.default.log_martians': 1, 'net.ipv4.conf.default.rp_filter': 1, 'net.ipv4.conf.default.send_redirects': 0, 'net.ipv4.icmp_echo_ignore_broadcasts': 1, 'net.ipv4.icmp_ignore_bogus_error_responses': 1, 'net.ipv4.tcp_syncookies': 1, 'net.ipv6.conf.all.accept_redirects': 0, 'net.ipv6.conf.all.accept_source_route': 0, 'net.ipv6.conf.default.accept_redirects': 0, 'net.ipv6.conf.default.accept_source_route': 0}  # kernel parameters written to /etc/sysctl.d and set live (a container's kernel is the host's: the deploy names what it cannot set); replace the whole dict to change one
# login_umask = '027'  # umask of new login sessions and home folders (login.defs): nothing new is world-readable
# password_max_days = 365  # password age limit for accounts created from now on (login.defs); the admins this project manages never expire: their password is rotated through the store, and an expired one would stop a run
# password_min_days = 1  # days before a new password may be changed again (login.defs)
# password_warn_days = 14  # days of warning before a password expires (login.defs)
# shell_idle_timeout = 900  # seconds an interactive shell may sit idle before it exits (0: never)
# disabled_kernel_modules = ['cramfs', 'freevxfs', 'hfs', 'hfsplus', 'jffs2', 'dccp', 'sctp', 'rds', 'tipc', 'usb-storage', 'firewire-core', 'firewire-ohci', 'firewire-sbp2']  # kernel modules that may never load: unused filesystems, protocols, USB and FireWire storage
# login_banner = 'Authorised access only. This system is private property of its owner; unauthorised access is prohibited. Activity is monitored and logged, and the records may be used as evidence under criminal and civil law.'  # legal notice in /etc/issue and /etc/issue.net: who may use the host
# security_updates = True  # unattended-upgrades installs security updates every day
# security_reboot_time = None  # if set, reboot at this time (HH:MM) when an update needs it; None: never reboot by itself
# private_home_folders = True  # home folders of accounts with a login shut to others (0750), their shell start files and /etc/skel's readable by owner and group only (0640)

# SSH
# ssh_two_factor = True  # SSH needs the key and a TOTP code from the admin's phone (guide 3.10)
# ssh_two_factor_strict = False  # refuse admins not enrolled yet (otherwise they log in with key + password)
# ssh_strong_crypto = True  # only the ciphers, key exchanges, MACs and host keys of ssh-audit's hardened policy
# ssh_allow_users = []  # if set, only these users may log in over SSH (every admin must be listed)
# ssh_allow_groups = []  # if set, only members of these groups may log in over SSH (admin_group must be listed)
# ssh_probe_user = None  # admin whose fresh login proves access before password and root login are turned off
# ssh_probe_key = None  # that admin's private key on the operator's machine (default: the key pyinfra connects with)

# Login alerts
# login_alerts = True  # Monit tells you of every SSH login, by email and/or webhook (guide 3.12)
# monit_check_interval = 5  # seconds between Monit's looks at the auth log: how soon an alert goes out (guide 3.12)
# alert_email = None  # address that gets an email for every SSH login (needs smtp_host)
# smtp_host = None  # mail server Monit sends alerts through
# smtp_port = 587  # its port: 587 for submission with STARTTLS, 465 for TLS from the start
# smtp_security = 'starttls'  # encryption to the mail server; 'none' only without a password
# smtp_verify_certificate = True  # verify the mail server's certificate with the system CAs (no password for impostors)
# smtp_user = None  # login at the mail server; its password is the secret smtp-password
# alert_ignore_addresses = []  # logins from these source addresses raise no alert (the guide's ignore list)
# alert_webhook = False  # also post each login as Slack-style JSON to the URL in the secret alert-webhook-url
# alert_pushover = False  # also push each login through Pushover (secrets pushover-app-token, pushover-user-key)

# Firewall
# admin_cidrs = []  # networks the operators connect from; SSH is open to them (on app servers: only to them, if set)
# firewall = True  # default-drop iptables rules, IPv4 and IPv6; off only where a cloud firewall does it (guide 3.11)
# firewall_rollback_seconds = 60  # new rules are undone after this long unless a fresh SSH connection confirms them

# File integrity
# file_integrity = True  # AIDE records the host's files after every run that changes it and checks them nightly: a file added, removed or changed since is an alert (to the login alerts' destinations)
# file_integrity_check_time = '05:15'  # when the nightly check runs (HH:MM), before unattended-upgrades' morning run
# file_integrity_ignored_paths = []  # folders and files your applications change by design (uploads, caches), left out of the check; Debian's own rules already leave out logs, spools and databases' files

# Remote logging
# remote_logging = True  # every host sends its syslog to the inventory's backup server (the first with a private_ip) over TLS with the fleet CA, both ends proving who they are; the backup server keeps each host's log in /var/log/remote. Off, or without a backup server: logs stay on each host
# remote_logging_port = 6514  # the backup server's port for syslog over TLS (RFC 5425's), open to the fleet's hosts only

# Audit trail
# audit_trail = True  # auditd records changes to accounts, sudo, PAM, SSH, the firewall, cron, the clock and kernel modules, and every sudo and mount by a person (skipped in containers: the audit subsystem is the host kernel's)
# audit_trail_immutable = False  # lock the loaded rules until the next reboot (-e 2): not even root can switch auditing off, but a changed rule set then waits for a reboot

# Fleet CA
# fleet_ca_keys = 'keys'  # the folder where `hardening-ca` keeps the fleet CA's certificates and fleet-ca.json, on your machine (its keys are in the secret store)

# Backups
# backups = True  # nightly encrypted backup of the application's database (db_servers) and of Redis's data (cache_servers whose redis_persistence is not 'none'), copied to the backup servers (guide 3.11.2)
# backup_public_key = 'keys/backup-public.pem'  # your RSA public key backups are encrypted to (hardening-backup keygen)
# backup_time = '00:01'  # when the nightly backup runs, server time (guide 3.11.2)
# backup_keep = 7  # how many backups of each kind the host keeps itself, newest first
# backup_server_ssh_port = 22  # the port of the backup servers' sshd on the private network
