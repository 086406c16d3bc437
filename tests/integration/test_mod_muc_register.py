"""mod_muc: registering with a room (XEP-0045 §7.10): the muc#register form,
a reserved nick (conflict for anyone else at registration, join and nick
change), its discovery (§7.12, disco#info node x-roomuser-item), the
membership it gives and takes back (<remove/>), members-only rooms; status
101 (an affiliation changed while not in the room) and 333 (removed after an
error reply).

One server per suite (module-scoped, muc_support.py). Negative checks end with
a round trip."""

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)

NS_REGISTER = "jabber:iq:register"
FORM_REGISTER = "http://jabber.org/protocol/muc#register"


def register(client, room, nick, form_type=FORM_REGISTER):
    fields = (field("FORM_TYPE", form_type) if form_type else "") + field("muc#register_roomnick", nick)
    return client.iq("set", f"<query xmlns='{NS_REGISTER}'><x xmlns='{NS_XDATA}' type='submit'>{fields}</x></query>",
                     to=room)


def unregister(client, room):
    return client.iq("set", f"<query xmlns='{NS_REGISTER}'><remove/></query>", to=room)


def reserved_nick(client, room):
    r = client.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='x-roomuser-item'/>", to=room)
    assert r.get("type") == "result", ET.tostring(r, "unicode")
    query = r.find(q(NS_DISCO_INFO, "query"))
    assert query.get("node") == "x-roomuser-item"
    ident = query.find(q(NS_DISCO_INFO, "identity"))
    if ident is None:
        return None
    assert (ident.get("category"), ident.get("type")) == ("conference", "text")
    return ident.get("name")


def test_registration_reserves_the_nick_and_makes_a_member(muc_server, login):
    alice, bob, carol, dave = login("alice"), login("bob"), login("carol"), login("dave")
    d = muc_server.domain
    room = new_room(muc_server)
    create(alice, room, "A")
    join(carol, room, "C")
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    assert NS_REGISTER in {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    # The form (§7.10), before registering.
    r = bob.iq("get", f"<query xmlns='{NS_REGISTER}'/>", to=room)
    assert r.get("type") == "result" and r.get("from") == room
    query = r.find(q(NS_REGISTER, "query"))
    assert query.find(q(NS_REGISTER, "registered")) is None
    form = query.find(q(NS_XDATA, "x"))
    assert form.get("type") == "form"
    fields = {f.get("var"): f for f in form.findall(q(NS_XDATA, "field"))}
    assert fields["FORM_TYPE"].get("type") == "hidden"
    assert fields["FORM_TYPE"].findtext(q(NS_XDATA, "value")) == FORM_REGISTER
    assert fields["muc#register_roomnick"].find(q(NS_XDATA, "required")) is not None
    assert {"muc#register_first", "muc#register_last", "muc#register_url", "muc#register_email",
            "muc#register_faqentry"} <= set(fields)
    assert reserved_nick(bob, room) is None
    # Not a muc#register form, or no nick: bad-request; a nick in use by another account: conflict.
    assert cond(register(bob, room, "Bobby", form_type=None)) == "bad-request"
    assert cond(register(bob, room, "Bobby", form_type="urn:other")) == "bad-request"
    assert cond(register(bob, room, "")) == "bad-request"
    assert cond(register(bob, room, "C")) == "conflict"
    assert register(bob, room, "Bobby").get("type") == "result"
    assert reserved_nick(bob, room) == "Bobby"
    # A member now, listed with the nick; registered: <registered/> and the nick in the form.
    members = admin_get(alice, room, "affiliation='member'")
    assert [(i.get("jid"), i.get("nick")) for i in members] == [(f"bob@{d}", "Bobby")]
    r = bob.iq("get", f"<query xmlns='{NS_REGISTER}'/>", to=room)
    query = r.find(q(NS_REGISTER, "query"))
    assert query.find(q(NS_REGISTER, "registered")) is not None
    nick_field = [f for f in query.iter(q(NS_XDATA, "field")) if f.get("var") == "muc#register_roomnick"][0]
    assert nick_field.findtext(q(NS_XDATA, "value")) == "Bobby"
    # The nick is bob's: another account may not register it, join with it or change to it (§7.12).
    assert cond(register(dave, room, "Bobby")) == "conflict"
    assert join_refused(dave, room, "Bobby") == "conflict"
    assert join_refused(carol, room, "Bobby") == "conflict"
    # Bob joins with it, as a member; asking from inside the room is no error (§7.12).
    got = join(bob, room, "Bobby")
    assert item(self_presence(got)).get("affiliation") == "member"
    assert reserved_nick(bob, room) == "Bobby"
    # An occupant registering: every occupant sees it become a member (§7.10).
    assert register(carol, room, "C").get("type") == "result"
    p = alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/C" and item(e).get("affiliation") == "member")
    assert item(p).get("role") == "participant" and p.get("type") is None
    # Cancelling: the membership goes (a presence says so), the nick is free.
    assert unregister(bob, room).get("type") == "result"
    p = alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/Bobby" and item(e).get("affiliation") == "none")
    assert p.get("type") is None
    assert reserved_nick(bob, room) is None
    assert cond(unregister(bob, room)) == "item-not-found"
    assert [i.get("jid") for i in admin_get(alice, room, "affiliation='member'")] == [f"carol@{d}"]
    join(dave, room, "D")
    assert join_refused(dave, room, "Bobby") == "conflict"  # in use by bob now, no longer reserved
    # A ban takes the registered nick with the membership.
    assert admin_set(alice, room, f"<item jid='carol@{d}' affiliation='outcast'/>").get("type") == "result"
    carol.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and "301" in codes(e))
    assert cond(register(carol, room, "C")) == "not-allowed"
    assert reserved_nick(carol, room) is None
    assert register(dave, room, "C").get("type") == "result"  # free again


