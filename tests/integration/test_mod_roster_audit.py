"""RFC 6121 section 2 details found in the session-13 audit (the table in
docs/modules/mod_roster.md) that no other test pinned: the answers a client
gives to roster pushes are absorbed, any 'subscription' value but "remove" is
ignored in a roster set, and a roster get's <query/> with children is still a
get. The rest of section 2 is in test_mod_roster.py."""

import xml.etree.ElementTree as ET

from roster_peer import IQ, ITEM, NS, QUERY, login, start


def test_answers_to_roster_pushes_are_absorbed(server_factory, raw_factory):
    # 2.1.6: the client answers a push with a result (or an error); that
    # answer ends there: nothing comes back for it.
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    assert alice.set("romeo@example.net").get("type") == "result"
    push = alice.wait(lambda e: e.tag == IQ and e.get("type") == "set", what="push")
    alice.send(f"<iq type='result' id='{push.get('id')}'/>")
    alice.send(f"<iq type='result' id='{push.get('id')}' to='{alice.bare}'/>")
    alice.send(f"<iq type='error' id='{push.get('id')}'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    assert alice.c.nothing_before_sync() == []
    assert alice.inbox == []


def test_any_subscription_value_but_remove_is_ignored(server_factory, raw_factory):
    # 2.1.5: "The server MUST ignore any value of the 'subscription' attribute
    # other than 'remove'" (XMPP interop's testRosterSetWithIrregularSubscriptionAttribute).
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    for n, value in enumerate(("foobar", "both", "to", "from", "none", "")):
        contact = f"c{n}@example.net"
        reply = alice.set(contact, extra=f" subscription='{value}'")
        assert reply.get("type") == "result", (value, ET.tostring(reply, "unicode"))
        item, _ = alice.push(contact)
        assert item.get("subscription") == "none", value
    assert len(alice.roster()) == 6


def test_a_get_with_children_is_still_a_get(server_factory, raw_factory):
    # 2.1.3 asks the client for an empty <query/>; a get that carries an item
    # is answered with the roster all the same, and changes nothing.
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    alice.set("romeo@example.net")
    alice.push("romeo@example.net")
    reply = alice.iq("get", f"<query xmlns='{NS}'><item jid='juliet@example.net' name='x'/></query>")
    assert reply.get("type") == "result"
    assert [i.get("jid") for i in reply.find(QUERY).findall(ITEM)] == ["romeo@example.net"]
    alice.no_push()
