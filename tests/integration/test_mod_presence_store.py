"""mod_presence's last unavailable presences (RFC 6121 4.3.2) in the keyval
store (issue 11): kept across a restart on PostgreSQL, removed with the
account, and moved in from the module's table of before (on SQLite)."""

import sqlite3
import time

from conftest import PASSWORD
from parley_harness import psql
from rawxmpp import NS_CLIENT, q
from old_schemas import recreate_old_tables
from test_mod_presence import (MODULES, NS_DELAY, bare, expect_all, expect_presence, login, status,
                               subscribe_both)


def keyval_rows(server, user):
    """mod_presence's keys of `user` in the SQLite keyval file."""
    db = sqlite3.connect(str(server.data_dir / "parley-keyval.db"), timeout=5)
    try:
        return db.execute("SELECT key FROM keyval WHERE scope = ? AND owner = ?",
                          (f"mod_presence/{server.domain}", user)).fetchall()
    finally:
        db.close()


def test_last_unavailable_survives_a_restart_on_postgresql(server_factory, raw_factory, pg_storage):
    """On PostgreSQL (SQLite's keyval file is read after a restart by the move
    test below, and by every probe of test_mod_presence.py): after a restart,
    bob's login probe and a probe of his own get alice's last unavailable
    presence, with its status and a XEP-0203 delay."""
    server = server_factory(modules=MODULES, storage=pg_storage)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    subscribe_both(server, raw_factory, "alice", "bob")
    alice = login(server, raw_factory, "alice", "phone")
    alice.send("<presence type='unavailable'><status>off to Mantua</status></presence>")
    alice.sync()  # the unavailable was handled (and its put queued) before the close
    alice.close()
    server.restart()
    bob = login(server, raw_factory, "bob", "home", presence=None)
    bob.send("<presence/>")
    found = expect_all(bob, [(bob.jid, None), (bare(server, "alice"), "unavailable")])
    p = found[(bare(server, "alice"), "unavailable")]
    assert status(p) == "off to Mantua"
    assert p.find(q(NS_DELAY, "delay")) is not None
    bob.send(f"<presence type='probe' to='{bare(server, 'alice')}'/>")
    p = expect_presence(bob, bare(server, "alice"), "unavailable")
    assert status(p) == "off to Mantua"
    # In PostgreSQL, not in the SQLite file (the module's SQL ran there).
    assert "off to Mantua" in psql(pg_storage["url"], "SELECT convert_from(value, 'UTF8') FROM keyval "
                                   f"WHERE scope = 'mod_presence/{server.domain}' AND owner = 'alice'")


def test_rows_of_the_old_table_are_moved_into_the_keyval_store(server_factory, raw_factory):
    """A server whose mod_presence kept the last unavailable presences in its
    table (before the keyval store) answers probes from them after the
    upgrade, with their stamp; this host's rows are deleted once moved, another
    host's stay (the table is dropped only once empty), and the moved value
    goes with its account."""
    server = server_factory(modules=MODULES)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    subscribe_both(server, raw_factory, "alice", "bob")
    server.stop()
    db = sqlite3.connect(str(server.data_dir / "parley.db"))
    with db:  # the first start dropped the empty table: as a server of before had it
        db.execute("CREATE TABLE IF NOT EXISTS mod_presence_last (jid TEXT PRIMARY KEY, xml TEXT NOT NULL, "
                   "stamp TEXT NOT NULL)")
        db.executemany("INSERT INTO mod_presence_last (jid, xml, stamp) VALUES (?, ?, ?)", [
            (f"alice@{server.domain}",
             f"<presence xmlns='{NS_CLIENT}' type='unavailable' from='alice@{server.domain}/old'>"
             "<status>moved</status></presence>", "2020-01-02T03:04:05Z"),
            ("zed@other.example", f"<presence xmlns='{NS_CLIENT}' type='unavailable'/>", "2020-01-02T03:04:05Z")])
    db.close()
    # A server of before had nothing of this module in the keyval store (the
    # logouts of the subscription's set-up stored alice's there).
    db = sqlite3.connect(str(server.data_dir / "parley-keyval.db"))
    with db:
        db.execute("DELETE FROM keyval WHERE scope = ?", (f"mod_presence/{server.domain}",))
    db.close()
    server.start()
    bob = login(server, raw_factory, "bob", "home", presence=None)
    bob.send("<presence/>")
    found = expect_all(bob, [(bob.jid, None), (bare(server, "alice"), "unavailable")])
    p = found[(bare(server, "alice"), "unavailable")]
    assert status(p) == "moved"
    assert p.find(q(NS_DELAY, "delay")).get("stamp") == "2020-01-02T03:04:05Z"
    deadline = time.monotonic() + 10
    while True:  # the delete follows the move's puts
        db = sqlite3.connect(f"file:{server.data_dir / 'parley.db'}?mode=ro", uri=True)
        try:
            left = db.execute("SELECT jid FROM mod_presence_last").fetchall()
        finally:
            db.close()
        if left == [("zed@other.example",)] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == [("zed@other.example",)]
    assert keyval_rows(server, "alice") == [("last",)]
    assert server.ctl("unregister", "alice", server.domain).returncode == 0
    deadline = time.monotonic() + 10
    while keyval_rows(server, "alice") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert keyval_rows(server, "alice") == []


