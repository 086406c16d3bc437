"""mod_push against servers of their own: registrations kept across a
restart on PostgreSQL; registrations kept in the module's table before the
typed stores are moved into the map store at start; the per-device rate limit (and include_body) with options the main
suite (test_mod_push.py) does not use."""

import sqlite3
import time

from component_client import RawComponent
from conftest import PASSWORD
from parley_harness import free_port, psql
from push_app import (NS_DATA, NS_PUBSUB, NS_PUSH, PUBLISH_OPTIONS, SECRET, enable, expect_push, form_fields,
                      login, summary)


def test_registrations_of_the_old_table_are_moved_into_the_map_store(server_factory):
    """A server whose mod_push kept its registrations in its own table (before
    the typed stores, issue 11) pushes to them after the upgrade, with their
    publish-options; the old rows are deleted once moved and the table
    dropped, and a disable reaches the moved registration. (The old table is in the SQLite file
    whatever the storage backend: a module's own SQL runs there; the map
    store is the core's, tested on both backends by its own suites.)"""
    port = free_port()
    server = server_factory(
        modules={"mod_disco": {}, "mod_ping": {}, "mod_offline": {},
                 "mod_push": {"min_push_interval_ms": 0, "iq_timeout_ms": 5000}},
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {"app.localhost": {"password": SECRET}}}])
    for user in ("rosa", "bob"):
        server.register(user, PASSWORD)
    server.stop()
    rows = [("localhost", "rosa", "app.localhost", "r-node", PUBLISH_OPTIONS),
            ("localhost", "rosa", "app.localhost", "s-node", "")]
    db = sqlite3.connect(server.data_dir / "parley.db")
    with db:  # the first start dropped the empty table: as a server of before had it
        db.execute("CREATE TABLE IF NOT EXISTS mod_push_registrations (host TEXT NOT NULL, user TEXT NOT NULL, "
                   "jid TEXT NOT NULL, node TEXT NOT NULL, options TEXT NOT NULL, PRIMARY KEY (host, user, jid, node))")
        db.executemany("INSERT INTO mod_push_registrations (host, user, jid, node, options) VALUES (?, ?, ?, ?, ?)",
                       rows)
    db.close()
    server.start()
    made = []
    try:
        app = RawComponent(port, "app.localhost")
        made.append(app)
        app.connect_as(SECRET)
        bob = login(server, made, "bob", "desk")
        bob.message("rosa@localhost", "after the upgrade")
        iq, p = expect_push(app, "r-node")
        options = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish-options/{{{NS_DATA}}}x")
        assert form_fields(options)["secret"] == ["eruio234vzxc2kla-91"]
        assert form_fields(options)["endpoint"] == ["https://push.example/a&b"]
        iq, p = expect_push(app, "s-node")
        assert iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish-options") is None
        deadline = time.monotonic() + 10
        while True:  # polling for the drop that follows the move and its delete
            db = sqlite3.connect(server.data_dir / "parley.db")
            left = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'mod_push_registrations'").fetchone()[0]
            db.close()
            if left == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert left == 0
        rosa = login(server, made, "rosa", "phone")
        reply = rosa.iq("set", f"<disable xmlns='{NS_PUSH}' jid='app.localhost' node='r-node'/>", to="rosa@localhost")
        assert reply.get("type") == "result"
        rosa.close()
        bob.message("rosa@localhost", "after the disable")
        _, p = expect_push(app, "s-node")  # first: r-node (before it in order) is gone
        assert summary(p)["message-count"] == ["1"]
    finally:
        for c in made:
            c.close(timeout=2)


def test_registrations_survive_a_restart_on_postgresql(server_factory, pg_storage):
    """On PostgreSQL (the main suite runs on SQLite): a registration made
    before a restart gets its push after it, with its publish-options."""
    port = free_port()
    server = server_factory(
        modules={"mod_disco": {}, "mod_ping": {}, "mod_offline": {},
                 "mod_push": {"min_push_interval_ms": 0, "iq_timeout_ms": 5000}},
        storage=pg_storage,
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {"app.localhost": {"password": SECRET}}}])
    for user in ("rosa", "bob"):
        server.register(user, PASSWORD)
    made = []
    try:
        rosa = login(server, made, "rosa", "phone")
        enable(rosa, "p-node", PUBLISH_OPTIONS)
        rosa.close()
        server.restart()
        app = RawComponent(port, "app.localhost")
        made.append(app)
        app.connect_as(SECRET)
        bob = login(server, made, "bob", "desk")
        bob.message("rosa@localhost", "after the restart")
        iq, p = expect_push(app, "p-node")
        options = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish-options/{{{NS_DATA}}}x")
        assert form_fields(options)["secret"] == ["eruio234vzxc2kla-91"]
        assert summary(p)["message-count"] == ["1"]
        assert psql(pg_storage["url"], "SELECT owner FROM map_items WHERE scope = 'mod_push/localhost'").split() == \
            ["rosa"]
    finally:
        for c in made:
            c.close(timeout=2)


def test_per_device_rate_limit(server_factory):
    """min_push_interval_ms per device: notifications to one device leave the
    server at least the interval apart; those inside it are held and go out
    once it ends with the latest summary (the count of every message), none
    lost. Timing-safe: a slow machine only spreads the pushes further. With
    include_body (off elsewhere), the last message's body is in the summary."""
    interval = 1.5
    port = free_port()
    server = server_factory(
        modules={"mod_disco": {}, "mod_ping": {}, "mod_offline": {},
                 "mod_push": {"min_push_interval_ms": int(interval * 1000), "iq_timeout_ms": 5000,
                              "include_body": True}},
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {"app.localhost": {"password": SECRET}}}])
    for user in ("tess", "bob"):
        server.register(user, PASSWORD)
    made = []
    try:
        app = RawComponent(port, "app.localhost")
        made.append(app)
        app.connect_as(SECRET)
        tess = login(server, made, "tess", "phone")
        enable(tess, "t-node")
        tess.close()
        bob = login(server, made, "bob", "desk")
        for i in range(3):
            bob.message("tess@localhost", f"quick {i}")
        arrivals = []
        counts = []
        while not counts or counts[-1] < 3:
            _, p = expect_push(app, "t-node")
            arrivals.append(time.monotonic())
            counts.append(int(summary(p)["message-count"][0]))
            last_body = summary(p)["last-message-body"]
        assert counts == sorted(counts) and len(counts) <= 3
        assert last_body == ["quick 2"]  # include_body: the operator asked for it; the latest message's
        # The server spaces them by the interval; the slack covers a first
        # push delayed on its way more than the next one.
        for a, b in zip(arrivals, arrivals[1:]):
            assert b - a >= interval - 0.5, arrivals
    finally:
        for c in made:
            c.close(timeout=2)
