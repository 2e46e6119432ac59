"""MariaDB on the database server (guide 3.11.1, 4.6), seen from the app server, an outsider and
the server itself."""

from __future__ import annotations

import pytest

from pyinfra_hardening.fleet_tls import TRUST_BUNDLE

DATABASE_PORT = 3306
VERIFIED_TLS = f"--ssl-ca={TRUST_BUNDLE} --ssl-verify-server-cert"


@pytest.fixture(scope="module")
def todos(deployment):
    """A table of the application's, made the way a migration would: by an admin, as root."""
    deployment.machines["db"].check(
        'mariadb application -e "CREATE TABLE IF NOT EXISTS todos (id INT PRIMARY KEY, title VARCHAR(100)); '
        "REPLACE INTO todos VALUES (1, 'buy milk'), (2, 'call bob')\""
    )
    return "todos"


def test_mariadb_listens_on_the_private_address_only(deployment):
    db = deployment.machines["db"]
    local_addresses = [line.split()[3] for line in db.check(f"ss -ltnH 'sport = :{DATABASE_PORT}'").splitlines()]
    assert local_addresses == [f"{db.private_ip}:{DATABASE_PORT}"]


def test_an_outsider_finds_the_database_port_closed(deployment):
    db = deployment.machines["db"]
    assert deployment.outsider.reach(db.private_ip, DATABASE_PORT) is None


def test_the_data_directory_is_private_to_mysql_which_has_no_login_shell(deployment):
    db = deployment.machines["db"]
    assert db.check("stat -c '%U %G %a' /var/lib/mysql").split() == ["mysql", "mysql", "700"]
    assert db.check("find /var/lib/mysql ! -user mysql | wc -l").strip() == "0"
    assert db.check("getent passwd mysql").strip().split(":")[6] in ("/bin/false", "/usr/sbin/nologin")
    # Becoming mysql gives no shell to run anything in.
    assert "inside" not in db.exec("su mysql -c 'echo inside'").stdout
    # An ordinary user cannot even list the data.
    assert db.exec("ls /var/lib/mysql", user="nobody").returncode != 0


def test_root_comes_in_only_through_the_local_socket(deployment, operator):
    db, app = deployment.machines["db"], deployment.machines["app"]
    assert db.check("mariadb -N -e 'SELECT CURRENT_USER()'").strip() == "root@localhost"
    # Over TLS that verifies the server, so the refusal is about root, not the transport.
    over_tcp = db.exec(f"mariadb {VERIFIED_TLS} -h {db.private_ip} -u root -e 'SELECT 1'")
    assert over_tcp.returncode != 0 and "not allowed to connect" in over_tcp.stderr
    from_app = app.exec(f"mariadb {VERIFIED_TLS} -h {db.private_ip} -u root -e 'SELECT 1'")
    assert from_app.returncode != 0 and "Access denied for user 'root'" in from_app.stderr
    # A user other than root on the database server does not get in as root by the socket.
    by_socket = db.exec("mariadb -u root -e 'SELECT 1'", user="nobody")
    assert by_socket.returncode != 0 and "Access denied for user 'root'@'localhost'" in by_socket.stderr


def test_no_anonymous_accounts_and_no_test_database(deployment):
    db = deployment.machines["db"]
    accounts = db.check("mariadb -N -e \"SELECT CONCAT(User, '@', Host) FROM mysql.global_priv\"").split()
    assert not [name for name in accounts if name.startswith("@")]
    assert [name for name in accounts if name.startswith("root@")] == ["root@localhost"]
    assert "test" not in db.check("mariadb -N -e 'SHOW DATABASES'").split()
    anonymous = deployment.machines["app"].exec(f"mariadb {VERIFIED_TLS} -h {db.private_ip} -u '' -e 'SELECT 1'")
    assert anonymous.returncode != 0 and "Access denied" in anonymous.stderr


def test_the_app_account_reads_and_writes_its_database(deployment, operator, todos):
    db, app = deployment.machines["db"], deployment.machines["app"]
    assert operator.app_query(app, db, f"SELECT title FROM {todos} WHERE id = 1").stdout.strip() == "buy milk"
    written = operator.app_query(
        app,
        db,
        f"INSERT INTO {todos} VALUES (3, 'water plants'); "
        f"UPDATE {todos} SET title = 'water the plants' WHERE id = 3; "
        f"SELECT title FROM {todos} WHERE id = 3; DELETE FROM {todos} WHERE id = 3",
    )
    assert written.returncode == 0 and written.stdout.strip() == "water the plants", written.stderr


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE sneaky (id INT)",
        "DROP TABLE todos",
        "ALTER TABLE todos ADD COLUMN secret TEXT",
        "GRANT SELECT ON application.* TO 'application'@'%'",
        "CREATE DATABASE other",
        "SELECT User FROM mysql.user",
    ],
)
def test_the_app_account_cannot_change_the_schema_grant_or_look_elsewhere(deployment, operator, todos, statement):
    db, app = deployment.machines["db"], deployment.machines["app"]
    result = operator.app_query(app, db, statement)
    # MariaDB's refusals: "command denied" (tables, grants) or "Access denied" (databases).
    assert result.returncode != 0 and "denied" in result.stderr, (result.stdout, result.stderr)
    assert "todos" in db.check("mariadb -N application -e 'SHOW TABLES'").split()
    assert "secret" not in db.check("mariadb -N application -e 'SHOW COLUMNS FROM todos'")


def test_the_app_account_cannot_read_files_on_the_server(deployment, operator):
    """Without the FILE privilege, LOAD_FILE answers NULL rather than an error."""
    db, app = deployment.machines["db"], deployment.machines["app"]
    assert db.check("test -r /etc/passwd && echo readable").strip() == "readable"
    result = operator.app_query(app, db, "SELECT LOAD_FILE('/etc/passwd')")
    assert result.returncode == 0 and result.stdout.strip() == "NULL", (result.stdout, result.stderr)


def test_the_app_account_is_refused_from_anywhere_but_the_app_servers(deployment, operator):
    db = deployment.machines["db"]
    # The database server's own address is in no app server's place: no account matches it,
    # even with a client certificate from the fleet CA.
    from_db = operator.app_query(db, db, "SELECT 1", run_as="root", tls=operator.client_certificate(db))
    assert from_db.returncode != 0 and "not allowed to connect" in from_db.stderr, from_db.stderr
    grants = db.check("mariadb -N -e \"SELECT Host FROM mysql.global_priv WHERE User = 'application'\"").split()
    assert grants == [deployment.machines["app"].private_ip]
