"""mod_muc: roles and affiliations (kick, ban, voice, the lists and their
rules), invitations (mediated and direct), voice requests.

One server per suite (module-scoped, muc_support.py); tests that need
another configuration or a restart start their own. Negative checks end with
a round trip."""

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)


def test_kick_ban_and_lists(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    join(carol, room, "C")
    # A participant may not kick.
    r = admin_set(bob, room, "<item nick='C' role='none'/>")
    assert cond(r) == "forbidden"
    # Kicking oneself: conflict.
    r = admin_set(alice, room, "<item nick='A' role='none'/>")
    assert cond(r) == "conflict"
    r = admin_set(alice, room, "<item nick='Nope' role='none'/>")
    assert cond(r) == "item-not-found"
    r = admin_set(alice, room, "<item nick='B' role='none'><reason>out</reason></item>")
    assert r.get("type") == "result"
    kicked = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert codes(kicked) == {"307", "110"}
    assert item(kicked).findtext(q(NS_USER, "reason")) == "out"
    assert item(kicked).find(q(NS_USER, "actor")).get("nick") == "A"
    seen = carol.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and e.get("from") == f"{room}/B")
    assert codes(seen) == {"307"}
    # Ban by JID (a full JID names the bare one).
    r = admin_set(alice, room, f"<item jid='{carol.jid}' affiliation='outcast'><reason>bye</reason></item>")
    assert r.get("type") == "result"
    banned = carol.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert codes(banned) == {"301", "110"}
    alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and "301" in codes(e))
    assert join_refused(carol, room, "C2") == "forbidden"
    outcasts = admin_get(alice, room, "affiliation='outcast'")
    assert [(i.get("jid"), i.findtext(q(NS_ADMIN, "reason"))) for i in outcasts] == [(f"carol@{muc_server.domain}", "bye")]
    assert cond(bob.iq("get", f"<query xmlns='{NS_ADMIN}'><item affiliation='outcast'/></query>",
                                         to=room)) == "forbidden"
    # Members, voice, admins.
    join(bob, room, "B")
    r = admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='member'/>")
    assert r.get("type") == "result"
    assert [i.get("jid") for i in admin_get(alice, room, "affiliation='member'")] == [f"bob@{muc_server.domain}"]
    r = admin_set(alice, room, "<item nick='B' role='visitor'/>")
    assert r.get("type") == "result"
    v = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("role") == "visitor")
    assert "110" in codes(v)
    sid = groupchat(bob, room, "muted?")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "forbidden"
    r = admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='admin'/>")
    bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("role") == "moderator")
    # An admin kicks no owner (a lower affiliation) and bans not himself.
    assert cond(admin_set(bob, room, "<item nick='A' role='none'/>")) == "not-allowed"
    assert cond(admin_set(bob, room, f"<item jid='bob@{muc_server.domain}' affiliation='outcast'/>")) == "conflict"
    # An admin may not touch the owner; the last owner may not step down.
    r = admin_set(bob, room, f"<item jid='alice@{muc_server.domain}' affiliation='none'/>")
    assert cond(r) == "not-allowed"
    r = admin_set(alice, room, f"<item jid='alice@{muc_server.domain}' affiliation='admin'/>")
    assert cond(r) == "conflict"
    assert [i.get("jid") for i in admin_get(alice, room, "affiliation='owner'")] == [f"alice@{muc_server.domain}"]
    mods = admin_get(alice, room, "role='moderator'")
    assert {(i.get("nick"), i.get("jid"), i.get("role")) for i in mods} == {("A", alice.jid, "moderator"),
                                                                           ("B", bob.jid, "moderator")}
    # The moderator list is changed by JID too (9.8): a member made moderator and back.
    admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='member'/>")
    bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("affiliation") == "member")
    assert admin_set(alice, room, f"<item jid='{bob.jid}' role='moderator'/>").get("type") == "result"
    bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("role") == "moderator")
    assert admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' role='participant'/>").get("type") == "result"
    bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("role") == "participant")
    r = admin_set(alice, room, f"<item jid='nobody@{muc_server.domain}' role='moderator'/>")
    assert cond(r) == "item-not-found"


