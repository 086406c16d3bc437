"""mod_adhoc's message of the day and welcome message in the keyval store
(issue 11): kept across a restart on PostgreSQL (with who had the message
of the day), and moved in from the module's tables of before, which are then
dropped."""

import sqlite3
import time

from conftest import PASSWORD
import pytest

from parley_harness import psql
from rawxmpp import RawClient, q
from slix_driver import SlixRunner
from test_mod_adhoc import run, slix_client

MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_offline": {}, "mod_adhoc": {}}
MESSAGE = q("jabber:client", "message")
OLD_TABLES = ("mod_adhoc_motd", "mod_adhoc_motd_sent", "mod_adhoc_welcome")


@pytest.fixture
def slix():
    runner = SlixRunner()
    yield runner
    runner.close()


def make(server_factory, users, **kwargs):
    server = server_factory(start=False, modules=dict(MODULES), **kwargs)
    server.config["admins"] = ["admin@localhost"]
    for user in users:
        server.register(user, PASSWORD)
    return server.start()


def available(server, made, user, resource="r"):
    """A session that sent its initial presence (the message of the day comes after it)."""
    c = RawClient(server.c2s_port)
    made.append(c)
    c.login(user, PASSWORD, resource=resource, presence=False)
    c.send("<presence/>")
    return c


def test_motd_and_welcome_survive_a_restart_on_postgresql(server_factory, slix, pg_storage):
    """On PostgreSQL (on SQLite the move test below reads them after a
    restart): after a restart the message of the day is not sent again to a
    user who had it, a user who did not have it gets it, and a new account
    gets the welcome message."""
    server = make(server_factory, ("admin", "carol", "dave"), storage=pg_storage)
    made = []
    try:
        admin = slix_client(slix, server, "admin")
        run(slix, admin, "set-motd", {"motd": ["Kept", "across restarts"]})
        run(slix, admin, "set-welcome", {"welcome": ["Hello, new one"]})
        carol = available(server, made, "carol")
        carol.expect_message("Kept\nacross restarts")
        carol.close()
        server.restart()
        carol = available(server, made, "carol", "again")
        assert MESSAGE not in [e.tag for e in carol.nothing_before_sync()]
        dave = available(server, made, "dave")
        assert dave.expect_message("Kept\nacross restarts").get("from") == "localhost"
        ok, body = server.control("register", "erin", "localhost", PASSWORD)
        assert ok, body
        erin = available(server, made, "erin")
        bodies = {erin.expect(MESSAGE).findtext(q("jabber:client", "body")) for _ in range(2)}
        assert bodies == {"Hello, new one", "Kept\nacross restarts"}
        # In PostgreSQL, not in the SQLite file (the module's SQL ran there).
        keys = psql(pg_storage["url"], "SELECT owner || ' ' || key FROM keyval WHERE scope = 'mod_adhoc/localhost' "
                    "ORDER BY 1").split("\n")
        assert {"@ motd", "@ welcome", "carol motd_sent", "dave motd_sent"} <= set(keys)
    finally:
        for c in made:
            c.abort()


def test_rows_of_the_old_tables_are_moved_into_the_keyval_store(server_factory):
    """A server whose mod_adhoc kept the message of the day, who had it and
    the welcome message in its tables (before the keyval store) keeps them
    after the upgrade: the user who had it does not get it again, another
    does (once, from two logins at once), a new account gets the welcome message; the tables are dropped once
    their rows are moved."""
    server = make(server_factory, ("admin", "carol", "dave"))
    server.stop()
    db = sqlite3.connect(str(server.data_dir / "parley.db"))
    with db:  # the first start dropped the empty tables: as a server of before had them
        db.execute("CREATE TABLE IF NOT EXISTS mod_adhoc_motd (host TEXT PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS mod_adhoc_motd_sent (host TEXT NOT NULL, user TEXT NOT NULL, "
                   "PRIMARY KEY (host, user))")
        db.execute("CREATE TABLE IF NOT EXISTS mod_adhoc_welcome (host TEXT PRIMARY KEY, text TEXT NOT NULL)")
        db.execute("INSERT INTO mod_adhoc_motd (host, text) VALUES ('localhost', 'Old news')")
        db.execute("INSERT INTO mod_adhoc_motd_sent (host, user) VALUES ('localhost', 'carol')")
        db.execute("INSERT INTO mod_adhoc_welcome (host, text) VALUES ('localhost', 'Old welcome')")
    db.close()
    server.start()
    made = []
    try:
        carol = available(server, made, "carol")
        assert MESSAGE not in [e.tag for e in carol.nothing_before_sync()]
        # Two logins of dave at once: the message goes out once (the marker
        # is read and written on dave's owner loop; without that both read
        # "not had" before either wrote it).
        both = []
        for resource in ("one", "two"):
            c = RawClient(server.c2s_port)
            made.append(c)
            c.login("dave", PASSWORD, resource=resource, presence=False)
            both.append(c)
        for c in both:
            c.send("<presence/>")

        def motds(c):
            return [e for e in c.received if e.tag == MESSAGE and e.findtext(q("jabber:client", "body")) == "Old news"]
        deadline = time.monotonic() + 10
        while not any(motds(c) for c in both):
            assert time.monotonic() < deadline, "no message of the day for dave"
            for c in both:
                try:
                    c.next_element(0.05)
                except TimeoutError:
                    pass
        for c in both:
            c.nothing_before_sync()
        assert sum(len(motds(c)) for c in both) == 1
        ok, body = server.control("register", "erin", "localhost", PASSWORD)
        assert ok, body
        erin = available(server, made, "erin")
        bodies = {erin.expect(MESSAGE).findtext(q("jabber:client", "body")) for _ in range(2)}
        assert bodies == {"Old welcome", "Old news"}
    finally:
        for c in made:
            c.abort()
    assert old_tables_left_after_drops(server) == []
    assert "dropped the old table mod_adhoc_motd_sent (rows this instance moved into the typed stores: 1)" in server.log()


def old_tables_left_after_drops(server):
    """mod_adhoc's old tables still in the file once the drops have run (they
    follow the moves' deletes on the writer): polled, up to 10 s."""
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(f"file:{server.data_dir / 'parley.db'}?mode=ro", uri=True)
        try:
            left = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'mod_adhoc_%'"
                              ).fetchall()
        finally:
            db.close()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_a_fresh_server_drops_its_empty_old_tables_without_a_word_at_info(server_factory):
    """A fresh server's first migration makes the old tables (their schema steps
    stay) and drops them at once, empty: nothing moved, so nothing to tell an
    operator at the info level (each module said a line on every fresh start)."""
    server = make(server_factory, (), loglevel="info")
    assert old_tables_left_after_drops(server) == []
    assert "dropped the old table" not in server.log()