def test_a_login_gets_the_last_unavailable_of_each_of_many_offline_contacts(server_factory, raw_factory,
                                                                           storage_backend):
    """On both backends: a login with 300 offline local contacts whose last
    unavailable presences are stored, and 10 with none, gets an unavailable
    from each: the stored ones with their status and XEP-0203 delay, the others
    plain. With fanout_batch 1000 the second probe batch asks for 299 of them
    in one keyval_get_many, which the store reads in two statements (256 and
    43 users)."""
    modules = dict(MODULES, mod_presence={"fanout_batch": 1000})
    server = server_factory(modules=modules, storage=storage_backend)
    server.register("alice", PASSWORD)
    server.stop()
    stored, bare_only = 300, 10
    db = sqlite3.connect(str(server.data_dir / "parley.db"))
    recreate_old_tables(db, "mod_roster_items")  # dropped, empty, by the first start
    with db:  # moved into the stores (either backend) at the next start
        db.execute("CREATE TABLE IF NOT EXISTS mod_presence_last (jid TEXT PRIMARY KEY, xml TEXT NOT NULL, "
                   "stamp TEXT NOT NULL)")
        for i in range(stored + bare_only):
            jid = f"c{i:04d}@{server.domain}"
            db.execute("INSERT INTO mod_roster_items (host, user, contact, subscription) VALUES (?, 'alice', ?, 'to')",
                       (server.domain, jid))
            if i < stored:
                db.execute("INSERT INTO mod_presence_last (jid, xml, stamp) VALUES (?, ?, '2020-01-02T03:04:05Z')",
                           (jid, f"<presence xmlns='{NS_CLIENT}' type='unavailable'><status>away {i}</status>"
                                 "</presence>"))
    db.close()
    server.start()
    alice = login(server, raw_factory, "alice", "home", presence=None)
    alice.send("<presence/>")
    got = {}
    deadline = time.monotonic() + 60
    while len(got) < stored + bare_only:
        e = alice.next_element(max(0.01, deadline - time.monotonic()))
        if e.tag == q(NS_CLIENT, "presence") and e.get("type") == "unavailable":
            assert e.get("from") not in got, "one answer per contact"
            got[e.get("from")] = e
    for i in range(stored + bare_only):
        p = got[f"c{i:04d}@{server.domain}"]
        delay = p.find(q(NS_DELAY, "delay"))
        if i < stored:
            assert status(p) == f"away {i}"
            assert delay is not None and delay.get("stamp") == "2020-01-02T03:04:05Z"
        else:
            assert status(p) is None and delay is None
    # And no second answer of any of them (a round trip; her own presence's
    # reflection may come at any point, so only unavailables count).
    assert [e for e in alice.nothing_before_sync() if e.get("type") == "unavailable"] == []