def test_registration_in_a_members_only_room(muc_server, login):
    alice, bob = login("alice"), login("bob")
    d = muc_server.domain
    room = new_room(muc_server)
    create(alice, room, "A", field("muc#roomconfig_membersonly", "1"))
    # Registering would let anyone in: refused to who is not on the member list (§7.10 not-allowed).
    assert cond(bob.iq("get", f"<query xmlns='{NS_REGISTER}'/>", to=room)) == "not-allowed"
    assert cond(register(bob, room, "B")) == "not-allowed"
    assert join_refused(bob, room, "B") == "registration-required"
    admin_set(alice, room, f"<item jid='bob@{d}' affiliation='member'/>")
    assert register(bob, room, "B").get("type") == "result"
    got = join(bob, room, "B")
    assert item(self_presence(got)).get("affiliation") == "member"
    # The owner reserves a nick too, and keeps her affiliation when she cancels.
    assert register(alice, room, "Boss").get("type") == "result"
    assert unregister(alice, room).get("type") == "result"
    assert [i.get("jid") for i in admin_get(alice, room, "affiliation='owner'")] == [f"alice@{d}"]
    # Cancelling bob's registration ends his membership: out of the room with 321.
    assert unregister(bob, room).get("type") == "result"
    gone = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert codes(gone) == {"321", "110"}
    # A room that does not exist: item-not-found.
    assert cond(bob.iq("get", f"<query xmlns='{NS_REGISTER}'/>", to=new_room(muc_server))) == "item-not-found"


