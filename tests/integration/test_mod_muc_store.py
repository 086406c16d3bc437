"""mod_muc: the room's archive (XEP-0313 on the room JID), persistent rooms
across a restart and a module reload.

One server per suite (module-scoped, muc_support.py); tests that need
another configuration or a restart start their own. Negative checks end with
a round trip."""

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)


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
    results, fin = mam_page(carol, room, "<max>2</max><before/>", flip=True)
    assert result_ids(results) == [ids[2], ids[1]]
    s = fin.find(q(NS_MAM, "fin")).find(q(NS_RSM, "set"))
    assert (s.findtext(q(NS_RSM, "first")), s.findtext(q(NS_RSM, "last"))) == (ids[2], ids[1])
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


def test_persistent_room_survives_restart(server_factory, raw_factory):
    server = server_factory(modules=MODULES)
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
    first_id = oid(self_presence(created))
    alice.sync()
    alice.abort()
    server.restart()
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="r", presence=True)
    info = bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {"muc_persistent", "muc_membersonly"} <= features
    assert cond(bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=temp)) == "item-not-found"
    got = join(bob, room, "B")  # a member: admitted
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
