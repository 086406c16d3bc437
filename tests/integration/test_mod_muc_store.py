"""mod_muc: the room's archive (XEP-0313 on the room JID), persistent rooms
across a restart (on both backends: the map store) and a module reload, and
the move of the module's old SQLite tables into the map store.

One server per suite (module-scoped, muc_support.py); tests that need
another configuration or a restart start their own. Negative checks end with
a round trip."""

import hashlib
import sqlite3
import time

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)
from conftest import old_tables_left
from old_schemas import recreate_old_tables
from parley_harness import psql

OLD_TABLES = ("mod_muc_rooms", "mod_muc_affiliations", "mod_muc_history")


def stored_items(server, storage):
    """mod_muc's items in the map store, on either backend: {map: [keys]}, the
    0x1f of their names shown as '/'."""
    sql = f"SELECT owner, key FROM map_items WHERE scope = 'mod_muc/{server.domain}' ORDER BY owner, seq"
    if storage.get("url"):
        rows = [line.split("|", 1) for line in psql(storage["url"], sql).splitlines() if line]
    else:
        db = sqlite3.connect(server.data_dir / "parley-keyval.db", timeout=10)
        rows = db.execute(sql).fetchall()
        db.close()
    items = {}
    for owner, key in rows:
        items.setdefault(owner.replace("\x1f", "/"), []).append(key.replace("\x1f", "/"))
    return items


def stored_maps(server, storage):
    """The names of mod_muc's maps that the map store has a version of (a map
    written once, even if empty now), '/' for 0x1f."""
    sql = f"SELECT owner FROM map_versions WHERE scope = 'mod_muc/{server.domain}'"
    if storage.get("url"):
        owners = psql(storage["url"], sql).splitlines()
    else:
        db = sqlite3.connect(server.data_dir / "parley-keyval.db", timeout=10)
        owners = [owner for (owner,) in db.execute(sql).fetchall()]
        db.close()
    return {owner.replace("\x1f", "/") for owner in owners if owner}


def old_rows(server):
    """The rows left in the old tables still in the main SQLite file, per table
    (each is dropped once it has no row left)."""
    return old_tables_left(server.data_dir / "parley.db", OLD_TABLES)


