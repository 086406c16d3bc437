"""mod_muc (XEP-0045 group chat, XEP-0421 occupant ids, XEP-0410 self-ping)
against a running parleyd with two worker loops: the service and its disco,
room creation (locked until configured), the join order and status codes,
nickname conflicts and changes, groupchat broadcast, private messages,
subject, history parameters, leaving (and a session that ends), kick and ban,
the admin lists, members-only, password and max users refusals, configuration
fields taking effect, persistence across a restart, and slixmpp's xep_0045.

One server serves most tests (module-scoped: each test uses its own rooms);
the restart test starts its own. Negative checks end with a round trip."""

import itertools
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from parley_harness import ParleyServer, required_binary
from rawxmpp import NS_CLIENT, NS_DISCO_INFO, RawClient, q, stanza_error_condition

NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = "http://jabber.org/protocol/muc#user"
NS_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_OWNER = "http://jabber.org/protocol/muc#owner"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_XDATA = "jabber:x:data"
NS_DELAY = "urn:xmpp:delay"
NS_OID = "urn:xmpp:occupant-id:0"
NS_PING = "urn:xmpp:ping"
PRESENCE = q(NS_CLIENT, "presence")
MESSAGE = q(NS_CLIENT, "message")
IQ = q(NS_CLIENT, "iq")
USERS = ("alice", "bob", "carol", "dave")
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {},
           "mod_muc": {"history_size": 5}}
_rooms = itertools.count(1)


@pytest.fixture(scope="module")
def muc_server(tmp_path_factory):
    server = ParleyServer(tmp_path_factory.mktemp("muc"), required_binary("PARLEYD"),
                          required_binary("PARLEYCTL"), modules=MODULES)
    for user in USERS:
        server.register(user, PASSWORD)
    server.start()
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


@pytest.fixture
def login(muc_server):
    clients = []

    def make(user, resource="r"):
        c = RawClient(muc_server.c2s_port)
        c.login(user, PASSWORD, resource=resource, presence=True)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.abort()


def cond(stanza):
    """The error condition of an error reply."""
    return stanza_error_condition(stanza)[1]


def error_type(stanza):
    return stanza_error_condition(stanza)[0]


def service(server):
    return f"conference.{server.domain}"


def new_room(server):
    return f"room{next(_rooms)}@{service(server)}"


def codes(stanza):
    x = stanza.find(q(NS_USER, "x"))
    return set() if x is None else {s.get("code") for s in x.findall(q(NS_USER, "status"))}


def item(stanza):
    return stanza.find(q(NS_USER, "x")).find(q(NS_USER, "item"))


def oid(stanza):
    e = stanza.find(q(NS_OID, "occupant-id"))
    return None if e is None else e.get("id")


def until(client, pred, timeout=10):
    """Every element up to and including the first for which pred holds."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        e = client.next_element(max(0.01, deadline - time.monotonic()))
        got.append(e)
        if pred(e):
            return got


def is_subject(room):
    return lambda e: (e.tag == MESSAGE and e.get("from", "").split("/")[0] == room
                      and e.find(q(NS_CLIENT, "subject")) is not None and e.find(q(NS_CLIENT, "body")) is None)


def join(client, room, nick, x_children="", muc=True):
    """Joins; returns everything up to the subject (the join's last stanza)."""
    x = f"<x xmlns='{NS_MUC}'>{x_children}</x>" if muc else ""
    client.send(f"<presence to='{room}/{nick}'>{x}</presence>")
    return until(client, is_subject(room))


REFUSAL_TYPES = {"forbidden": "auth", "not-authorized": "auth", "registration-required": "auth",
                 "conflict": "cancel", "item-not-found": "cancel", "service-unavailable": "wait",
                 "not-allowed": "cancel", "resource-constraint": "wait"}


def join_refused(client, room, nick, x_children=""):
    client.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>{x_children}</x></presence>")
    err = client.expect(PRESENCE, match=lambda e: e.get("type") == "error" and e.get("from") == f"{room}/{nick}")
    assert err.find(q(NS_MUC, "x")) is not None  # §7.2: the error presence carries the MUC extension
    assert error_type(err) == REFUSAL_TYPES[cond(err)], ET.tostring(err, "unicode")
    return cond(err)


def self_presence(stanzas):
    return [e for e in stanzas if e.tag == PRESENCE and "110" in codes(e)][-1]


def create(client, room, nick="owner", form=""):
    """Creates a room (201) and accepts it as instant (empty submit) or with `form` fields."""
    got = join(client, room, nick)
    assert {"110", "201"} <= codes(self_presence(got))
    owner_set(client, room, form)
    return got


def owner_set(client, room, fields):
    r = client.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>"
                         f"<field var='FORM_TYPE'><value>{NS_OWNER.replace('owner', 'roomconfig')}</value></field>"
                         f"{fields}</x></query>", to=room)
    assert r.get("type") == "result", ET.tostring(r, "unicode")


