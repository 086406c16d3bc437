"""mod_carbons (XEP-0280 Message Carbons) against a running parleyd with two
worker loops: enable/disable and their errors, the disco feature, <received/>
and <sent/> copies with their exact XML between resources on different loops,
<private/>, XEP-0334 <no-copy/>, a message to the bare JID (or to a resource
that is not bound) given to one resource and copied to the other, equal
priorities, copies kept across a hot reload, slixmpp's xep_0280 plugin; and
XEP-0184 receipts and XEP-0333 chat markers passing through untouched.

Which loop a session is on comes from mod_test_stream's <where/> nonza (the
session id's top bits, as in test_session_seams.py). A check that a copy does
NOT arrive ends with a marker through the same path: a message routed from the
loop that would have posted the copy, after it would have, to the client that
must not get one (deliveries and posts from one loop to another keep their
order)."""

import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_DISCO_INFO, q, stanza_error_condition, xml_escape
from slix_driver import SlixRunner
from test_modules import module_dir

NS_CARBONS = "urn:xmpp:carbons:2"
NS_CARBONS_RULES = "urn:xmpp:carbons:rules:0"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_CONFERENCE = "jabber:x:conference"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_FORWARD = "urn:xmpp:forward:0"
NS_HINTS = "urn:xmpp:hints"
NS_RECEIPTS = "urn:xmpp:receipts"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_TEST = "urn:parley:test:stream"
MESSAGE = q(NS_CLIENT, "message")


# -- helpers ---------------------------------------------------------------------

def carbons_server(server_factory, tmp_path, users=("alice", "bob")):
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_carbons": {}, "mod_test_stream": {}}
    server = server_factory(module_paths=[module_dir(tmp_path, "mod_test_stream")], modules=modules, workers=2)
    for user in users:
        server.register(user, PASSWORD)
    return server


def loop_of(client):
    client.send(f"<where xmlns='{NS_TEST}'/>")
    here = client.expect(q(NS_TEST, "here"))
    return int(here.get("loop"))


def login(server, raw_factory, user, resource, priority=None, loop=None, tries=64):
    """A bound, available session (on worker `loop` if given: new connections
    until the kernel's SO_REUSEPORT spread puts one there)."""
    for _ in range(tries):
        client = raw_factory(server.c2s_port)
        client.login(user, PASSWORD, resource=resource)
        if loop is None or loop_of(client) == loop:
            prio = "" if priority is None else f"<priority>{priority}</priority>"
            client.send(f"<presence>{prio}</presence>")
            client.sync()
            return client
        client.close()
    raise AssertionError(f"no connection of {user} landed on loop {loop} in {tries} tries")


