"""mod_muc: the service and its disco, room creation (locked until configured),
the join order and status codes, nickname conflicts and changes, several
sessions under one nick, leaving, self-ping, destruction.

One server per suite (module-scoped, muc_support.py); tests that need
another configuration or a restart start their own. Negative checks end with
a round trip."""

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)


def test_service_disco_and_public_rooms(muc_server, login):
    alice = login("alice")
    items = alice.iq("get", f"<query xmlns='{NS_ITEMS}'/>", to=muc_server.domain)
    assert service(muc_server) in [i.get("jid") for i in items.iter(q(NS_ITEMS, "item"))]
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=service(muc_server))
    ident = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_DISCO_INFO, "identity"))
    assert (ident.get("category"), ident.get("type")) == ("conference", "text")
    features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert NS_MUC in features
    public, hidden = new_room(muc_server), new_room(muc_server)
    create(alice, public, form=field("muc#roomconfig_roomname", "Public one"))
    create(alice, hidden, form=field("muc#roomconfig_publicroom", "0"))
    items = alice.iq("get", f"<query xmlns='{NS_ITEMS}'/>", to=service(muc_server))
    listed = {i.get("jid"): i.get("name") for i in items.iter(q(NS_ITEMS, "item"))}
    assert listed.get(public) == "Public one"
    assert hidden not in listed
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=hidden)
    features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {NS_MUC, "muc_hidden", "muc_temporary", "muc_open", "muc_unmoderated", "muc_semianonymous",
            "muc_unsecured", NS_OID} <= features
    form = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_XDATA, "x"))
    vars_ = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in form.findall(q(NS_XDATA, "field"))}
    assert vars_["FORM_TYPE"] == "http://jabber.org/protocol/muc#roominfo"
    assert vars_["muc#roominfo_occupants"] == "1"
    # §7.11: no reserved nickname.
    r = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='x-roomuser-item'/>", to=hidden)
    assert r.get("type") == "result" and r.find(q(NS_DISCO_INFO, "query")).find(q(NS_DISCO_INFO, "identity")) is None
    missing = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=new_room(muc_server))
    assert cond(missing) == "item-not-found"