def test_room_archive_when_logging(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A", field("muc#roomconfig_enablelogging", "1"))
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    assert NS_MAM in {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    got = join(bob, room, "B")
    assert "170" in codes(self_presence(got))
    ids = []
    for i in range(3):
        groupchat(alice, room, f"logged {i}")
        m = expect_body(bob, f"logged {i}")
        sid = m.find(q(NS_SID, "stanza-id"))
        assert sid is not None and sid.get("by") == room
        ids.append(sid.get("id"))
    results, fin = mam_page(carol, room, "<max>2</max>")
    assert fin.get("type") == "result"
    bodies = [r.find(q(NS_MAM, "result")).find(q(NS_FORWARD, "forwarded")).find(q(NS_CLIENT, "message"))
              .findtext(q(NS_CLIENT, "body")) for r in results]
    assert bodies == ["logged 0", "logged 1"]
    assert [r.find(q(NS_MAM, "result")).get("id") for r in results] == ids[:2]
    assert all(r.get("from") == room and r.find(q(NS_MAM, "result")).get("queryid") == "q1" for r in results)
    f = fin.find(q(NS_MAM, "fin"))
    assert f.get("complete") != "true" and f.find(q(NS_RSM, "set")).findtext(q(NS_RSM, "count")) == "3"
    last = f.find(q(NS_RSM, "set")).findtext(q(NS_RSM, "last"))
    results, fin = mam_page(carol, room, f"<max>2</max><after>{last}</after>")
    assert [r.find(q(NS_MAM, "result")).get("id") for r in results] == ids[2:]
    assert fin.find(q(NS_MAM, "fin")).get("complete") == "true"
    results, fin = mam_page(carol, room, "<max>1</max><before/>")
    assert [r.find(q(NS_MAM, "result")).get("id") for r in results] == ids[2:]
    # XEP-0313: after-id, before-id, ids, flip-page; the form offers them.
    form = carol.iq("get", f"<query xmlns='{NS_MAM}'/>", to=room)
    assert {"FORM_TYPE", "start", "end", "after-id", "before-id", "ids"} <= {
        f.get("var") for f in form.iter(q(NS_XDATA, "field"))}

    def by_form(fields, rsm=""):
        x = f"<x xmlns='{NS_XDATA}' type='submit'>{field('FORM_TYPE', NS_MAM)}{fields}</x>"
        return mam_page(carol, room, rsm, form=x)

    def result_ids(results):
        return [r.find(q(NS_MAM, "result")).get("id") for r in results]
    results, fin = by_form(field("after-id", ids[0]))
    assert result_ids(results) == ids[1:]
    results, fin = by_form(field("before-id", ids[2]))
    assert result_ids(results) == ids[:2]
    results, fin = by_form(field("ids", ids[2], ids[0]))
    assert result_ids(results) == [ids[0], ids[2]]
    results, fin = by_form(field("after-id", "999999999999"))
    assert fin.get("type") == "error" and cond(fin) == "item-not-found"
    # XEP-0313 section 3: the room's ids are unpredictable (not the store's number, the
    # append time); one it never handed out is item-not-found in 'ids' too (4.1.3).
    assert all(len(i) == 22 and not i.isdigit() for i in ids), ids
    results, fin = by_form(field("ids", ids[0][:-1] + ("A" if ids[0][-1] != "A" else "Q")))
    assert fin.get("type") == "error" and cond(fin) == "item-not-found"
    results, fin = mam_page(carol, room, "<max>2</max><before/>", flip=True)
    assert result_ids(results) == [ids[2], ids[1]]
    s = fin.find(q(NS_MAM, "fin")).find(q(NS_RSM, "set"))
    assert (s.findtext(q(NS_RSM, "first")), s.findtext(q(NS_RSM, "last"))) == (ids[2], ids[1])
    # XEP-0313 §5.1.2: `with` an occupant JID is that nick's messages; the room's
    # JID all of them; another JID none. The form offers it.
    assert "with" in {f.get("var") for f in form.iter(q(NS_XDATA, "field"))}
    groupchat(bob, room, "logged by B")
    expect_body(alice, "logged by B")

    def bodies_of(results):
        return [r.find(q(NS_MAM, "result")).find(q(NS_FORWARD, "forwarded")).find(q(NS_CLIENT, "message"))
                .findtext(q(NS_CLIENT, "body")) for r in results]
    results, fin = by_form(field("with", f"{room}/B"))
    assert bodies_of(results) == ["logged by B"], ET.tostring(fin, "unicode")
    results, fin = by_form(field("with", f"{room}/A"))
    assert result_ids(results) == ids
    results, fin = by_form(field("with", room))
    assert len(results) == 4
    results, fin = by_form(field("with", f"bob@{muc_server.domain}"))
    assert results == [] and fin.get("type") == "result"
    # Logging off: 171 to the occupants (a privacy change alone: no 104).
    owner_set(alice, room, field("muc#roomconfig_enablelogging", "0"))
    assert codes(bob.expect(MESSAGE, match=lambda e: "171" in codes(e))) == {"171"}
    # Members-only: a non-member may not read it.
    owner_set(alice, room, field("muc#roomconfig_membersonly", "1"))
    r = carol.iq("set", f"<query xmlns='{NS_MAM}'/>", to=room)
    assert cond(r) == "forbidden"


def test_no_archive_without_logging(muc_server, login):
    alice = login("alice")
    room = new_room(muc_server)
    create(alice, room, "A")
    groupchat(alice, room, "not logged")
    m = expect_body(alice, "not logged")
    assert m.find(q(NS_SID, "stanza-id")) is None
    results, fin = mam_page(alice, room)
    assert results == [] and fin.find(q(NS_MAM, "fin")).find(q(NS_RSM, "set")).findtext(q(NS_RSM, "count")) == "0"


def test_persistent_room_survives_restart(server_factory, raw_factory, storage_backend):
    """A persistent room with its configuration, subject, affiliations, registered
    nick, history, avatar and hats survives a restart, on SQLite and on PostgreSQL
    (the map store: nothing in the old SQLite tables); a destroyed one leaves
    nothing stored."""
    server = server_factory(modules=MODULES, storage=storage_backend)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    room = f"keep@conference.{server.domain}"
    temp = f"temp@conference.{server.domain}"
    created = create(alice, room, "A", field("muc#roomconfig_persistentroom", "1") + field("muc#roomconfig_roomname", "Kept")
           + field("muc#roomconfig_membersonly", "1"))
    create(alice, temp, "A")
    admin_set(alice, room, f"<item jid='bob@{server.domain}' affiliation='member'/>")
    alice.send(f"<message to='{room}' type='groupchat'><subject>Still here</subject></message>")
    alice.expect(MESSAGE, match=lambda e: e.findtext(q(NS_CLIENT, "subject")) == "Still here")
    # The history (history_size 5: the last five of seven) and a registered nick survive too.
    for i in range(7):
        groupchat(alice, room, f"kept {i}")
        expect_body(alice, f"kept {i}")
    r = alice.iq("set", "<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>"
                 + field("FORM_TYPE", "http://jabber.org/protocol/muc#register") + field("muc#register_roomnick", "Al")
                 + "</x></query>", to=room)
    assert r.get("type") == "result"
    # A room made persistent later keeps the history it had.
    later = f"later@conference.{server.domain}"
    create(alice, later, "A")
    groupchat(alice, later, "said before")
    expect_body(alice, "said before")
    owner_set(alice, later, field("muc#roomconfig_persistentroom", "1"))
    groupchat(alice, later, "said after")
    expect_body(alice, "said after")
    # Its avatar (XEP-0486) and hats (XEP-0317) are kept with it.
    vcard = "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>aW1hZ2U=</BINVAL></PHOTO></vCard>"
    assert alice.iq("set", vcard, to=room).get("type") == "result"
    don = (field("FORM_TYPE", "urn:xmpp:hats:commands") + field("accountjid", f"bob@{server.domain}")
           + field("hat", "urn:example:hat") + field("title", "Keeper"))
    r = alice.iq("set", "<command xmlns='http://jabber.org/protocol/commands' node='urn:xmpp:hats:commands:don'>"
                        f"<x xmlns='{NS_XDATA}' type='submit'>{don}</x></command>", to=room)
    assert r.get("type") == "result", ET.tostring(r, "unicode")
    first_id = oid(self_presence(created))
    # A persistent room destroyed before the restart leaves nothing behind.
    doomed = f"doomed@conference.{server.domain}"
    create(alice, doomed, "A", field("muc#roomconfig_persistentroom", "1"))
    groupchat(alice, doomed, "doomed")
    expect_body(alice, "doomed")
    assert alice.iq("set", f"<query xmlns='{NS_OWNER}'><destroy/></query>", to=doomed).get("type") == "result"
    alice.sync()
    alice.abort()
    server.restart()
    items = stored_items(server, storage_backend)
    assert items["/rooms"] == [room, later]
    assert sorted(items[f"r/{room}"]) == sorted(["config", "secret", "subject", "subject_nick",
                                                 f"a/alice@{server.domain}", f"a/bob@{server.domain}"]
                                                + [f"h/{n:020d}" for n in range(3, 8)])
    assert f"r/{doomed}" not in items
    assert f"r/{temp}" not in stored_maps(server, storage_backend)  # a temporary room writes nothing
    assert old_rows(server) == {}  # the first start dropped them, empty
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="r", presence=True)
    info = bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {"muc_persistent", "muc_membersonly"} <= features
    form = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_XDATA, "x"))
    assert [v.text for f in form.findall(q(NS_XDATA, "field")) if f.get("var") == "muc#roominfo_avatarhash"
            for v in f.findall(q(NS_XDATA, "value"))] == [hashlib.sha1(b"image").hexdigest()]
    assert cond(bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=temp)) == "item-not-found"
    assert cond(bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=doomed)) == "item-not-found"
    got = join(bob, room, "B")  # a member: admitted
    hats = self_presence(got).find("{urn:xmpp:hats:0}hats")
    assert [(h.get("uri"), h.get("title")) for h in hats] == [("urn:example:hat", "Keeper")]
    assert got[-1].findtext(q(NS_CLIENT, "subject")) == "Still here"
    history = [e for e in got if e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body"))]
    assert [m.findtext(q(NS_CLIENT, "body")) for m in history] == [f"kept {i}" for i in range(2, 7)]
    assert all(m.get("from") == f"{room}/A" and m.find(q(NS_DELAY, "delay")).get("from") == room for m in history)
    assert oid(history[0]) == first_id
    assert join_refused(bob, room, "Al") == "conflict"  # bob is in as B: a nick change to alice's nick
    got = join(bob, later, "B")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in got if e.tag == MESSAGE
            and e.findtext(q(NS_CLIENT, "body"))] == ["said before", "said after"]
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    got = join(alice, room, "A")
    me = self_presence(got)
    assert item(me).get("affiliation") == "owner" and "201" not in codes(me)
    assert oid(me) == first_id
    r = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='x-roomuser-item'/>", to=room)
    assert r.find(q(NS_DISCO_INFO, "query")).find(q(NS_DISCO_INFO, "identity")).get("name") == "Al"


