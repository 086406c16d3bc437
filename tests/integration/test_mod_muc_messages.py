"""mod_muc: groupchat and private messages, iqs between occupants, the
subject, history on join, slixmpp's xep_0045, and the limits.

One server per suite (module-scoped, muc_support.py); tests that need
another configuration or a restart start their own. Negative checks end with
a round trip."""

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)


def test_private_messages(muc_server, login):
    alice, bob, dave = login("alice"), login("bob"), login("dave")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    bob.message(f"{room}/A", "psst")
    m = expect_body(alice, "psst")
    assert m.get("from") == f"{room}/B" and m.get("type") == "chat"
    assert m.find(q(NS_USER, "x")) is not None and oid(m)
    sid = bob.message(f"{room}/A", "no", type_="groupchat")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "bad-request"
    sid = bob.message(f"{room}/Nobody", "no")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "item-not-found"
    sid = dave.message(f"{room}/A", "outsider")
    assert cond(dave.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "not-acceptable"
    # allowpm none: refused.
    owner_set(alice, room, field("muc#roomconfig_allowpm", "none"))
    sid = bob.message(f"{room}/A", "still?")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "forbidden"


def test_iq_between_occupants_is_proxied(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    join(carol, room, "C")
    bob.send(f"<iq type='get' id='v1' to='{room}/A'><query xmlns='jabber:iq:version'/></iq>")
    asked = alice.expect(IQ, match=lambda e: e.get("type") == "get")
    assert asked.get("from") == f"{room}/B" and asked.get("id") != "v1"  # the room's id, not bob's
    # An answer from someone else with that id is not taken.
    carol.send(f"<iq type='result' id='{asked.get('id')}' to='{room}/B'><query xmlns='jabber:iq:version'>"
               "<name>forged</name></query></iq>")
    carol.sync()
    alice.send(f"<iq type='result' id='{asked.get('id')}' to='{room}/B'><query xmlns='jabber:iq:version'>"
               "<name>alice-client</name></query></iq>")
    answer = bob.expect(IQ, match=lambda e: e.get("id") == "v1")
    assert answer.get("type") == "result" and answer.get("from") == f"{room}/A"
    assert answer.find(q("jabber:iq:version", "query")).findtext(q("jabber:iq:version", "name")) == "alice-client"
    # Not an occupant: refused.
    dave = login("dave")
    r = dave.iq("get", "<query xmlns='jabber:iq:version'/>", to=f"{room}/A")
    assert cond(r) == "not-acceptable"


def test_subject(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    sid = bob.new_id()
    bob.send(f"<message to='{room}' type='groupchat' id='{sid}'><subject>mine</subject></message>")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "forbidden"
    alice.send(f"<message to='{room}' type='groupchat'><subject>Topic one</subject></message>")
    s = bob.expect(MESSAGE, match=lambda e: e.findtext(q(NS_CLIENT, "subject")) == "Topic one")
    assert s.get("from") == f"{room}/A"
    got = join(carol, room, "C")
    assert got[-1].findtext(q(NS_CLIENT, "subject")) == "Topic one"
    # changesubject: participants may.
    owner_set(alice, room, field("muc#roomconfig_changesubject", "1"))
    bob.send(f"<message to='{room}' type='groupchat'><subject>by bob</subject></message>")
    carol.expect(MESSAGE, match=lambda e: e.findtext(q(NS_CLIENT, "subject")) == "by bob")


def test_history_parameters(muc_server, login):
    alice = login("alice")
    room = new_room(muc_server)
    create(alice, room, "A")
    for i in range(7):
        groupchat(alice, room, f"m{i}")
        expect_body(alice, f"m{i}")

    def history(x):
        c = login("bob", resource=f"h{next(room_numbers)}")
        got = join(c, room, f"h{next(room_numbers)}", x)
        msgs = [e for e in got if e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body"))]
        for m in msgs:
            d = m.find(q(NS_DELAY, "delay"))
            assert d is not None and d.get("from") == room and d.get("stamp")
            assert m.get("from") == f"{room}/A"
        c.abort()
        return [m.findtext(q(NS_CLIENT, "body")) for m in msgs]

    assert history("") == ["m2", "m3", "m4", "m5", "m6"]  # history_size 5
    assert history("<history maxstanzas='2'/>") == ["m5", "m6"]
    assert history("<history maxchars='0'/>") == []
    assert history("<history seconds='3600'/>") == ["m2", "m3", "m4", "m5", "m6"]
    assert history("<history since='2100-01-01T00:00:00Z'/>") == []
    assert history("<history since='2000-01-01T00:00:00Z' maxstanzas='1'/>") == ["m6"]


def test_slixmpp_xep_0045(muc_server, login):
    from slixmpp import JID
    from slix_driver import SlixRunner
    runner = SlixRunner()
    try:
        alice = login("alice")
        room = new_room(muc_server)
        create(alice, room, "A")
        slix = runner.client(f"bob@{muc_server.domain}/slix", PASSWORD)
        slix.xmpp.register_plugin("xep_0045")
        assert runner.run(slix.connect(muc_server.c2s_port)) is True
        runner.run(slix.xmpp["xep_0045"].join_muc_wait(JID(room), "SlixBob", maxstanzas=0, timeout=10))
        alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/SlixBob")
        groupchat(alice, room, "to slix")

        async def got():
            while True:
                m = await slix.next_message()
                if m["type"] == "groupchat" and m["body"] == "to slix":
                    return m
        m = runner.run(got())
        assert str(m["from"]) == f"{room}/A"
        slix.xmpp.send_message(mto=room, mbody="from slix", mtype="groupchat")
        runner.run(slix.sync())
        assert expect_body(alice, "from slix").get("from") == f"{room}/SlixBob"
    finally:
        runner.close()


def test_limits(server_factory, raw_factory):
    modules = dict(MODULES)
    modules["mod_muc"] = {"max_users": 2, "max_affiliations": 2, "rate_per_minute": 1, "rate_burst": 2,
                          "max_rooms": 2}
    server = server_factory(modules=modules)
    clients = {}
    for user in ("alice", "bob", "carol"):
        server.register(user, PASSWORD)
        clients[user] = raw_factory(server.c2s_port)
        clients[user].login(user, PASSWORD, resource="r", presence=True)
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]
    room = f"limits@conference.{server.domain}"
    create(alice, room, "A", field("muc#roomconfig_maxusers", "5"))
    form = alice.iq("get", f"<query xmlns='{NS_OWNER}'/>", to=room)
    maxusers = [f for f in form.iter(q(NS_XDATA, "field")) if f.get("var") == "muc#roomconfig_maxusers"][0]
    assert maxusers.findtext(q(NS_XDATA, "value")) == "2"  # capped by max_users
    join(bob, room, "B")
    assert join_refused(carol, room, "C") == "service-unavailable"
    # Affiliations: the owner and one more.
    assert admin_set(alice, room, f"<item jid='bob@{server.domain}' affiliation='member'/>").get("type") == "result"
    r = admin_set(alice, room, f"<item jid='carol@{server.domain}' affiliation='outcast'/>")
    assert cond(r) == "resource-constraint"
    # The message rate: a burst of two, then refused.
    for i in range(2):
        groupchat(bob, room, f"burst {i}")
        expect_body(bob, f"burst {i}")
    sid = groupchat(bob, room, "one too many")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "resource-constraint"
    # Nick changes and presence updates count too: refused / not broadcast; bob stays as B.
    assert join_refused(bob, room, "Bee") == "resource-constraint"
    bob.send(f"<presence to='{room}/B'><show>dnd</show></presence>")
    assert bob.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"{room}/B").get("type") == "result"
    before = marker(alice, [bob], room)[0]
    assert [e for e in before if e.tag == PRESENCE and e.findtext(q(NS_CLIENT, "show")) == "dnd"] == []
    # Rooms: one per worker loop here, so of three more at least one is refused.
    refused = 0
    for i in range(3):
        other = f"more{i}@conference.{server.domain}"
        carol.send(f"<presence to='{other}/C'><x xmlns='{NS_MUC}'/></presence>")
        e = carol.expect(PRESENCE, match=lambda e, o=other: e.get("from", "").startswith(o)
                         and (e.get("type") == "error" or "110" in codes(e)))
        if e.get("type") == "error":
            assert cond(e) == "resource-constraint"
            refused += 1
    assert refused >= 1


def test_rooms_per_user(server_factory, raw_factory):
    modules = dict(MODULES)
    modules["mod_muc"] = {"max_rooms_per_user": 1}
    server = server_factory(modules=modules)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    alice, bob = raw_factory(server.c2s_port), raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    bob.login("bob", PASSWORD, resource="r", presence=True)
    first, second = f"first@conference.{server.domain}", f"second@conference.{server.domain}"
    create(alice, first, "A")
    assert join_refused(alice, second, "A") == "not-allowed"
    # Joining a room someone else created is not creating one.
    bobs = f"bobs@conference.{server.domain}"
    create(bob, bobs, "B")
    join(alice, bobs, "A")
    # Once her room is gone, she may create another.
    alice.send(f"<presence to='{first}/A' type='unavailable'/>")
    alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{first}/A")
    assert "201" in codes(self_presence(join(alice, second, "A")))