def test_voice_rules_and_a_new_moderators_view(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")  # semi-anonymous: real JIDs to moderators only
    join(bob, room, "B")
    join(carol, room, "C")
    for who in ("bob", "carol"):
        assert admin_set(alice, room, f"<item jid='{who}@{muc_server.domain}' affiliation='member'/>").get("type") == "result"
    # Made a moderator, bob sees the occupants' real JIDs (§8: a moderator's privilege).
    assert admin_set(alice, room, "<item nick='B' role='moderator'/>").get("type") == "result"
    seen = {}

    def learn(e):
        if e.tag == PRESENCE and e.get("from") != f"{room}/B" and item(e).get("jid"):
            seen[e.get("from")] = (item(e).get("jid"), item(e).get("role"))
        return len(seen) == 2
    until(bob, learn)
    assert seen == {f"{room}/A": (alice.jid, "moderator"), f"{room}/C": (carol.jid, "participant")}
    # §8.4: no moderator revokes the voice of an affiliation at or above its own (MUST).
    r = admin_set(bob, room, "<item nick='C' role='visitor'/>")
    assert cond(r) == "not-allowed" and error_type(r) == "cancel"
    assert admin_set(alice, room, f"<item jid='carol@{muc_server.domain}' affiliation='none'/>").get("type") == "result"
    assert admin_set(bob, room, "<item nick='C' role='visitor'/>").get("type") == "result"
    carol.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/C" and item(e).get("role") == "visitor")
    # ... and grants it back.
    assert admin_set(bob, room, "<item nick='C' role='participant'/>").get("type") == "result"
    carol.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/C" and item(e).get("role") == "participant")


def test_mediated_invitation_and_decline(muc_server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A", field("muc#roomconfig_membersonly", "1") + field("muc#roomconfig_passwordprotectedroom", "1")
           + field("muc#roomconfig_roomsecret", "pw"))
    alice.send(f"<message to='{room}' id='inv1'><x xmlns='{NS_USER}'><invite to='bob@{muc_server.domain}'>"
               "<reason>join us</reason></invite></x></message>")
    m = bob.expect(MESSAGE, match=lambda e: e.find(q(NS_USER, "x")) is not None)
    x = m.find(q(NS_USER, "x"))
    inv = x.find(q(NS_USER, "invite"))
    assert m.get("from") == room and inv.get("from") == f"{room}/A"
    assert inv.findtext(q(NS_USER, "reason")) == "join us" and x.findtext(q(NS_USER, "password")) == "pw"
    # Invited into a members-only room: now a member (and the password lets him in).
    join(bob, room, "B", "<password>pw</password>")
    # Without allowinvites a plain member may not invite.
    bob.send(f"<message to='{room}' id='inv2'><x xmlns='{NS_USER}'><invite to='carol@{muc_server.domain}'/></x></message>")
    assert cond(bob.expect(MESSAGE, match=lambda e: e.get("id") == "inv2")) == "forbidden"
    alice.send(f"<message to='{room}'><x xmlns='{NS_USER}'><invite to='carol@{muc_server.domain}'/></x></message>")
    carol.expect(MESSAGE, match=lambda e: e.find(q(NS_USER, "x")) is not None)
    carol.send(f"<message to='{room}'><x xmlns='{NS_USER}'><decline to='alice@{muc_server.domain}'>"
               "<reason>busy</reason></decline></x></message>")
    d = alice.expect(MESSAGE, match=lambda e: e.find(q(NS_USER, "x")) is not None
                     and e.find(q(NS_USER, "x")).find(q(NS_USER, "decline")) is not None)
    dec = d.find(q(NS_USER, "x")).find(q(NS_USER, "decline"))
    assert d.get("from") == room and dec.get("from") == f"carol@{muc_server.domain}"
    assert dec.findtext(q(NS_USER, "reason")) == "busy"
    # Membership revoked in a members-only room: out with 321.
    assert admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='none'/>").get("type") == "result"
    gone = bob.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    assert codes(gone) == {"321", "110"} and item(gone).get("affiliation") == "none"
    alice.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and codes(e) == {"321"})
    # A second decline has no invitation left to answer.
    carol.send(f"<message to='{room}' id='dec2'><x xmlns='{NS_USER}'><decline to='alice@{muc_server.domain}'/></x></message>")
    assert cond(carol.expect(MESSAGE, match=lambda e: e.get("id") == "dec2")) == "not-acceptable"


