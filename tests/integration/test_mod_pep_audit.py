"""mod_pep against XEP-0163 §4.3 (who gets notifications and last items) and
XEP-0060's error tables as PEP uses them: what the audit of round 2 checked
(docs/modules/mod_pep.md, "Audit"). One server per test; the helpers are
test_mod_pep.py's."""

import contextlib
import subprocess

from parley_harness import PG_BIN
from test_mod_pep import (C, CAPS, DISCO, ERRORS, EVENT, OWNER, PUBSUB, TUNE, announce, errors_of,
                          get_items, login, no_event, publish, start_server, subscribe, wait_event)

GEOLOC = "http://jabber.org/protocol/geoloc"
MOOD = "http://jabber.org/protocol/mood"


def item_id(event):
    return event.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}item").get("id")


def presence_with_caps(client, ver, extra=""):
    """A presence (not the first) with the caps `ver` announce() made known."""
    client.send(f"<presence>{extra}<c xmlns='{CAPS}' hash='sha-1' node='urn:test:raw' ver='{ver}'/></presence>")


def test_last_items_on_new_interest_and_negative_priority(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    for user in ("bob", "carol", "dave"):
        first = login(server, raw_factory, user)
        subscribe(first, alice)
        first.close()
    # Each a new resource whose first presence is announce()'s.
    bob = login(server, raw_factory, "bob", resource="caps", presence=False)
    carol = login(server, raw_factory, "carol", resource="caps", presence=False)
    dave = login(server, raw_factory, "dave", resource="caps", presence=False)
    for node, payload in ((GEOLOC, f"<geoloc xmlns='{GEOLOC}'/>"), (TUNE, f"<tune xmlns='{TUNE}'/>"),
                          (MOOD, f"<mood xmlns='{MOOD}'><happy/></mood>")):
        assert publish(alice, node, payload, item_id="last").get("type") == "result"

    # A client that adds a +notify interest after its initial presence (Smack
    # adds one when a listener is registered) gets that node's last item on
    # the presence with its new caps; the nodes it wanted already are not sent
    # again. (Geoloc sorts first: had it been sent again, it would have come
    # before the tune.)
    announce(bob, notify=[GEOLOC])
    assert item_id(wait_event(bob, GEOLOC)) == "last"
    ver = announce(bob, notify=[GEOLOC, TUNE])
    assert item_id(wait_event(bob, TUNE)) == "last"
    assert no_event(bob, alice, GEOLOC) == []
    # A presence with the same caps (a status change) sends nothing again: a
    # later new interest's last item comes, and nothing before it.
    presence_with_caps(bob, ver, "<status>away</status>")
    announce(bob, notify=[GEOLOC, TUNE, MOOD])
    assert item_id(wait_event(bob, MOOD)) == "last"
    assert no_event(bob, alice, GEOLOC) == [] and no_event(bob, alice, TUNE) == []

    # §4.3.2: only resources with a non-negative priority get notifications
    # and, on their initial presence, the last items (the owner's too).
    alice_low = login(server, raw_factory, "alice", resource="low", presence=False)
    announce(alice_low, notify=[TUNE], priority=-1)
    low_ver = announce(carol, notify=[TUNE], priority=-5)
    announce(dave, notify=[TUNE])  # the witness
    assert item_id(wait_event(dave, TUNE)) == "last"
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'><title>new</title></tune>", item_id="new").get("type") == \
        "result"
    assert item_id(wait_event(dave, TUNE)) == "new"
    assert no_event(carol, alice, TUNE) == []
    assert no_event(alice_low, dave, TUNE) == []
    # Its priority raised to 0, the resource gets the last item then.
    presence_with_caps(carol, low_ver, "<priority>0</priority>")
    assert item_id(wait_event(carol, TUNE)) == "new"


@contextlib.contextmanager
def map_items_locked(url):
    """Every read of the map store (rosters among them) waits while inside:
    a transaction of psql's holds map_items in ACCESS EXCLUSIVE mode."""
    psql = subprocess.Popen([str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        psql.stdin.write("BEGIN;\nLOCK TABLE map_items IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n")
        psql.stdin.flush()
        assert psql.stdout.readline().strip() == "locked"
        yield
    finally:
        psql.stdin.write("COMMIT;\n")
        psql.stdin.close()
        assert psql.wait(timeout=30) == 0


def test_last_items_are_those_of_the_caps_they_were_decided_for(server_factory, raw_factory, pg_storage):
    """A presence's last items are chosen by the +notify of that presence's
    caps. While the roster read behind a contact's last items waits, the
    client announces caps with a new interest: the contact's item comes
    once, for the new caps (it came twice when the interest was looked up
    as each item reached the session's loop: the old caps' send found the
    new interest there too, beside the new caps' own send)."""
    server = start_server(server_factory, users=("alice", "bob"), storage=pg_storage)
    alice = login(server, raw_factory, "alice")
    first = login(server, raw_factory, "bob")
    subscribe(first, alice)
    first.close()
    bob = login(server, raw_factory, "bob", resource="caps", presence=False)
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>", item_id="t").get("type") == "result"
    assert publish(bob, GEOLOC, f"<geoloc xmlns='{GEOLOC}'/>", item_id="g").get("type") == "result"
    announce(bob)  # the initial presence, no interest yet
    with map_items_locked(pg_storage["url"]):
        # Bob's own item needs no roster: it comes while alice's wait.
        announce(bob, notify=[GEOLOC])
        assert item_id(wait_event(bob, GEOLOC)) == "g"
        announce(bob, notify=[GEOLOC, TUNE])
    assert item_id(wait_event(bob, TUNE)) == "t"
    assert no_event(bob, alice, TUNE) == [] and no_event(bob, alice, GEOLOC) == []


def test_error_tables(server_factory, raw_factory):
    """XEP-0060's errors for the use cases PEP supports, with their types."""
    server = start_server(server_factory, users=("alice", "bob"))
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>", item_id="t").get("type") == "result"

    def pubsub(client, body, ns=PUBSUB, kind="set", to=None):
        return client.iq(kind, f"<pubsub xmlns='{ns}'>{body}</pubsub>", to=to)

    # §7.2.3: retract.
    assert errors_of(pubsub(bob, f"<retract node='{TUNE}'><item id='t'/></retract>", to=alice.bare)) == \
        ("auth", "forbidden", None)
    assert errors_of(pubsub(alice, "<retract node='urn:none'><item id='t'/></retract>")) == \
        ("cancel", "item-not-found", None)
    assert errors_of(pubsub(alice, "<retract><item id='t'/></retract>")) == ("modify", "bad-request", "nodeid-required")
    assert errors_of(pubsub(alice, f"<retract node='{TUNE}'/>")) == ("modify", "bad-request", "item-required")
    # §8.1.3: create (instant nodes are not offered).
    assert errors_of(pubsub(alice, "<create/>")) == ("modify", "not-acceptable", "nodeid-required")
    assert errors_of(pubsub(bob, "<create node='urn:x'/>", to=alice.bare)) == ("auth", "forbidden", None)
    # §8.2, §8.4, §8.5, §8.9: owner use cases by another, on a missing node, without a node.
    for body in (f"<configure node='{TUNE}'/>", f"<delete node='{TUNE}'/>", f"<purge node='{TUNE}'/>",
                 f"<affiliations node='{TUNE}'/>"):
        kind = "get" if body.startswith(("<configure", "<affiliations")) else "set"
        assert errors_of(pubsub(bob, body, OWNER, kind, alice.bare)) == ("auth", "forbidden", None), body
        missing = body.replace(TUNE, "urn:none")
        assert errors_of(pubsub(alice, missing, OWNER, kind)) == ("cancel", "item-not-found", None), body
        nameless = body.replace(f" node='{TUNE}'", "")
        assert errors_of(pubsub(alice, nameless, OWNER, kind)) == ("modify", "bad-request", "nodeid-required"), body
    # §8.2.5: a configuration the node cannot take.
    form = ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
            "<value>http://jabber.org/protocol/pubsub#node_config</value></field>"
            "<field var='pubsub#access_model'><value>nonsense</value></field></x>")
    assert errors_of(pubsub(alice, f"<configure node='{TUNE}'>{form}</configure>", OWNER)) == \
        ("modify", "not-acceptable", None)
    # §6.5.9.11... a node that does not exist, to the owner.
    assert errors_of(get_items(alice, alice.bare, "urn:none")) == ("cancel", "item-not-found", None)
    # §6.3.4 / §6.4 / §8.8: what PEP does not offer, with the feature named.
    reply = pubsub(bob, f"<options node='{TUNE}' jid='{bob.bare}'/>", kind="get", to=alice.bare)
    assert errors_of(reply) == ("cancel", "feature-not-implemented", "unsupported")
    assert reply.find(f"{{{C}}}error/{{{ERRORS}}}unsupported").get("feature") == "subscription-options"
    reply = pubsub(alice, f"<subscriptions node='{TUNE}'/>", OWNER, "get")
    assert errors_of(reply) == ("cancel", "feature-not-implemented", "unsupported")
    assert reply.find(f"{{{C}}}error/{{{ERRORS}}}unsupported").get("feature") == "manage-subscriptions"
    # XEP-0163 §6.1: the account's identity and the features PEP MUSTs name.
    info = alice.iq("get", f"<query xmlns='{DISCO}'/>", to=alice.bare)
    query = info.find(f"{{{DISCO}}}query")
    assert any(i.get("category") == "pubsub" and i.get("type") == "pep" for i in query.iter(f"{{{DISCO}}}identity"))
    features = {f.get("var") for f in query.iter(f"{{{DISCO}}}feature")}
    for feature in ("auto-create", "auto-subscribe", "filtered-notifications", "access-presence", "access-open",
                    "access-roster", "access-whitelist", "publish", "retrieve-items", "publish-options",
                    "last-published", "create-nodes", "delete-nodes"):
        assert f"{PUBSUB}#{feature}" in features, feature
