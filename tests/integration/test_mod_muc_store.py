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
    # Logging off: 171 to the occupants.
    owner_set(alice, room, field("muc#roomconfig_enablelogging", "0"))
    assert {"104", "171"} <= codes(bob.expect(MESSAGE, match=lambda e: "171" in codes(e)))
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
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    got = join(alice, room, "A")
    me = self_presence(got)
    assert item(me).get("affiliation") == "owner" and "201" not in codes(me)
    assert oid(me) == first_id


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
    # The occupants are not carried over: the self-ping tells the client to join again.
    r = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"{room}/A")
    assert cond(r) == "not-acceptable"
    assert cond(alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=temp)) == "item-not-found"
    got = join(alice, room, "A")
    assert item(self_presence(got)).get("affiliation") == "owner"