def test_direct_invitation_passes_through(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    alice.send(f"<message to='{bob.jid}' id='di1'><x xmlns='jabber:x:conference' jid='{room}' reason='come'/></message>")
    m = bob.expect(MESSAGE, match=lambda e: e.get("id") == "di1")
    x = m.find(q("jabber:x:conference", "x"))
    assert x.get("jid") == room and x.get("reason") == "come" and m.get("from") == alice.jid


def test_voice_request(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A", field("muc#roomconfig_moderatedroom", "1"))
    got = join(bob, room, "B")
    assert item(self_presence(got)).get("role") == "visitor"
    request = (f"<x xmlns='{NS_XDATA}' type='submit'>{field('FORM_TYPE', 'http://jabber.org/protocol/muc#request')}"
               f"{field('muc#role', 'participant')}</x>")
    bob.send(f"<message to='{room}'>{request}</message>")
    form = alice.expect(MESSAGE, match=lambda e: e.find(q(NS_XDATA, "x")) is not None)
    values = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in form.find(q(NS_XDATA, "x")).findall(q(NS_XDATA, "field"))}
    assert values["muc#roomnick"] == "B" and values["muc#jid"] == bob.jid and values["muc#request_allow"] == "false"
    approve = (f"<x xmlns='{NS_XDATA}' type='submit'>{field('FORM_TYPE', 'http://jabber.org/protocol/muc#request')}"
               f"{field('muc#role', 'participant')}{field('muc#roomnick', 'B')}{field('muc#request_allow', 'true')}</x>")
    alice.send(f"<message to='{room}'>{approve}</message>")
    p = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("role") == "participant")
    assert "110" in codes(p)
    groupchat(bob, room, "I can speak")
    expect_body(alice, "I can speak")


NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_HATS = "urn:xmpp:hats:0"


def test_hats(muc_server, login):
    """XEP-0317: admins and owners hand out hats with ad-hoc commands; presences carry them."""
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    info = bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    assert {NS_HATS, NS_COMMANDS} <= {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    items = bob.iq("get", f"<query xmlns='{NS_ITEMS}' node='{NS_COMMANDS}'/>", to=room)
    assert {i.get("node") for i in items.iter(q(NS_ITEMS, "item"))} == {
        "urn:xmpp:hats:commands:don", "urn:xmpp:hats:commands:doff"}
    hat = "http://example.org/hats#scribe"

    def command(client, node, fields=None):
        form = "" if fields is None else (
            f"<x xmlns='{NS_XDATA}' type='submit'>{field('FORM_TYPE', 'urn:xmpp:hats:commands')}{fields}</x>")
        return client.iq("set", f"<command xmlns='{NS_COMMANDS}' node='urn:xmpp:hats:commands:{node}' "
                                f"action='execute'>{form}</command>", to=room)

    def hats_of(p):
        h = p.find(q(NS_HATS, "hats"))
        return [] if h is None else [(e.get("uri"), e.get("title")) for e in h.findall(q(NS_HATS, "hat"))]
    d = muc_server.domain
    assert cond(command(bob, "don", field("accountjid", f"bob@{d}") + field("hat", hat))) == "forbidden"
    form = command(alice, "don")
    c = form.find(q(NS_COMMANDS, "command"))
    assert c.get("status") == "executing"
    assert {"accountjid", "hat"} <= {f.get("var") for f in c.iter(q(NS_XDATA, "field"))}
    r = command(alice, "don", field("accountjid", f"bob@{d}") + field("hat", hat) + field("title", "Scribe"))
    assert r.find(q(NS_COMMANDS, "command")).get("status") == "completed"
    mine = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and hats_of(e))
    assert "110" in codes(mine) and hats_of(mine) == [(hat, "Scribe")]
    alice.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and hats_of(e) == [(hat, "Scribe")])
    # A newcomer sees it; a hat the client claims itself is not shown.
    bob.send(f"<presence to='{room}/B'><hats xmlns='{NS_HATS}'><hat uri='urn:x:fake' title='Fake'/></hats></presence>")
    assert hats_of(bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B")) == [(hat, "Scribe")]
    got = join(carol, room, "C")
    assert [hats_of(p) for p in got if p.tag == PRESENCE and p.get("from") == f"{room}/B"] == [[(hat, "Scribe")]]
    # The hat named as the field's option, as in XEP-0317's example.
    r = command(alice, "doff", field("accountjid", f"bob@{d}")
                + f"<field var='hat'><option label='Scribe'><value>{hat}</value></option></field>")
    assert r.find(q(NS_COMMANDS, "command")).get("status") == "completed"
    off = carol.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B")
    assert hats_of(off) == []
    assert cond(command(alice, "doff", field("accountjid", f"bob@{d}") + field("hat", hat))) == "item-not-found"
    assert cond(command(alice, "nope")) == "item-not-found"