def enable(client, what="enable"):
    reply = client.iq("set", f"<{what} xmlns='{NS_CARBONS}'/>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    # XEP-0280 section 4: from the user's bare JID to the full JID.
    assert reply.get("from") == client.jid.split("/")[0]
    assert reply.get("to") == client.jid
    assert len(reply) == 0
    return reply


def two_loops(server, raw_factory, enable_both=True, phone_priority=None, laptop_priority=None):
    """alice/phone on loop 0, alice/laptop on loop 1, bob/b anywhere."""
    phone = login(server, raw_factory, "alice", "phone", phone_priority, loop=0)
    laptop = login(server, raw_factory, "alice", "laptop", laptop_priority, loop=1)
    bob = login(server, raw_factory, "bob", "b")
    if enable_both:
        enable(phone)
        enable(laptop)
    return phone, laptop, bob


def send(client, to, body, type_="chat", id_=None, extra=""):
    id_ = id_ or client.new_id()
    type_attr = f" type='{type_}'" if type_ is not None else ""
    body_xml = f"<body>{xml_escape(body)}</body>" if body is not None else ""
    client.send(f"<message to='{to}'{type_attr} id='{id_}'>{body_xml}{extra}</message>")
    return id_


def body_of(elem):
    return elem.findtext(q(NS_CLIENT, "body"))


def expect_body(client, body):
    return client.expect(MESSAGE, match=lambda e: body_of(e) == body)


def expect_carbon(client, kind):
    return client.expect(MESSAGE, match=lambda e: e.find(q(NS_CARBONS, kind)) is not None)


def forwarded_of(copy, kind):
    """The copy's exact shape (XEP-0280 sections 7 and 8): one <kind/>, holding
    one <forwarded/>, holding one <message/>: returns that message."""
    assert [c.tag for c in copy] == [q(NS_CARBONS, kind)], ET.tostring(copy, "unicode")
    wrapper = copy[0]
    assert [c.tag for c in wrapper] == [q(NS_FORWARD, "forwarded")]
    forwarded = wrapper[0]
    assert [c.tag for c in forwarded] == [MESSAGE]
    return forwarded[0]


def is_marker_copy(elem):
    """A copy of an earlier marker (a message between two resources of one
    user is copied to the third)."""
    for kind in ("received", "sent"):
        wrapper = elem.find(q(NS_CARBONS, kind))
        if wrapper is not None:
            inner = wrapper.find(f"{q(NS_FORWARD, 'forwarded')}/{MESSAGE}")
            return inner is not None and (body_of(inner) or "").startswith("marker ")
    return False


def messages_before_marker(client, sender):
    """The messages that came to `client` before a marker from `sender`
    (presence and copies of earlier markers left out)."""
    return [e for e in client.nothing_before_marker(sender) if e.tag == MESSAGE and not is_marker_copy(e)]


# -- enable, disable, errors, disco ----------------------------------------------

def test_enable_and_disable_answer_result_again_and_again(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "phone")
    enable(alice)
    enable(alice)  # section 10.1: enabling twice is no error
    enable(alice, "disable")
    enable(alice, "disable")
    # To the user's own bare JID, or to the server: the same.
    reply = alice.iq("set", f"<enable xmlns='{NS_CARBONS}'/>", to=f"alice@{server.domain}")
    assert reply.get("type") == "result"
    reply = alice.iq("set", f"<disable xmlns='{NS_CARBONS}'/>", to=server.domain)
    assert reply.get("type") == "result"


def test_the_server_advertises_carbons(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "phone")
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=server.domain)
    features = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert NS_CARBONS in features
    # Section 6.2: the rules of section 6.1 are followed, all of them.
    assert NS_CARBONS_RULES in features


def test_bad_requests_get_the_rfc_errors(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "phone")
    bob = login(server, raw_factory, "bob", "b")
    # A get: enable and disable are sets.
    reply = alice.iq("get", f"<enable xmlns='{NS_CARBONS}'/>")
    assert reply.get("type") == "error" and stanza_error_condition(reply) == ("modify", "bad-request")
    # Another element of the namespace.
    reply = alice.iq("set", f"<private xmlns='{NS_CARBONS}'/>")
    assert reply.get("type") == "error" and stanza_error_condition(reply) == ("modify", "bad-request")
    # Someone else's Carbons (section 5: not-allowed).
    reply = bob.iq("set", f"<disable xmlns='{NS_CARBONS}'/>", to=f"alice@{server.domain}")
    assert reply.get("type") == "error" and stanza_error_condition(reply) == ("cancel", "not-allowed")
    reply = bob.iq("set", f"<enable xmlns='{NS_CARBONS}'/>", to=f"alice@{server.domain}")
    assert reply.get("type") == "error" and stanza_error_condition(reply) == ("cancel", "not-allowed")
    # And bob's refused request enabled nothing for alice: alice/laptop gets no copy.
    laptop = login(server, raw_factory, "alice", "laptop")
    send(bob, alice.jid, "to the phone")
    expect_body(alice, "to the phone")
    assert messages_before_marker(laptop, alice) == []


# -- received and sent copies across loops -----------------------------------------