def field(var, *values):
    return f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in values) + "</field>"


def groupchat(client, room, body):
    return client.message(room, body, type_="groupchat")


def expect_body(client, body, sender=None):
    return client.expect(MESSAGE, match=lambda e: e.findtext(q(NS_CLIENT, "body")) == body
                         and (sender is None or e.get("from") == sender))


def admin_set(client, room, items):
    return client.iq("set", f"<query xmlns='{NS_ADMIN}'>{items}</query>", to=room)


def marker(sender, receivers, room):
    """A groupchat marker through the room: whatever the room sent each
    receiver before it has arrived once the marker has; returns it all."""
    body = f"marker {sender.new_id()}"
    groupchat(sender, room, body)
    return [r.expect_nothing_until(lambda e: e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body")) == body)
            for r in receivers]


# -- the service -------------------------------------------------------------------

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


# -- joining ------------------------------------------------------------------------

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
        c = login("bob", resource=f"h{next(_rooms)}")
        got = join(c, room, f"h{next(_rooms)}", x)
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


# -- roles and affiliations ------------------------------------------------------------

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


def admin_get(client, room, attr):
    r = client.iq("get", f"<query xmlns='{NS_ADMIN}'><item {attr}/></query>", to=room)
    assert r.get("type") == "result", ET.tostring(r, "unicode")
    return r.find(q(NS_ADMIN, "query")).findall(q(NS_ADMIN, "item"))


# -- configuration -------------------------------------------------------------------------

def test_config_form_and_refusals(muc_server, login):
    alice, bob, carol, dave = login("alice"), login("bob"), login("carol"), login("dave")
    room = new_room(muc_server)
    create(alice, room, "A")
    form = alice.iq("get", f"<query xmlns='{NS_OWNER}'/>", to=room)
    vars_ = {f.get("var") for f in form.iter(q(NS_XDATA, "field"))}
    assert {"muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
            "muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
            "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret", "muc#roomconfig_maxusers",
            "muc#roomconfig_whois", "muc#roomconfig_allowinvites", "muc#roomconfig_changesubject",
            "muc#roomconfig_enablelogging", "muc#roomconfig_presencebroadcast", "muc#roomconfig_getmemberlist",
            "muc#roomconfig_allowpm", "muc#roomconfig_roomadmins", "muc#roomconfig_roomowners"} <= vars_
    assert cond(bob.iq("get", f"<query xmlns='{NS_OWNER}'/>", to=room)) == "forbidden"
    join(bob, room, "B")
    # Password.
    owner_set(alice, room, field("muc#roomconfig_passwordprotectedroom", "1") + field("muc#roomconfig_roomsecret", "pw"))
    assert bob.expect(MESSAGE, match=lambda e: "104" in codes(e)).get("from") == room
    assert join_refused(carol, room, "C") == "not-authorized"
    assert join_refused(carol, room, "C", "<password>nope</password>") == "not-authorized"
    join(carol, room, "C", "<password>pw</password>")
    # Max users (owners and admins excepted).
    owner_set(alice, room, field("muc#roomconfig_passwordprotectedroom", "0") + field("muc#roomconfig_maxusers", "3"))
    assert join_refused(dave, room, "D") == "service-unavailable"
    # whois anyone: 172, real JIDs to all.
    owner_set(alice, room, field("muc#roomconfig_whois", "anyone") + field("muc#roomconfig_maxusers", "10"))
    assert {"104", "172"} <= codes(carol.expect(MESSAGE, match=lambda e: "172" in codes(e)))
    got = join(dave, room, "D")
    assert "100" in codes(self_presence(got))
    assert all(item(p).get("jid") for p in got if p.tag == PRESENCE)
    # Moderated: a newcomer is a visitor and may not speak.
    owner_set(alice, room, field("muc#roomconfig_moderatedroom", "1"))
    dave.send(f"<presence to='{room}/D' type='unavailable'/>")
    dave.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    got = join(dave, room, "D")
    assert item(self_presence(got)).get("role") == "visitor"
    sid = groupchat(dave, room, "can I?")
    assert cond(dave.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "forbidden"
    # Members-only: non-members leave with 322, and newcomers need membership (407).
    owner_set(alice, room, field("muc#roomconfig_moderatedroom", "0") + field("muc#roomconfig_membersonly", "1"))
    for c in (bob, carol, dave):
        gone = c.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and "110" in codes(e))
        assert "322" in codes(gone)
    assert join_refused(bob, room, "B") == "registration-required"
    admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='member'/>")
    join(bob, room, "B")
    # Presence broadcast for moderators only: bob's presence does not reach carol's... (alice sees only moderators)
    owner_set(alice, room, field("muc#roomconfig_presencebroadcast", "moderator"))
    admin_set(alice, room, f"<item jid='carol@{muc_server.domain}' affiliation='member'/>")
    join(carol, room, "C")
    # A participant's join is not broadcast: alice (moderator) gets none of carol's presence before a marker.
    before = marker(carol, [alice], room)[0]
    assert [e for e in before if e.tag == PRESENCE and e.get("from") == f"{room}/C"] == []
    # Bad field values are refused, leaving the room as it was.
    r = alice.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>"
                        f"{field('muc#roomconfig_whois', 'everybody')}</x></query>", to=room)
    assert cond(r) == "not-acceptable"