def test_locked_room_join_order_and_groupchat_on_both_loops(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    got = join(alice, room, "Al")
    me = self_presence(got)
    assert {"110", "201"} <= codes(me)
    assert (item(me).get("affiliation"), item(me).get("role")) == ("owner", "moderator")
    # Locked until the owner configures it (§10.1.1).
    assert join_refused(bob, room, "Bob") == "item-not-found"
    owner_set(alice, room, "")
    got = join(bob, room, "Bob")
    presences = [e for e in got if e.tag == PRESENCE]
    # The occupant already there, then bob himself (110) last; then the subject.
    assert [p.get("from") for p in presences] == [f"{room}/Al", f"{room}/Bob"]
    assert codes(presences[-1]) == {"110"}
    assert "201" not in codes(presences[-1])
    assert item(presences[0]).get("jid") is None  # semi-anonymous: not shown to a participant
    subject = got[-1]
    assert subject.findtext(q(NS_CLIENT, "subject")) == "" and subject.get("type") == "groupchat"
    bob_seen = alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/Bob")
    assert item(bob_seen).get("jid") == bob.jid  # a moderator sees real JIDs
    assert oid(bob_seen) == oid(presences[-1]) and oid(bob_seen)
    join(carol, room, "Carol")
    groupchat(bob, room, "hello all")
    msgs = [expect_body(c, "hello all") for c in (alice, bob, carol)]
    for c, m in zip((alice, bob, carol), msgs):
        assert m.get("from") == f"{room}/Bob" and m.get("type") == "groupchat" and m.get("to") == c.jid
        assert oid(m) == oid(bob_seen)
    # A message that is not groupchat, and one from a non-occupant, are refused.
    dave = login("dave")
    sid = groupchat(dave, room, "let me in")
    err = dave.expect(MESSAGE, match=lambda e: e.get("id") == sid)
    assert cond(err) == "not-acceptable"
    sid = bob.message(room, "normal to the room", type_="normal")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "bad-request"
    # dave is no occupant: nothing of the room reached him.
    assert dave.nothing_before_marker(bob) == []


def test_groupchat_nothing_to_non_occupant(muc_server, login):
    alice, dave = login("alice"), login("dave")
    room = new_room(muc_server)
    create(alice, room, "A")
    groupchat(alice, room, "private talk")
    expect_body(alice, "private talk")
    # dave never joined: a message to him after the groupchat arrives with nothing before it.
    assert dave.nothing_before_marker(alice) == []


def test_nick_conflict_and_change_keep_occupant_id(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    got = join(bob, room, "B")
    first_id = oid(self_presence(got))
    assert join_refused(bob, room, "A") == "conflict"  # a nick change to a taken nick
    carol = login("carol")
    assert join_refused(carol, room, "A") == "conflict"
    bob.send(f"<presence to='{room}/Bobby'/>")
    gone = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert gone.get("from") == f"{room}/B"
    assert codes(gone) == {"303", "110"} and item(gone).get("nick") == "Bobby"
    back = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/Bobby")
    assert "110" in codes(back) and back.get("type") is None
    assert oid(back) == first_id
    seen = alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/B")
    assert codes(seen) == {"303"}
    alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/Bobby")
    # The old nick is free again.
    join(carol, room, "B")


def test_multi_session_shares_the_nick(muc_server, login):
    alice, bob = login("alice"), login("bob")
    phone, desktop = login("carol", "phone"), login("carol", "desktop")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    join(phone, room, "Carol")
    bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/Carol")
    # Another session of the same account joins under the same nick; another account may not.
    got = join(desktop, room, "Carol")
    mine = self_presence(got)
    assert item(mine).get("role") == "participant"
    assert [p.get("from") for p in got if p.tag == PRESENCE].count(f"{room}/Carol") == 1  # only itself
    assert join_refused(alice, room, "Carol") == "conflict"  # alice is in the room as A: a nick change
    dave = login("dave")
    assert join_refused(dave, room, "Carol") == "conflict"
    # Both sessions get the room's messages and private messages to the nick.
    groupchat(bob, room, "to both")
    for c in (phone, desktop):
        expect_body(c, "to both")
    bob.message(f"{room}/Carol", "pm to both")
    for c in (phone, desktop):
        assert expect_body(c, "pm to both").get("from") == f"{room}/B"
    # One session leaves: the nick stays (nothing for the others); the last one leaving is broadcast.
    phone.send(f"<presence to='{room}/Carol' type='unavailable'/>")
    assert "110" in codes(phone.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable"))
    before = marker(alice, [bob], room)[0]
    assert [e for e in before if e.tag == PRESENCE and e.get("type") == "unavailable"] == []
    desktop.send(f"<presence to='{room}/Carol' type='unavailable'/>")
    bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/Carol")


def test_self_ping(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    r = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"{room}/A")
    assert r.get("type") == "result" and r.get("from") == f"{room}/A"
    r = bob.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"{room}/A")
    assert cond(r) == "not-acceptable"


def test_leave_and_session_end(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    join(carol, room, "C")
    bob.send(f"<presence to='{room}/B' type='unavailable'/>")
    mine = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert "110" in codes(mine) and item(mine).get("role") == "none"
    for c in (alice, carol):
        c.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/B")
    carol.close()  # the session ends: mod_presence's unavailable to the room removes her
    alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/C")
    # The nick is free once she is gone.
    join(bob, room, "C")


def test_join_again_and_no_nick(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B")
    # A client that lost track joins again from the same JID: the whole join once more.
    got = join(bob, room, "B")
    assert [p.get("from") for p in got if p.tag == PRESENCE] == [f"{room}/A", f"{room}/B"]
    assert "110" in codes(self_presence(got))
    # No nickname: jid-malformed, for an existing room and for a new one.
    carol = login("carol")
    for target in (room, new_room(muc_server)):
        carol.send(f"<presence to='{target}'><x xmlns='{NS_MUC}'/></presence>")
        err = carol.expect(PRESENCE, match=lambda e, t=target: e.get("type") == "error" and e.get("from") == t)
        assert cond(err) == "jid-malformed"


def test_empty_temporary_room_vanishes(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    alice.send(f"<presence to='{room}/A' type='unavailable'/>")
    alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    r = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    assert cond(r) == "item-not-found"
    # Joining again creates it anew, bob its owner.
    got = join(bob, room, "B")
    assert "201" in codes(self_presence(got))


def test_destroy_with_alternate_venue(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    r = bob.iq("set", f"<query xmlns='{NS_OWNER}'><destroy/></query>", to=room)
    assert cond(r) == "forbidden"
    r = alice.iq("set", f"<query xmlns='{NS_OWNER}'><destroy jid='other@{service(muc_server)}'>"
                        "<reason>moving</reason></destroy></query>", to=room)
    assert r.get("type") == "result"
    gone = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    d = gone.find(q(NS_USER, "x")).find(q(NS_USER, "destroy"))
    assert d.get("jid") == f"other@{service(muc_server)}" and d.findtext(q(NS_USER, "reason")) == "moving"
    assert (item(gone).get("affiliation"), item(gone).get("role")) == ("none", "none")
    assert "110" in codes(gone)
    assert cond(alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)) == "item-not-found"


def test_cancel_of_first_configuration_destroys(muc_server, login):
    alice = login("alice")
    room = new_room(muc_server)
    join(alice, room, "A")
    r = alice.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='cancel'/></query>", to=room)
    assert r.get("type") == "result"
    alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert cond(alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)) == "item-not-found"
    # §10.1.3: the owner gone before configuring the room it created (left, or
    # lost its connection): the room is destroyed, with <destroy/> (MUST).
    room = new_room(muc_server)
    join(alice, room, "A")
    alice.send(f"<presence to='{room}/A' type='unavailable'/>")
    gone = alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/A")
    assert gone.find(q(NS_USER, "x")).find(q(NS_USER, "destroy")) is not None
    assert "110" in codes(gone)
    assert cond(alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)) == "item-not-found"


def test_stanzas_of_unexpected_types(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    # An iq of a namespace the room does not serve: service-unavailable (RFC 6120 8.4);
    # one with no payload: bad-request.
    assert cond(bob.iq("get", "<query xmlns='urn:example:nothing'/>", to=room)) == "service-unavailable"
    assert cond(bob.iq("get", "", to=room)) == "bad-request"
    # A chat message to the room itself (§7.4: a service MAY reject): bad-request.
    sid = bob.message(room, "hello room", type_="chat")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "bad-request"
    # To an occupant JID whose occupant left: item-not-found (§7.5: MUST); from a
    # non-occupant: not-acceptable (§7.5: MUST), also for an iq.
    bob.send(f"<presence to='{room}/B' type='unavailable'/>")
    bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    sid = alice.message(f"{room}/B", "still there?", type_="chat")
    assert cond(alice.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "item-not-found"
    sid = carol.message(f"{room}/A", "psst", type_="chat")
    assert cond(carol.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "not-acceptable"
    r = carol.iq("get", "<query xmlns='jabber:iq:version'/>", to=f"{room}/A")
    assert cond(r) == "not-acceptable"
    # XEP-0045 #disco-occupant: a disco query to an occupant JID from a non-occupant: bad-request.
    for ns in (NS_DISCO_INFO, NS_ITEMS):
        r = carol.iq("get", f"<query xmlns='{ns}'/>", to=f"{room}/A")
        assert cond(r) == "bad-request" and error_type(r) == "modify"
    # Errors and results from anyone, and an unavailable or error presence from a
    # non-occupant, get no answer (RFC 6120 8.3.1); the occupants see nothing.
    carol.send(f"<message to='{room}' type='error'><error type='cancel'>"
               f"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    carol.send(f"<message to='{room}/A' type='error'><error type='cancel'>"
               f"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    carol.send(f"<iq to='{room}' type='result' id='stray1'/>")
    carol.send(f"<iq to='{room}/A' type='error' id='stray2'><error type='cancel'>"
               f"<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    carol.send(f"<presence to='{room}/Z' type='unavailable'/>")
    carol.send(f"<presence to='{room}/Z' type='error'/>")
    sid = carol.new_id()
    carol.send(f"<iq type='get' id='{sid}' to='{room}'><ping xmlns='{NS_PING}'/></iq>")
    assert carol.expect_nothing_until(lambda e: e.tag == IQ and e.get("id") == sid) == []