def test_membership_granted_with_a_nick_or_by_nick(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    d = muc_server.domain
    room = new_room(muc_server)
    create(alice, room, "A")
    # §9.3: with a JID and a nick, the nick becomes the member's reserved nick.
    assert admin_set(alice, room, f"<item affiliation='member' jid='bob@{d}' nick='Bobo'/>").get("type") == "result"
    assert reserved_nick(bob, room) == "Bobo"
    assert join_refused(carol, room, "Bobo") == "conflict"
    assert cond(admin_set(alice, room, f"<item affiliation='member' jid='carol@{d}' nick='Bobo'/>")) == "conflict"
    # By nick alone, for an occupant.
    join(carol, room, "C")
    assert admin_set(alice, room, "<item affiliation='member' nick='C'/>").get("type") == "result"
    p = carol.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/C" and item(e).get("affiliation") == "member")
    assert "110" in codes(p)
    assert cond(admin_set(alice, room, "<item affiliation='member' nick='Nobody'/>")) == "item-not-found"
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='member'")} == {f"bob@{d}", f"carol@{d}"}


def test_status_101_affiliation_changed_while_away(muc_server, login):
    alice, dave = login("alice"), login("dave")
    d = muc_server.domain
    room = new_room(muc_server)
    create(alice, room, "A")
    assert admin_set(alice, room, f"<item jid='dave@{d}' affiliation='admin'/>").get("type") == "result"
    m = dave.expect(MESSAGE, match=lambda e: e.get("from") == room)
    x = m.find(q(NS_USER, "x"))
    assert "101" in {s.get("code") for s in x.findall(q(NS_USER, "status"))}
    assert (x.find(q(NS_USER, "item")).get("affiliation"), x.find(q(NS_USER, "item")).get("jid")) == ("admin", f"dave@{d}")
    assert m.get("type") in (None, "normal")
    # In the room, the change comes as presence and no 101 message.
    join(dave, room, "D")
    admin_set(alice, room, f"<item jid='dave@{d}' affiliation='member'/>")
    before = marker(alice, [dave], room)[0]
    assert [e for e in before if e.tag == MESSAGE and "101" in codes(e)] == []
    assert [e for e in before if e.tag == PRESENCE and item(e).get("affiliation") == "member"]


def test_status_333_an_error_reply_removes_the_occupant(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    groupchat(alice, room, "are you there")
    m = expect_body(bob, "are you there")
    # Bob's client bounces the groupchat message back to where it came from.
    bob.send(f"<message type='error' to='{m.get('from')}'><body>are you there</body>"
             "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    gone = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert codes(gone) == {"307", "333", "110"} and item(gone).get("role") == "none"
    seen = alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/B")
    assert codes(seen) == {"307", "333"}


# Without mod_presence nothing tells a room that an occupant's session ended: the
# room learns it when the router bounces the next groupchat message to that
# session (RFC 6121 8.5.3.2.1), at once, while the room walks its occupants. The
# bounce was handled there and then: the occupant was removed from the map the
# broadcast was walking (parleyd crashed at the next step).
def test_a_bounced_broadcast_removes_a_gone_occupant(server_factory, raw_factory):
    modules = {name: options for name, options in MODULES.items() if name != "mod_presence"}
    server = server_factory(modules=modules)
    clients = {}
    for user in ("alice", "bob", "carol", "dave"):
        server.register(user, PASSWORD)
        clients[user] = raw_factory(server.c2s_port)
        clients[user].login(user, PASSWORD, resource="r")
    alice, bob, carol, dave = (clients[u] for u in ("alice", "bob", "carol", "dave"))
    room = f"bounce@conference.{server.domain}"
    create(alice, room, "A")
    for client, nick in ((bob, "B"), (carol, "C"), (dave, "D")):
        join(client, room, nick)
    # Dave, the last occupant in the room's order (by real JID), goes: the walk went on from his entry.
    gone_jid = dave.jid
    dave.close()
    # The router no longer knows dave's session once a ping to it comes back as an error.
    for _ in range(50):
        r = alice.iq("get", f"<ping xmlns='{NS_PING}'/>", to=gone_jid)
        if r.get("type") == "error":
            break
    assert r.get("type") == "error"
    groupchat(alice, room, "anyone there?")
    for c in (alice, bob, carol):
        # The message first: the bounce waits until the broadcast is done.
        got = until(c, lambda e: e.tag == PRESENCE and e.get("type") == "unavailable" and e.get("from") == f"{room}/D")
        assert codes(got[-1]) == {"307", "333"}
        assert [e.findtext(q(NS_CLIENT, "body")) for e in got if e.tag == MESSAGE] == ["anyone there?"]
    # The room goes on.
    groupchat(carol, room, "still here")
    for c in (alice, bob, carol):
        expect_body(c, "still here")