def test_member_list_description_and_whois_back(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A", field("muc#roomconfig_roomdesc", "About things") + field("muc#roomconfig_whois", "anyone"))
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    form = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_XDATA, "x"))
    values = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in form.findall(q(NS_XDATA, "field"))}
    assert values["muc#roominfo_description"] == "About things"
    assert "muc_nonanonymous" in {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    join(bob, room, "B")
    admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='member'/>")
    # getmemberlist: every role by default, then moderators only.
    assert [i.get("jid") for i in admin_get(bob, room, "affiliation='member'")] == [f"bob@{muc_server.domain}"]
    owner_set(alice, room, field("muc#roomconfig_getmemberlist", "moderator"))
    r = bob.iq("get", f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
    assert cond(r) == "forbidden"
    # whois back to moderators: 173, and real JIDs no longer shown to participants.
    owner_set(alice, room, field("muc#roomconfig_whois", "moderators"))
    assert "173" in codes(bob.expect(MESSAGE, match=lambda e: "173" in codes(e)))
    alice.send(f"<presence to='{room}/A'><show>away</show></presence>")
    p = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/A" and e.findtext(q(NS_CLIENT, "show")) == "away")
    assert item(p).get("jid") is None


def test_direct_invitation_passes_through(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    alice.send(f"<message to='{bob.jid}' id='di1'><x xmlns='jabber:x:conference' jid='{room}' reason='come'/></message>")
    m = bob.expect(MESSAGE, match=lambda e: e.get("id") == "di1")
    x = m.find(q("jabber:x:conference", "x"))
    assert x.get("jid") == room and x.get("reason") == "come" and m.get("from") == alice.jid


def test_roomadmins_and_roomowners_fields(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    d = muc_server.domain
    owner_set(alice, room, field("muc#roomconfig_roomadmins", f"bob@{d}", f"carol@{d}"))
    p = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("affiliation") == "admin")
    assert item(p).get("role") == "moderator"
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='admin'")} == {f"bob@{d}", f"carol@{d}"}
    # A new list replaces the old one; admins left out become members.
    owner_set(alice, room, field("muc#roomconfig_roomadmins", f"carol@{d}")
              + field("muc#roomconfig_roomowners", f"alice@{d}", f"dave@{d}"))
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='admin'")} == {f"carol@{d}"}
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='owner'")} == {f"alice@{d}", f"dave@{d}"}
    assert [i.get("jid") for i in admin_get(alice, room, "affiliation='member'")] == [f"bob@{d}"]
    # An empty owner list would leave the room without an owner.
    r = alice.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>"
                        "<field var='muc#roomconfig_roomowners'/></x></query>", to=room)
    assert cond(r) == "conflict"


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


# -- invitations and voice requests -------------------------------------------------------

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


# -- the room's archive ---------------------------------------------------------------------

NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_SID = "urn:xmpp:sid:0"


def mam_page(client, room, rsm="", queryid="q1"):
    """(results, fin) of a MAM query to the room."""
    sid = client.new_id()
    client.send(f"<iq type='set' id='{sid}' to='{room}'><query xmlns='{NS_MAM}' queryid='{queryid}'>"
                f"<set xmlns='{NS_RSM}'>{rsm}</set></query></iq>")
    got = until(client, lambda e: e.tag == IQ and e.get("id") == sid)
    results = [e for e in got if e.tag == MESSAGE and e.find(q(NS_MAM, "result")) is not None]
    return results, got[-1]


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


# -- slixmpp ------------------------------------------------------------------------------

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


# -- limits ---------------------------------------------------------------------------------

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


# -- persistence ---------------------------------------------------------------------------

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


