"""parleyctl against a running parleyd and against its database alone, and
what the account changes mean for logins (SCRAM credentials included)."""

import sqlite3

import pytest

from conftest import PASSWORD
from parley_harness import psql
from rawxmpp import NS_SASL, RawClient, q, sasl_failure_condition


def try_login(server, user, password, mechanism):
    """'success' or the SASL failure condition, over STARTTLS."""
    c = RawClient(server.c2s_port)
    try:
        c.start()
        c.starttls()
        if mechanism == "PLAIN":
            outcome = c.auth_plain(user, password)
        else:
            outcome = c.auth_scram(user, password, mechanism, gs2_flag="n")
        if outcome.tag == q(NS_SASL, "success"):
            return "success"
        return sasl_failure_condition(outcome)
    finally:
        c.close()


MECHANISMS = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]


@pytest.fixture
def backend_server(server_factory, storage_backend):
    """A started parleyd on each storage backend (the accounts on SQLite, or on PostgreSQL)."""
    return server_factory(storage=storage_backend)


def test_register_without_server_then_login(server_factory, storage_backend):
    server = server_factory(start=False, storage=storage_backend)
    server.register("alice", PASSWORD)
    listed = server.ctl("list-users", server.domain)
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout.split()
    server.start()
    for mech in MECHANISMS:
        assert try_login(server, "alice", PASSWORD, mech) == "success", mech


def test_register_with_server_running(server):
    server.register("bob", PASSWORD)
    for mech in MECHANISMS:
        assert try_login(server, "bob", PASSWORD, mech) == "success", mech


def test_register_twice_fails(server):
    server.register("alice", PASSWORD)
    again = server.ctl("register", "alice", server.domain, "other")
    assert again.returncode != 0
    assert try_login(server, "alice", PASSWORD, "PLAIN") == "success"


def test_register_on_unknown_host_fails(server):
    result = server.ctl("register", "alice", "not-served.example", PASSWORD)
    assert result.returncode != 0


def test_passwd_replaces_every_credential(backend_server):
    server = backend_server
    server.register("alice", PASSWORD)
    changed = server.ctl("passwd", "alice", server.domain, "new-password")
    assert changed.returncode == 0, changed.stderr
    for mech in MECHANISMS:
        assert try_login(server, "alice", PASSWORD, mech) == "not-authorized", mech
        assert try_login(server, "alice", "new-password", mech) == "success", mech


def test_unregister(backend_server):
    server = backend_server
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    removed = server.ctl("unregister", "bob", server.domain)
    assert removed.returncode == 0, removed.stderr
    assert try_login(server, "bob", PASSWORD, "PLAIN") == "not-authorized"
    listed = server.ctl("list-users", server.domain)
    assert listed.returncode == 0
    users = listed.stdout.split()
    assert "alice" in users and "bob" not in users


def test_accounts_survive_a_restart(backend_server):
    server = backend_server
    server.register("carol", PASSWORD)
    server.restart()
    for mech in MECHANISMS:
        assert try_login(server, "carol", PASSWORD, mech) == "success", mech


def test_accounts_are_on_postgresql_not_in_the_sqlite_file(server_factory, pg_storage):
    server = server_factory(storage=pg_storage)
    server.register("dave", PASSWORD)
    assert psql(pg_storage["url"], "SELECT username FROM users").split() == ["dave"]
    assert psql(pg_storage["url"], "SELECT COUNT(*) FROM scram_credentials WHERE username = 'dave'").strip() == "2"
    db = sqlite3.connect(f"file:{server.data_dir / 'parley.db'}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
    finally:
        db.close()
    assert try_login(server, "dave", PASSWORD, "SCRAM-SHA-256") == "success"
    assert try_login(server, "nobody", PASSWORD, "SCRAM-SHA-256") == "not-authorized"


def test_status(server):
    assert server.ctl("status").returncode == 0
    code, killed = server.stop()
    assert code == 0 and not killed
    assert server.ctl("status").returncode == 3


@pytest.mark.parametrize("args", [["register", "alice"], ["no-such-command"], []])
def test_usage_errors(server, args):
    result = server.ctl(*args)
    assert result.returncode != 0
