"""mod_disco against XEP-0030 (version 2.5rc3): the server's info and items, an
account's info and items by who asks (section 7: its owner, an entity its presence
goes to, anyone else, an account that does not exist), nodes. One server per test,
several requirements per test (CI's sanitizer runs are long). The audit table in
docs/modules/mod_disco.md names these tests."""

import xml.etree.ElementTree as ET

from conftest import logged_in as login, server_with_users
from rawxmpp import NS_CLIENT, q, stanza_error_condition

INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}}


def start(server_factory, users):
    return server_with_users(server_factory, users, modules=dict(MODULES))


def info(client, to, node=None):
    node_attr = f" node='{node}'" if node else ""
    return client.iq("get", f"<query xmlns='{INFO}'{node_attr}/>", to=to)


def items(client, to, node=None):
    node_attr = f" node='{node}'" if node else ""
    return client.iq("get", f"<query xmlns='{ITEMS}'{node_attr}/>", to=to)


def error_of(reply):
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    return stanza_error_condition(reply)


def identities(reply):
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return [(i.get("category"), i.get("type")) for i in reply.iter(q(INFO, "identity"))]


def item_jids(reply):
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return sorted(i.get("jid") for i in reply.iter(q(ITEMS, "item")))


def subscribe(server, subscriber, contact, contact_user):
    """`subscriber` subscribes to `contact_user`'s presence, `contact` approves:
    in the contact's roster the subscriber has 'from' (RFC 6121 3.1)."""
    subscriber.send(f"<presence type='subscribe' to='{contact_user}@{server.domain}'/>")
    contact.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("type") == "subscribe")
    contact.send(f"<presence type='subscribed' to='{subscriber.jid.split('/')[0]}'/>")
    subscriber.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("type") == "subscribed")


def test_an_account_is_seen_by_its_owner_and_by_those_its_presence_goes_to(server_factory, raw_factory):
    """Section 3.1 (the server answers for the bare JID, identity account/registered; SHOULD
    answer when access is not denied), 4.1 (items: the owner's resources, and a contact the
    presence goes to the available ones) and section 7: info
    is service-unavailable and items empty for whoever has no 'from'/'both' subscription and
    for an account that does not exist; a contact the presence goes to sees the info (it got
    service-unavailable, like a stranger)."""
    server = start(server_factory, ("alice", "bob", "carol"))
    d = server.domain
    alice = login(server, raw_factory, "alice", "a", presence=True)
    alice_quiet = login(server, raw_factory, "alice", "q")  # bound, never available
    bob = login(server, raw_factory, "bob", "b", presence=True)
    carol = login(server, raw_factory, "carol", "c", presence=True)
    subscribe(server, bob, alice, "alice")  # alice's roster: bob 'from'; bob's: alice 'to'

    # The owner: the account identity, every connected resource.
    own = info(alice, None)
    assert own.get("from") == f"alice@{d}" and identities(own) == [("account", "registered")]
    assert {f.get("var") for f in own.iter(q(INFO, "feature"))} >= {INFO, ITEMS}
    assert item_jids(items(alice, f"alice@{d}")) == sorted([alice.jid, alice_quiet.jid])

    # bob receives alice's presence: the identity (he got service-unavailable, like a
    # stranger), and her available resources (4.1: "as appropriate"; presence shows
    # him those), not the one that never sent presence.
    reply = info(bob, f"alice@{d}")
    assert reply.get("from") == f"alice@{d}" and reply.get("to") == bob.jid
    assert identities(reply) == [("account", "registered")]
    reply = items(bob, f"alice@{d}")
    assert reply.get("from") == f"alice@{d}" and item_jids(reply) == [alice.jid]
    # A node nobody serves on the account: item-not-found (sections 3.2 and 7).
    assert error_of(info(bob, f"alice@{d}", node="urn:example:none")) == ("cancel", "item-not-found")

    # alice does not receive bob's presence ('to' in bob's roster), carol none at all,
    # and nobody does not exist: the same answers for all three.
    for asker, target in ((alice, "bob"), (carol, "alice"), (carol, "nobody"), (alice, "nobody")):
        assert error_of(info(asker, f"{target}@{d}")) == ("cancel", "service-unavailable")
        assert error_of(info(asker, f"{target}@{d}", node="urn:example:none")) == ("cancel", "service-unavailable")
        reply = items(asker, f"{target}@{d}")
        assert reply.get("from") == f"{target}@{d}" and item_jids(reply) == []