# A module that serves a subdomain can be reloaded (the core refused the new code's
# register_route while the old instance still held the route: the reload failed).
def test_reload_keeps_persistent_rooms_and_self_ping_detects_the_loss(server_factory, raw_factory):
    server = server_factory(modules=MODULES)
    server.register("alice", PASSWORD)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    room, temp = f"kept@conference.{server.domain}", f"gone@conference.{server.domain}"
    create(alice, room, "A", field("muc#roomconfig_persistentroom", "1"))
    create(alice, temp, "A")
    reloaded = server.ctl("module", "reload", "mod_muc")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    # The old code tells the occupants the service went away (332).
    for r in (room, temp):
        gone = alice.expect(PRESENCE, match=lambda e, r=r: e.get("from") == f"{r}/A" and e.get("type") == "unavailable")
        assert codes(gone) == {"110", "332"} and item(gone).get("role") == "none"
    # The occupants are not carried over: the self-ping tells the client to join again.
    r = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"{room}/A")
    assert cond(r) == "not-acceptable"
    assert cond(alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=temp)) == "item-not-found"
    got = join(alice, room, "A")
    assert item(self_presence(got)).get("affiliation") == "owner"


def test_rows_of_the_old_tables_are_moved_into_the_map_store(server_factory, raw_factory, pg_storage):
    """A server that kept its rooms in mod_muc_rooms, mod_muc_affiliations and
    mod_muc_history (the SQLite tables before the map store, still declared) serves
    them after the upgrade: moved at the first start into the map store, here on
    PostgreSQL, and deleted from the old tables; another service's rows are left
    alone. The history goes on after the moved messages, across a restart."""
    modules = {**MODULES, "mod_muc": dict(MODULES["mod_muc"])}  # history_size changes below
    server = server_factory(modules=modules, storage=pg_storage)  # creates the old tables
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    server.stop()
    d = server.domain
    room, other = f"old@conference.{d}", "old@conference.elsewhere.example"
    now_ms = int(time.time() * 1000)

    def message(text):
        return f"<message xmlns='jabber:client' from='{room}/A' type='groupchat'><body>{text}</body></message>"
    db = sqlite3.connect(server.data_dir / "parley.db")
    recreate_old_tables(db, "mod_muc_rooms", "mod_muc_affiliations", "mod_muc_history")
    with db:
        for jid in (room, other):
            db.execute("INSERT INTO mod_muc_rooms (jid, secret, config, subject, subject_nick) VALUES (?, ?, ?, ?, ?)",
                       (jid, "c2VjcmV0IG9mIG9sZA==", "name=Old room\npersistent=1\nmembers_only=1\n",
                        "Old\nsubject", "A"))
            db.executemany("INSERT INTO mod_muc_affiliations (room, jid, affiliation, reason, nick) "
                           "VALUES (?, ?, ?, ?, ?)",
                           [(jid, f"alice@{d}", "owner", "", "Al"), (jid, f"bob@{d}", "member", "one\ntwo", "")])
            db.executemany("INSERT INTO mod_muc_history (room, seq, stamp, xml) VALUES (?, ?, ?, ?)",
                           [(jid, seq, now_ms - 1000 + seq, message(f"old {seq}")) for seq in (7, 8, 9)])
    db.close()
    server.start()
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="r", presence=True)
    info = bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    assert info.find(q(NS_DISCO_INFO, "query")).find(q(NS_DISCO_INFO, "identity")).get("name") == "Old room"
    assert {"muc_persistent", "muc_membersonly"} <= {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    got = join(bob, room, "B")  # a member: admitted
    assert item(self_presence(got)).get("affiliation") == "member"
    assert got[-1].findtext(q(NS_CLIENT, "subject")) == "Old\nsubject" and got[-1].get("from") == f"{room}/A"
    assert [e.findtext(q(NS_CLIENT, "body")) for e in got if e.tag == MESSAGE
            and e.findtext(q(NS_CLIENT, "body"))] == ["old 7", "old 8", "old 9"]
    assert [(i.get("jid"), i.findtext(q(NS_ADMIN, "reason"))) for i in admin_get(bob, room, "affiliation='member'")] == [
        (f"bob@{d}", "one\ntwo")]
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    r = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='x-roomuser-item'/>", to=room)
    assert r.find(q(NS_DISCO_INFO, "query")).find(q(NS_DISCO_INFO, "identity")).get("name") == "Al"
    assert item(self_presence(join(alice, room, "Al"))).get("affiliation") == "owner"
    groupchat(alice, room, "new 10")
    expect_body(bob, "new 10")
    for log in ("mod_muc: moving 5 rows into the keyval store", "mod_muc: moving 2 rows into the keyval store",
                "mod_muc: moving 3 rows into the keyval store"):
        assert log in server.log()
    deadline = time.monotonic() + 10
    while True:
        db = sqlite3.connect(server.data_dir / "parley.db", timeout=10)
        left = [db.execute(f"SELECT {'jid' if t == 'mod_muc_rooms' else 'room'}, COUNT(*) FROM {t} GROUP BY 1")
                .fetchall() for t in OLD_TABLES]
        db.close()
        if left == [[(other, 1)], [(other, 2)], [(other, 3)]] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == [[(other, 1)], [(other, 2)], [(other, 3)]]
    alice.sync()
    server.restart()
    again = raw_factory(server.c2s_port)
    again.login("bob", PASSWORD, resource="r2", presence=True)
    got = join(again, room, "B")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in got if e.tag == MESSAGE
            and e.findtext(q(NS_CLIENT, "body"))] == ["old 7", "old 8", "old 9", "new 10"]
    # A history_size lowered since: the older messages leave the store at start too.
    again.sync()
    modules["mod_muc"]["history_size"] = 2
    server.restart()
    again = raw_factory(server.c2s_port)
    again.login("bob", PASSWORD, resource="r3", presence=True)
    got = join(again, room, "B")
    assert [e.findtext(q(NS_CLIENT, "body")) for e in got if e.tag == MESSAGE
            and e.findtext(q(NS_CLIENT, "body"))] == ["old 9", "new 10"]
    again.sync()  # the removal was asked at start, before the join's answer
    server.stop()
    assert [k for k in stored_items(server, pg_storage)[f"r/{room}"] if k.startswith("h/")] == [
        f"h/{n:020d}" for n in (9, 10)]