def test_received_copy_on_the_other_loop_with_the_original_intact(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    id_ = send(bob, phone.jid, "what man art thou", extra="<thread>0e3141cd</thread>")
    original = expect_body(phone, "what man art thou")
    assert original.find(q(NS_CARBONS, "received")) is None
    copy = expect_carbon(laptop, "received")
    assert dict(copy.attrib) == {"from": f"alice@{server.domain}", "to": laptop.jid, "type": "chat"}
    inner = forwarded_of(copy, "received")
    assert dict(inner.attrib) == {"from": bob.jid, "to": phone.jid, "type": "chat", "id": id_}
    assert body_of(inner) == "what man art thou"
    assert inner.findtext(q(NS_CLIENT, "thread")) == "0e3141cd"
    assert [c.tag for c in inner] == [q(NS_CLIENT, "body"), q(NS_CLIENT, "thread")]
    # The resource that got the original gets no copy of it (section 7).
    assert messages_before_marker(phone, laptop) == []


def test_sent_copy_on_the_other_loop_and_none_to_the_sender(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    id_ = send(laptop, bob.jid, "neither, fair saint")
    expect_body(bob, "neither, fair saint")
    copy = expect_carbon(phone, "sent")
    assert dict(copy.attrib) == {"from": f"alice@{server.domain}", "to": phone.jid, "type": "chat"}
    inner = forwarded_of(copy, "sent")
    assert dict(inner.attrib) == {"from": laptop.jid, "to": bob.jid, "type": "chat", "id": id_}
    assert body_of(inner) == "neither, fair saint"
    # No copy to the sending resource (section 8), nor anything extra to bob.
    assert messages_before_marker(laptop, phone) == []
    assert messages_before_marker(bob, laptop) == []


def test_sent_copies_go_to_enabled_resources_even_if_the_sender_did_not_enable(
        server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory, enable_both=False)
    enable(laptop)
    send(phone, bob.jid, "from a client without carbons")
    inner = forwarded_of(expect_carbon(laptop, "sent"), "sent")
    assert body_of(inner) == "from a client without carbons"


def test_normal_is_copied_with_a_body_or_an_im_payload_else_not(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    # A normal message without a body or an IM payload: not eligible.
    send(bob, phone.jid, None, type_="normal", extra="<x xmlns='urn:example:x'/>")
    phone.expect(MESSAGE, match=lambda e: e.find(q("urn:example:x", "x")) is not None)
    assert messages_before_marker(laptop, phone) == []
    # With a body, and with no type at all (normal): copied.
    send(bob, phone.jid, "normal with a body", type_=None)
    expect_body(phone, "normal with a body")
    copy = expect_carbon(laptop, "received")
    assert "type" not in copy.attrib
    assert body_of(forwarded_of(copy, "received")) == "normal with a body"
    # A headline is not copied.
    send(bob, phone.jid, "headline", type_="headline")
    expect_body(phone, "headline")
    assert messages_before_marker(laptop, phone) == []


def test_receipts_markers_and_chat_states_without_a_body_are_copied_both_ways(
        server_factory, tmp_path, raw_factory):
    # XEP-0280 1.0.1 section 6.1: a message carrying a payload "typically used
    # in IM" (XEP-0184, XEP-0085, XEP-0333) is eligible whatever its type.
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    payloads = [(NS_RECEIPTS, "received", " id='m0'"), (NS_RECEIPTS, "request", ""),
                (NS_MARKERS, "displayed", " id='m0'"), (NS_CHATSTATES, "paused", "")]
    for type_ in (None, "normal"):
        for ns, name, attrs in payloads:
            extra = f"<{name} xmlns='{ns}'{attrs}/>"
            id_ = send(bob, phone.jid, None, type_=type_, extra=extra)
            phone.expect(MESSAGE, match=lambda e, i=id_: e.get("id") == i)
            copy = expect_carbon(laptop, "received")
            inner = forwarded_of(copy, "received")
            assert inner.get("id") == id_ and [c.tag for c in inner] == [q(ns, name)], ET.tostring(copy, "unicode")
            assert copy.get("type") == type_
            # What alice's phone sends: a <sent/> copy.
            id_ = send(phone, bob.jid, None, type_=type_, extra=extra)
            bob.expect(MESSAGE, match=lambda e, i=id_: e.get("id") == i)
            inner = forwarded_of(expect_carbon(laptop, "sent"), "sent")
            assert inner.get("id") == id_ and [c.tag for c in inner] == [q(ns, name)]
    # Nothing more: one copy each.
    assert messages_before_marker(laptop, phone) == []


def test_muc_rules_invitations_and_private_messages(server_factory, tmp_path, raw_factory):
    # XEP-0280 1.0.1 section 6.1, the MUC rules: invitations, direct (XEP-0249)
    # or mediated (XEP-0045 7.8.2), are copied; a PM the user sends to an
    # occupant is copied, one an occupant sends is not; groupchat is not.
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    room = "coven@chat.example"
    direct = f"<x xmlns='{NS_CONFERENCE}' jid='{room}'/>"
    mediated_in = f"<x xmlns='{NS_MUC_USER}'><invite from='carol@example.org/x'/></x>"
    mediated_out = f"<x xmlns='{NS_MUC_USER}'><invite to='carol@example.org'/></x>"
    # Received, without a body or a type: copied.
    for extra in (direct, mediated_in):
        id_ = send(bob, phone.jid, None, type_=None, extra=extra)
        phone.expect(MESSAGE, match=lambda e, i=id_: e.get("id") == i)
        inner = forwarded_of(expect_carbon(laptop, "received"), "received")
        assert inner.get("id") == id_ and inner.get("from") == bob.jid
    # Sent (a mediated invitation goes to the room's bare JID; bob's stands in): copied.
    for extra in (direct, mediated_out):
        id_ = send(phone, f"bob@{server.domain}", None, type_=None, extra=extra)
        inner = forwarded_of(expect_carbon(laptop, "sent"), "sent")
        assert inner.get("id") == id_
    # A PM to an occupant (a full JID, with the muc#user <x/> XEP-0045 7.5
    # asks of the client): copied, even without a body.
    for body, type_ in (("a private word", "chat"), (None, None)):
        id_ = send(phone, bob.jid, body, type_=type_, extra=f"<x xmlns='{NS_MUC_USER}'/>")
        inner = forwarded_of(expect_carbon(laptop, "sent"), "sent")
        assert inner.get("id") == id_ and inner.get("to") == bob.jid
    # A PM from an occupant (a full JID with the muc#user <x/>), and a
    # groupchat message: delivered, not copied.
    send(bob, phone.jid, "pm from an occupant", extra=f"<x xmlns='{NS_MUC_USER}'/>")
    expect_body(phone, "pm from an occupant")
    send(bob, phone.jid, "to the room", type_="groupchat")
    expect_body(phone, "to the room")
    assert messages_before_marker(laptop, phone) == []


def test_a_chat_state_alone_is_copied(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    send(bob, phone.jid, None, extra="<composing xmlns='http://jabber.org/protocol/chatstates'/>")
    inner = forwarded_of(expect_carbon(laptop, "received"), "received")
    assert inner.find(q("http://jabber.org/protocol/chatstates", "composing")) is not None


# -- opting out: private, no-copy, disable ------------------------------------------

def test_private_is_not_copied_and_is_removed_from_the_delivered_message(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    # Received: no copy to laptop; phone gets it without <private/> (section 9).
    send(bob, phone.jid, "private in", extra=f"<private xmlns='{NS_CARBONS}'/>")
    got = expect_body(phone, "private in")
    assert got.find(q(NS_CARBONS, "private")) is None
    assert [c.tag for c in got] == [q(NS_CLIENT, "body")]
    assert messages_before_marker(laptop, phone) == []
    # Sent: no copy to phone.
    send(laptop, bob.jid, "private out", extra=f"<private xmlns='{NS_CARBONS}'/>")
    expect_body(bob, "private out")
    assert messages_before_marker(phone, laptop) == []


def test_no_copy_hint_is_honoured_both_ways(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    send(bob, phone.jid, "no-copy in", extra=f"<no-copy xmlns='{NS_HINTS}'/>")
    got = expect_body(phone, "no-copy in")
    assert got.find(q(NS_HINTS, "no-copy")) is not None  # the hint itself is left alone
    assert messages_before_marker(laptop, phone) == []
    send(laptop, bob.jid, "no-copy out", extra=f"<no-copy xmlns='{NS_HINTS}'/>")
    expect_body(bob, "no-copy out")
    assert messages_before_marker(phone, laptop) == []


def test_disable_stops_the_copies(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    send(bob, phone.jid, "before")
    assert body_of(forwarded_of(expect_carbon(laptop, "received"), "received")) == "before"
    enable(laptop, "disable")
    send(bob, phone.jid, "after")
    expect_body(phone, "after")
    assert messages_before_marker(laptop, phone) == []
    send(phone, bob.jid, "sent after")
    expect_body(bob, "sent after")
    assert messages_before_marker(laptop, phone) == []
    # And on again.
    enable(laptop)
    send(bob, phone.jid, "again")
    assert body_of(forwarded_of(expect_carbon(laptop, "received"), "received")) == "again"


def test_the_count_of_enabled_sessions_follows_enable_disable_and_the_end_of_a_session(
        server_factory, tmp_path, raw_factory):
    # The module skips all copy work while no session of the host has Carbons
    # on (a count of them, all loops together). A repeated disable, or a
    # session that ends after disabling, must not count twice: the count
    # would reach 0 while laptop still has them on, and laptop get no copy.
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)  # both enabled: 2
    tablet = login(server, raw_factory, "alice", "tablet")
    enable(tablet)  # 3
    enable(tablet)  # again: still 3
    enable(tablet, "disable")  # 2
    enable(tablet, "disable")  # again: still 2
    enable(phone, "disable")  # 1: laptop's
    tablet.close()
    phone.sync()
    send(bob, phone.jid, "still copied")
    expect_body(phone, "still copied")
    assert body_of(forwarded_of(expect_carbon(laptop, "received"), "received")) == "still copied"
    # The last one off: no copy (a marker through the same path proves it).
    enable(laptop, "disable")
    send(bob, phone.jid, "not copied")
    expect_body(phone, "not copied")
    assert messages_before_marker(laptop, phone) == []


def test_an_error_answering_a_copied_message_is_copied_and_no_other_error_is(server_factory, tmp_path, raw_factory):
    # XEP-0280 section 6: an error is eligible if it answers an eligible message.
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    # To an account that does not exist: the server answers with an error.
    msg_id = send(phone, f"nobody@{server.domain}", "into the void")
    assert body_of(forwarded_of(expect_carbon(laptop, "sent"), "sent")) == "into the void"
    error = phone.expect(MESSAGE, match=lambda e: e.get("type") == "error" and e.get("id") == msg_id)
    copy = expect_carbon(laptop, "received")
    inner = forwarded_of(copy, "received")
    assert inner.get("type") == "error" and inner.get("id") == msg_id
    assert inner.get("from") == error.get("from")
    # An error answering a message that was not eligible (normal, no body): no copy.
    other_id = send(phone, f"nobody@{server.domain}", None, type_="normal", extra="<x xmlns='urn:example:x'/>")
    phone.expect(MESSAGE, match=lambda e: e.get("type") == "error" and e.get("id") == other_id)
    assert messages_before_marker(laptop, phone) == []
    # An error nobody asked for, with the id of the first (answered already): no copy.
    bob.send(f"<message to='{phone.jid}' type='error' id='{msg_id}'>"
             f"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    phone.expect(MESSAGE, match=lambda e: e.get("type") == "error" and e.get("from") == bob.jid)
    assert messages_before_marker(laptop, phone) == []


# -- the bare JID ----------------------------------------------------------------------

def test_a_message_to_the_bare_jid_given_to_one_resource_is_copied_to_the_other(
        server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory, phone_priority=5, laptop_priority=1)
    bare = f"alice@{server.domain}"
    id_ = send(bob, bare, "to the bare jid")
    original = expect_body(phone, "to the bare jid")
    assert original.get("to") == bare
    copy = expect_carbon(laptop, "received")
    assert copy.get("to") == laptop.jid and copy.get("from") == bare
    inner = forwarded_of(copy, "received")
    assert dict(inner.attrib) == {"from": bob.jid, "to": bare, "type": "chat", "id": id_}
    assert messages_before_marker(phone, laptop) == []
    # Now laptop has the higher priority: it gets the original, phone the copy.
    laptop.send("<presence><priority>9</priority></presence>")
    laptop.sync()
    send(bob, bare, "now to the laptop")
    expect_body(laptop, "now to the laptop")
    assert body_of(forwarded_of(expect_carbon(phone, "received"), "received")) == "now to the laptop"
    assert messages_before_marker(laptop, phone) == []


def test_a_chat_message_to_a_resource_that_is_not_bound_is_handled_as_bare(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory, phone_priority=5, laptop_priority=1)
    gone = f"alice@{server.domain}/gone"
    send(bob, gone, "to a resource that is gone")
    original = expect_body(phone, "to a resource that is gone")
    assert original.get("to") == gone
    inner = forwarded_of(expect_carbon(laptop, "received"), "received")
    assert inner.get("to") == gone and body_of(inner) == "to a resource that is gone"
    assert messages_before_marker(phone, laptop) == []


def test_equal_priorities_both_get_the_original_and_no_copy(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    send(bob, f"alice@{server.domain}", "to both")
    expect_body(phone, "to both")
    expect_body(laptop, "to both")
    assert messages_before_marker(phone, laptop) == []
    assert messages_before_marker(laptop, phone) == []


def test_a_message_between_two_resources_of_one_user(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path, users=("alice",))
    phone = login(server, raw_factory, "alice", "phone", loop=0)
    laptop = login(server, raw_factory, "alice", "laptop", loop=1)
    tablet = login(server, raw_factory, "alice", "tablet")
    for c in (phone, laptop, tablet):
        enable(c)
    send(phone, laptop.jid, "note to self")
    expect_body(laptop, "note to self")
    # The third resource gets one copy (received: it was delivered to laptop);
    # the sender and the receiver none.
    inner = forwarded_of(expect_carbon(tablet, "received"), "received")
    assert inner.get("from") == phone.jid and inner.get("to") == laptop.jid
    assert messages_before_marker(tablet, laptop) == []
    assert messages_before_marker(phone, laptop) == []
    assert messages_before_marker(laptop, phone) == []


def test_copies_are_not_copied_and_other_users_get_none(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path, users=("alice", "bob"))
    phone, laptop, bob = two_loops(server, raw_factory)
    bob2 = login(server, raw_factory, "bob", "b2")
    enable(bob)
    enable(bob2)
    send(bob, phone.jid, "one")
    expect_body(phone, "one")
    forwarded_of(expect_carbon(laptop, "received"), "received")
    forwarded_of(expect_carbon(bob2, "sent"), "sent")
    # Exactly one copy each. A copy delivered is not copied again: a copy of
    # laptop's copy would go to phone from laptop's loop, of bob2's to bob.
    assert messages_before_marker(phone, laptop) == []
    assert messages_before_marker(bob, bob2) == []
    assert messages_before_marker(laptop, phone) == []


def test_a_forged_copy_from_another_user_is_not_copied(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory)
    forged = (f"<received xmlns='{NS_CARBONS}'><forwarded xmlns='{NS_FORWARD}'>"
              f"<message xmlns='jabber:client' from='eve@{server.domain}/x' to='{phone.jid}' type='chat'>"
              f"<body>forged</body></message></forwarded></received>")
    send(bob, phone.jid, None, extra=forged)
    got = phone.expect(MESSAGE, match=lambda e: e.find(q(NS_CARBONS, "received")) is not None)
    assert got.get("from") == bob.jid  # delivered as it is: the client must ignore it (section 11)
    assert messages_before_marker(laptop, phone) == []


# -- hot reload ------------------------------------------------------------------------

def test_hot_reload_keeps_who_enabled_carbons(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    phone, laptop, bob = two_loops(server, raw_factory, enable_both=False)
    enable(laptop)
    reloaded = server.ctl("module", "reload", "mod_carbons")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    send(bob, phone.jid, "after the reload")
    expect_body(phone, "after the reload")
    assert body_of(forwarded_of(expect_carbon(laptop, "received"), "received")) == "after the reload"
    # phone never enabled: still gets no copy of what laptop sends.
    send(laptop, bob.jid, "from the laptop")
    expect_body(bob, "from the laptop")
    assert messages_before_marker(phone, laptop) == []


# -- slixmpp ---------------------------------------------------------------------------

@pytest.fixture
def slix():
    runner = SlixRunner()
    yield runner
    runner.close()


def test_slixmpp_xep_0280_gets_received_and_sent_carbons(server_factory, tmp_path, raw_factory, slix):
    import asyncio
    server = carbons_server(server_factory, tmp_path)
    bob = login(server, raw_factory, "bob", "b")
    clients = []
    for resource in ("one", "two"):
        c = slix.client(f"alice@{server.domain}/{resource}", PASSWORD, mech="SCRAM-SHA-256",
                        channel_binding=False)
        c.xmpp.register_plugin("xep_0280")
        c.carbons = asyncio.Queue()
        c.xmpp.add_event_handler("carbon_received", lambda m, c=c: c.carbons.put_nowait(("received", m)))
        c.xmpp.add_event_handler("carbon_sent", lambda m, c=c: c.carbons.put_nowait(("sent", m)))
        assert slix.run(c.connect(server.c2s_port)) is True
        slix.run(c.xmpp["xep_0280"].enable())
        clients.append(c)
    one, two = clients
    slix.run(one.sync())
    send(bob, one.jid, "hello one")
    kind, msg = slix.run(asyncio.wait_for(two.carbons.get(), 10))
    assert kind == "received"
    forwarded = msg["carbon_received"]
    assert forwarded["body"] == "hello one" and str(forwarded["from"]) == bob.jid
    one.xmpp.send_message(mto=bob.jid, mbody="hello bob", mtype="chat")
    kind, msg = slix.run(asyncio.wait_for(two.carbons.get(), 10))
    assert kind == "sent"
    forwarded = msg["carbon_sent"]
    assert forwarded["body"] == "hello bob" and str(forwarded["to"]) == bob.jid
    expect_body(bob, "hello bob")
    slix.run(two.xmpp["xep_0280"].disable())
    send(bob, one.jid, "after disable")
    slix.run(one.expect_body("after disable"))
    # A marker from one (its loop delivered the message and would have posted the copy).
    one.xmpp.send_message(mto=two.jid, mbody="marker", mtype="chat")
    slix.run(two.expect_body("marker"))
    assert two.carbons.empty()


# -- XEP-0184 receipts and XEP-0333 markers pass through ----------------------------

def test_receipts_and_chat_markers_pass_through_untouched(server_factory, tmp_path, raw_factory):
    server = carbons_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "phone")
    bob = login(server, raw_factory, "bob", "b")
    enable(alice)
    id_ = send(alice, bob.jid, "please confirm",
               extra=f"<request xmlns='{NS_RECEIPTS}'/><markable xmlns='{NS_MARKERS}'/>")
    got = expect_body(bob, "please confirm")
    assert got.get("id") == id_
    assert [c.tag for c in got] == [q(NS_CLIENT, "body"), q(NS_RECEIPTS, "request"), q(NS_MARKERS, "markable")]
    assert all(len(c) == 0 and dict(c.attrib) == {} for c in got[1:])
    # The receipt (XEP-0184 section 5.2: a message with <received/> and the id).
    send(bob, alice.jid, None, type_=None, id_="r1", extra=f"<received xmlns='{NS_RECEIPTS}' id='{id_}'/>")
    receipt = alice.expect(MESSAGE, match=lambda e: e.get("id") == "r1")
    assert dict(receipt.attrib) == {"from": bob.jid, "to": alice.jid, "id": "r1"}
    assert [c.tag for c in receipt] == [q(NS_RECEIPTS, "received")]
    assert dict(receipt[0].attrib) == {"id": id_}
    # The chat markers (XEP-0333 section 4): received, displayed.
    for marker in ("received", "displayed", "acknowledged"):
        send(bob, alice.jid, None, id_=f"m-{marker}", extra=f"<{marker} xmlns='{NS_MARKERS}' id='{id_}'/>")
        got = alice.expect(MESSAGE, match=lambda e, m=marker: e.get("id") == f"m-{m}")
        assert dict(got.attrib) == {"from": bob.jid, "to": alice.jid, "type": "chat", "id": f"m-{marker}"}
        assert [c.tag for c in got] == [q(NS_MARKERS, marker)]
        assert dict(got[0].attrib) == {"id": id_}
