"""mod_blocking (XEP-0191 Blocking Command) against a running parleyd: the
XEP's examples (blocklist, block, unblock, unblock all, pushes to the
resources that asked for the list), every error case, enforcement in both
directions for each stanza kind, blocking by domain, persistence across a
restart, lists loaded on demand for offline users, and offline storage that
keeps nothing from a blocked sender. Raw clients for exact XML, gloox for a
real client library."""

import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD, logged_in, old_tables_left, server_with_users
from rawxmpp import NS_CLIENT, NS_STANZA_ERRORS, q, stanza_error_condition
from old_schemas import recreate_old_tables

NS = "urn:xmpp:blocking"
NS_ERRORS = "urn:xmpp:blocking:errors"
DISCO = "http://jabber.org/protocol/disco#info"
PING = "<ping xmlns='urn:xmpp:ping'/>"

GET_LIST = f"<blocklist xmlns='{NS}'/>"


def block_xml(*jids, command="block"):
    if not jids:
        return f"<{command} xmlns='{NS}'/>"
    items = "".join(f"<item jid='{j}'/>" for j in jids)
    return f"<{command} xmlns='{NS}'>{items}</{command}>"


def unblock_xml(*jids):
    return block_xml(*jids, command="unblock")


def start(server_factory, extra_modules=None, options=None, **kwargs):
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_blocking": dict(options or {})}
    modules.update(extra_modules or {})
    return server_with_users(server_factory, ("alice", "bob", "carol"), modules=modules, **kwargs)


def login(server, raw_factory, user, resource, presence=False, domain=None):
    return logged_in(server, raw_factory, user, resource, presence, domain=domain or server.domain)


def xml(elem):
    return ET.tostring(elem, "unicode")


def blocklist(client):
    reply = client.iq("get", GET_LIST)
    assert reply.get("type") == "result", xml(reply)
    lst = reply.find(q(NS, "blocklist"))
    assert lst is not None, xml(reply)
    return [item.get("jid") for item in lst.findall(q(NS, "item"))]


def ok(reply):
    assert reply.get("type") == "result", xml(reply)
    assert len(list(reply)) == 0, xml(reply)
    return reply


def is_push(elem, command):
    return elem.tag == q(NS_CLIENT, "iq") and elem.get("type") == "set" and elem.find(q(NS, command)) is not None


def expect_push(client, command, consumed, timeout=5):
    """The next push of `command` this client got (seen already or arriving)."""
    deadline = time.monotonic() + timeout
    while True:
        for elem in client.received:
            if id(elem) not in consumed and is_push(elem, command):
                consumed.add(id(elem))
                return elem
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no <{command}/> push for {client.jid}")
        try:
            client.next_element(remaining)
        except TimeoutError:
            pass


def push_items(push, command):
    return [item.get("jid") for item in push.find(q(NS, command)).findall(q(NS, "item"))]


def pushes_seen(client, command):
    return [e for e in client.received if is_push(e, command)]


def bodies(client, start=0):
    """Bodies of the messages a client received (also those a wait skipped)."""
    out = []
    for e in client.received[start:]:
        body = e.find(q(NS_CLIENT, "body"))
        if e.tag == q(NS_CLIENT, "message") and e.get("type") != "error" and body is not None:
            out.append(body.text)
    return out


def wait_counter(server, name, at_least, timeout=10, module="mod_blocking"):
    prefix = f"{module}.{server.domain}.{name}: "
    deadline = time.monotonic() + timeout
    while True:
        value = 0
        for line in server.ctl("status").stdout.splitlines():
            if line.startswith(prefix):
                value = int(line[len(prefix):])
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# -- discovery and the commands (XEP-0191 §3.1-§3.5) -----------------------------

def test_disco_feature(server_factory, raw_factory):
    server = start(server_factory)
    alice = login(server, raw_factory, "alice", "chamber")
    info = alice.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    assert NS in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_xep_examples_block_push_list_unblock(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    chamber = login(server, raw_factory, "alice", "chamber")
    balcony = login(server, raw_factory, "alice", "balcony")
    seen_c, seen_b = set(), set()
    # Example 3/5: an empty list is an empty <blocklist/>; asking makes both
    # resources "interested" in pushes.
    assert blocklist(chamber) == []
    assert blocklist(balcony) == []

    # Example 6-8: block, result, a push to both resources.
    ok(chamber.iq("set", block_xml(f"bob@{d}")))
    for client, seen in ((chamber, seen_c), (balcony, seen_b)):
        push = expect_push(client, "block", seen)
        assert push_items(push, "block") == [f"bob@{d}"]
        assert push.get("to") == client.jid
        assert push.get("id")
    # Example 4: the list lists it.
    assert blocklist(balcony) == [f"bob@{d}"]

    # Several items in one block (XEP: "MAY contain more than one"), kept in order.
    ok(balcony.iq("set", block_xml(f"carol@{d}", "iago@shakespeare.lit")))
    for client, seen in ((chamber, seen_c), (balcony, seen_b)):
        assert push_items(expect_push(client, "block", seen), "block") == [f"carol@{d}", "iago@shakespeare.lit"]
    assert blocklist(chamber) == [f"bob@{d}", f"carol@{d}", "iago@shakespeare.lit"]

    # Example 10-12: unblock one item, pushed to both.
    ok(chamber.iq("set", unblock_xml(f"carol@{d}")))
    for client, seen in ((chamber, seen_c), (balcony, seen_b)):
        assert push_items(expect_push(client, "unblock", seen), "unblock") == [f"carol@{d}"]
    assert blocklist(chamber) == [f"bob@{d}", "iago@shakespeare.lit"]

    # Example 13-15: unblock all, pushed as an empty <unblock/>.
    ok(balcony.iq("set", unblock_xml()))
    for client, seen in ((chamber, seen_c), (balcony, seen_b)):
        assert push_items(expect_push(client, "unblock", seen), "unblock") == []
    assert blocklist(chamber) == []
    assert blocklist(balcony) == []


def test_pushes_go_only_to_resources_that_asked(server_factory, raw_factory):
    server = start(server_factory)
    asked = login(server, raw_factory, "alice", "asked")
    silent = login(server, raw_factory, "alice", "silent")
    assert blocklist(asked) == []
    ok(silent.iq("set", block_xml(f"bob@{server.domain}")))
    expect_push(asked, "block", set())
    silent.sync()
    assert pushes_seen(silent, "block") == []


def test_items_are_normalized_and_deduplicated(server_factory, raw_factory):
    server = start(server_factory)
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml("Romeo@Montague.NET", "romeo@montague.net", "montague.net/Orchard")))
    ok(alice.iq("set", block_xml("ROMEO@montague.net")))  # already blocked: fine, no duplicate
    assert blocklist(alice) == ["romeo@montague.net", "montague.net/Orchard"]
    # Unblocking what is not blocked is no error.
    ok(alice.iq("set", unblock_xml("nobody@montague.net")))
    ok(alice.iq("set", unblock_xml("ROMEO@MONTAGUE.net")))
    assert blocklist(alice) == ["montague.net/Orchard"]


def test_errors(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber")
    bob = login(server, raw_factory, "bob", "r")
    # §3.3: a block without an item is bad-request.
    assert stanza_error_condition(alice.iq("set", block_xml())) == ("modify", "bad-request")
    # An invalid JID is jid-malformed, and nothing of the command is applied.
    for bad in ("@montague.net", "romeo@", "ro<meo@x", "romeo@montague.net/", "mon tague.net"):
        payload = f"<block xmlns='{NS}'><item jid='carol@{d}'/><item jid='{bad.replace('<', '&lt;')}'/></block>"
        assert stanza_error_condition(alice.iq("set", payload))[1] == "jid-malformed", bad
        payload = f"<unblock xmlns='{NS}'><item jid='{bad.replace('<', '&lt;')}'/></unblock>"
        assert stanza_error_condition(alice.iq("set", payload))[1] == "jid-malformed", bad
    assert blocklist(alice) == []
    # An item without a jid, or something else than an item.
    assert stanza_error_condition(alice.iq("set", f"<block xmlns='{NS}'><item/></block>"))[1] == "bad-request"
    assert stanza_error_condition(alice.iq("set", f"<block xmlns='{NS}'><jid>x@y</jid></block>"))[1] == "bad-request"
    # Wrong type for the element, unknown element.
    assert stanza_error_condition(alice.iq("set", GET_LIST))[1] == "bad-request"
    assert stanza_error_condition(alice.iq("get", block_xml(f"bob@{d}")))[1] == "bad-request"
    assert stanza_error_condition(alice.iq("get", unblock_xml()))[1] == "bad-request"
    assert stanza_error_condition(alice.iq("get", f"<other xmlns='{NS}'/>"))[1] == "bad-request"
    assert blocklist(alice) == []
    # Another user's list is not theirs to read or change.
    assert stanza_error_condition(bob.iq("get", GET_LIST, to=f"alice@{d}")) == ("auth", "forbidden")
    assert stanza_error_condition(bob.iq("set", block_xml(f"carol@{d}"), to=f"alice@{d}")) == ("auth", "forbidden")
    # To the own bare JID it works like no 'to' at all.
    ok(alice.iq("set", block_xml(f"carol@{d}"), to=f"alice@{d}"))
    assert blocklist(alice) == [f"carol@{d}"]


def test_max_items_is_a_policy_violation(server_factory, raw_factory):
    server = start(server_factory, options={"max_items": 2})
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml("a@x.example", "b@x.example")))
    assert stanza_error_condition(alice.iq("set", block_xml("c@x.example")))[1] == "policy-violation"
    ok(alice.iq("set", block_xml("a@x.example")))  # nothing new: fine
    assert blocklist(alice) == ["a@x.example", "b@x.example"]


# -- enforcement (XEP-0191 §3.3) -------------------------------------------------

def test_message_from_blocked_is_not_delivered_and_sender_gets_an_error(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    bob.message(f"alice@{d}", "before")
    alice.expect_message("before")
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    for to in (f"alice@{d}", f"alice@{d}/chamber"):
        bob.message(to, "Can you hear me now?")
        error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
        assert stanza_error_condition(error)[1] == "service-unavailable", xml(error)
        assert error.get("from") == to and error.get("to") == bob.jid
    # Unblocked: delivered again. bob's next message takes the path of the
    # blocked ones after them: none of those came before it.
    ok(alice.iq("set", unblock_xml(f"bob@{d}")))
    bob.message(f"alice@{d}", "after")
    alice.expect_message("after")
    assert "Can you hear me now?" not in bodies(alice)


def test_message_to_blocked_is_refused_with_the_blocked_condition(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    sid = alice.message(f"bob@{d}/orchard", "Can you hear me now?")
    error = alice.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("id") == sid)
    assert error.get("type") == "error", xml(error)
    assert error.get("from") == f"bob@{d}/orchard" and error.get("to") == alice.jid, xml(error)
    assert error.find(q(NS_CLIENT, "body")).text == "Can you hear me now?"
    err = error.find(q(NS_CLIENT, "error"))
    assert err.get("type") == "cancel", xml(error)
    assert err.find(q(NS_STANZA_ERRORS, "not-acceptable")) is not None, xml(error)
    assert err.find(q(NS_ERRORS, "blocked")) is not None, xml(error)
    # Every kind of outbound stanza is refused the same way.
    reply = alice.iq("get", PING, to=f"bob@{d}/orchard")
    assert stanza_error_condition(reply) == ("cancel", "not-acceptable")
    assert reply.find(q(NS_CLIENT, "error")).find(q(NS_ERRORS, "blocked")) is not None
    alice.send(f"<presence to='bob@{d}'/>")
    presence = alice.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("type") == "error")
    assert presence.find(q(NS_CLIENT, "error")).find(q(NS_ERRORS, "blocked")) is not None
    # Nothing reached bob (unblocked, alice's marker comes after anything
    # her refused stanzas could have delivered); her own account stays reachable.
    ok(alice.iq("set", unblock_xml(f"bob@{d}")))
    bob.nothing_before_marker(alice)
    assert bodies(bob) == []
    assert [xml(e) for e in bob.received if e.tag == q(NS_CLIENT, "iq") and e.get("from") == alice.jid] == []
    assert [xml(e) for e in bob.received
            if e.tag == q(NS_CLIENT, "presence") and e.get("from") == alice.jid and e.get("type") != "unavailable"] == []
    alice.message(f"alice@{d}", "note to self")
    alice.expect_message("note to self")


def test_presence_from_blocked_is_dropped_silently(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    bob.send(f"<presence to='alice@{d}'><status>before</status></presence>")
    alice.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("from") == bob.jid)
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    mark = len(alice.received)
    for stanza in (f"<presence to='alice@{d}'><status>blocked</status></presence>",
                   f"<presence to='alice@{d}/chamber'/>",
                   f"<presence to='alice@{d}' type='subscribe'/>",
                   f"<presence to='alice@{d}' type='probe'/>"):
        bob.send(stanza)
    bob.nothing_before_sync()
    assert [xml(e) for e in bob.received if e.get("type") == "error"] == [], "presence must not be answered"
    # Unblocked, bob's marker takes the path of his dropped presences after them.
    ok(alice.iq("set", unblock_xml(f"bob@{d}")))
    alice.nothing_before_marker(bob)
    assert [xml(e) for e in alice.received[mark:] if e.tag == q(NS_CLIENT, "presence")] == []


def test_iq_from_blocked_is_answered_with_an_error(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    mark = len(alice.received)
    for to in (f"alice@{d}/chamber", f"alice@{d}"):
        for type_ in ("get", "set"):
            reply = bob.iq(type_, PING, to=to)
            assert stanza_error_condition(reply)[1] == "service-unavailable", xml(reply)
    # Not even the blocklist of the blocker answers differently.
    assert stanza_error_condition(bob.iq("get", GET_LIST, to=f"alice@{d}"))[1] == "service-unavailable"
    # Results and errors are dropped without an answer.
    bob.send(f"<iq type='result' id='r1' to='alice@{d}/chamber'/>")
    bob.send(f"<iq type='error' id='r2' to='alice@{d}/chamber'><error type='cancel'>"
             f"<item-not-found xmlns='{NS_STANZA_ERRORS}'/></error></iq>")
    bob.nothing_before_sync()
    assert [xml(e) for e in bob.received if e.tag == q(NS_CLIENT, "iq") and e.get("id") in ("r1", "r2")] == []
    # Unblocked, bob's marker takes the path of his refused iqs after them.
    unblocked = ok(alice.iq("set", unblock_xml(f"bob@{d}")))
    alice.nothing_before_marker(bob)
    assert [xml(e) for e in alice.received[mark:] if e.tag == q(NS_CLIENT, "iq") and e is not unblocked] == []


def test_full_jid_item_blocks_only_that_resource(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    orchard = login(server, raw_factory, "bob", "orchard", presence=True)
    garden = login(server, raw_factory, "bob", "garden", presence=True)
    ok(alice.iq("set", block_xml(f"bob@{d}/orchard")))
    orchard.message(f"alice@{d}", "from the orchard")
    error = orchard.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    garden.message(f"alice@{d}", "from the garden")
    assert alice.expect_message().find(q(NS_CLIENT, "body")).text == "from the garden"


def test_block_by_domain(server_factory, raw_factory):
    server = start(server_factory, hosts=("localhost", "example.test"))
    server.register("carol", PASSWORD, host="example.test")
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    carol = login(server, raw_factory, "carol", "c", presence=True, domain="example.test")
    local_bob = login(server, raw_factory, "bob", "b", presence=True)
    ok(alice.iq("set", block_xml("example.test")))
    carol.message("alice@localhost", "from the other domain")
    error = carol.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    reply = carol.iq("get", PING, to="alice@localhost/chamber")
    assert stanza_error_condition(reply)[1] == "service-unavailable"
    # The domain itself matches, and so does the way out.
    reply = alice.iq("get", PING, to="example.test")
    assert stanza_error_condition(reply) == ("cancel", "not-acceptable")
    alice.message("carol@example.test/c", "hello?")
    out = alice.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert out.find(q(NS_CLIENT, "error")).find(q(NS_ERRORS, "blocked")) is not None
    # Other domains are not affected.
    local_bob.message("alice@localhost", "same domain")
    alice.expect_message("same domain")
    # Unblocked, a marker each way takes the path of the refused messages after them.
    ok(alice.iq("set", unblock_xml("example.test")))
    alice.nothing_before_marker(carol)
    carol.nothing_before_marker(alice)
    assert "from the other domain" not in bodies(alice)
    assert bodies(carol) == []


def test_blocking_sends_unavailable_presence_only_to_subscribed_contacts(server_factory, raw_factory):
    # XEP-0191 3.3: unavailable presence to the blocked contact "only if the contact
    # is allowed to receive presence notifications from the user": bob, subscribed to
    # alice's presence, gets it from her available resource; carol, not subscribed,
    # does not (it would tell her alice's full JID), nor does a domain none of whose
    # users is subscribed. The subscriptions are mod_roster's, asked by mod_blocking.
    server = start(server_factory, extra_modules={"mod_roster": {}, "mod_presence": {}})
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    carol = login(server, raw_factory, "carol", "c", presence=True)
    subscribe(bob, alice)
    mark = len(carol.received)
    ok(alice.iq("set", block_xml(f"carol@{d}", f"bob@{d}", "example.net")))
    presence = bob.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("type") == "unavailable")
    assert presence.get("from") == alice.jid, xml(presence)
    no_presence_since(alice, carol, f"carol@{d}", mark)


def no_presence_since(blocker, contact, contact_bare, mark):
    """Asserts that the blocker's block sent `contact` no presence: what it sent was
    posted to the contact's loop before the block's answer; once the contact is
    unblocked, the blocker's marker comes after it."""
    ok(blocker.iq("set", unblock_xml(contact_bare)))
    contact.nothing_before_marker(blocker)
    assert [xml(e) for e in presences_from(contact, blocker.jid, mark)] == []


def test_blocking_without_a_roster_module_sends_no_unavailable_presence(server_factory, raw_factory):
    # No module keeps rosters: nobody is subscribed to alice, so nobody may see her
    # presence, and the block sends none.
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    mark = len(bob.received)
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    no_presence_since(alice, bob, f"bob@{d}", mark)


def test_user_can_block_own_domain_but_not_himself(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    other = login(server, raw_factory, "alice", "balcony", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    ok(alice.iq("set", block_xml(d)))
    bob.message(f"alice@{d}", "blocked by domain")
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    # The user's own resources and account are never blocked.
    other.message(f"alice@{d}/chamber", "from my other resource")
    alice.expect_message("from my other resource")
    assert blocklist(alice) == [d]
    assert alice.iq("get", PING, to=d).get("type") == "error"  # the server itself is blocked, as asked


# -- storage and the cache ---------------------------------------------------------

def test_blocklist_persists_across_a_restart(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml(f"bob@{d}", "capulet.example", f"carol@{d}/x")))
    ok(alice.iq("set", unblock_xml("capulet.example")))
    server.restart()
    # Enforcement before alice logs in again: her list is loaded on demand.
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    reply = bob.iq("get", GET_LIST, to=f"alice@{d}")
    assert stanza_error_condition(reply)[1] == "service-unavailable"
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    assert blocklist(alice) == [f"bob@{d}", f"carol@{d}/x"]
    bob.message(f"alice@{d}", "after restart")
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"


def test_blocklist_persists_across_a_restart_on_postgresql(server_factory, raw_factory, pg_storage):
    """The blocklists are in the map store, on the configured backend."""
    server = start(server_factory, storage=pg_storage)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml(f"bob@{d}", "capulet.example", f"carol@{d}/x")))
    ok(alice.iq("set", unblock_xml("capulet.example")))
    server.restart()
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    assert blocklist(alice) == [f"bob@{d}", f"carol@{d}/x"]
    ok(alice.iq("set", unblock_xml()))
    assert blocklist(alice) == []


def test_rows_of_the_old_table_are_moved_into_the_map_store(server_factory, raw_factory):
    """A server whose mod_blocking kept its lists in its own table (the schema before the
    map store) enforces and lists them after the upgrade, in the order they were blocked;
    the old rows are deleted once moved."""
    import sqlite3
    server = start(server_factory)
    d = server.domain
    server.stop()
    db = sqlite3.connect(server.data_dir / "parley.db")
    recreate_old_tables(db, "mod_blocking_items")
    with db:
        db.executemany("INSERT INTO mod_blocking_items (host, user, jid) VALUES (?, ?, ?)",
                       [(d, "alice", f"carol@{d}"), (d, "alice", f"bob@{d}"), (d, "bob", "capulet.example")])
    db.close()
    server.start()
    # Enforcement before alice logs in: her list is loaded on demand, after the move.
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    bob.message(f"alice@{d}", "blocked")
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    assert blocklist(alice) == [f"carol@{d}", f"bob@{d}"]
    assert blocklist(bob) == ["capulet.example"]
    # Moved, then dropped.
    assert old_tables_left(server.data_dir / "parley.db", ("mod_blocking_items",)) == {}


def test_lists_of_offline_users_are_evicted_and_loaded_again(server_factory, raw_factory):
    server = start(server_factory, options={"cache_idle_seconds": 1})
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    alice.close()
    # Every loop that loaded a copy of her list evicts its own: wait for all of
    # them (with two loops, the one that serves bob's pings may hold one).
    deadline = time.monotonic() + 10
    while True:
        loaded = wait_counter(server, "lists_loaded", 1)
        evicted = wait_counter(server, "lists_evicted", loaded)
        if (loaded >= 1 and evicted >= loaded) or time.monotonic() > deadline:
            break
    assert loaded >= 1 and evicted >= loaded, (loaded, evicted)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    loaded = wait_counter(server, "lists_loaded", 0, timeout=0)
    # A stanza for alice waits for her list, then is refused by it.
    for _ in range(3):
        reply = bob.iq("get", PING, to=f"alice@{d}")
        assert stanza_error_condition(reply)[1] == "service-unavailable"
    assert wait_counter(server, "lists_loaded", loaded + 1) >= loaded + 1
    assert wait_counter(server, "inbound_blocked", 3) >= 3


def test_hot_reload_keeps_interested_resources_and_lists(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    chamber = login(server, raw_factory, "alice", "chamber", presence=True)
    balcony = login(server, raw_factory, "alice", "balcony", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    assert blocklist(chamber) == []
    ok(balcony.iq("set", block_xml(f"bob@{d}")))
    expect_push(chamber, "block", set())
    reload = server.ctl("module", "reload", "mod_blocking")
    assert reload.returncode == 0, reload.stdout + reload.stderr
    # The new code knows who asked for the list, and loads the lists again.
    bob.message(f"alice@{d}", "after reload")
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    ok(balcony.iq("set", block_xml(f"carol@{d}")))
    assert push_items(expect_push(chamber, "block", set(map(id, pushes_seen(chamber, "block")))), "block") == [f"carol@{d}"]
    assert pushes_seen(balcony, "block") == []
    sid = balcony.message(f"bob@{d}", "to a blocked contact")
    refused = balcony.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("id") == sid)
    assert refused.find(q(NS_CLIENT, "error")).find(q(NS_ERRORS, "blocked")) is not None


def test_removed_account_loses_its_blocklist(server_factory, raw_factory):
    server = start(server_factory)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    assert server.ctl("unregister", "alice", d).returncode == 0
    server.register("alice", PASSWORD)
    deadline = time.monotonic() + 10
    while True:  # the removal's delete is asynchronous
        alice = login(server, raw_factory, "alice", "again")
        items = blocklist(alice)
        if items == [] or time.monotonic() > deadline:
            break
        alice.close()
        time.sleep(0.2)
    assert items == []


def test_blocked_messages_to_an_offline_user_are_not_stored(server_factory, raw_factory):
    server = start(server_factory, extra_modules={"mod_offline": {}}, options={"cache_idle_seconds": 1})
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    alice.close()
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    carol = login(server, raw_factory, "carol", "c", presence=True)
    bob.message(f"alice@{d}", "secret from bob")
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    carol.message(f"alice@{d}", "stored from carol")
    assert [e for e in carol.nothing_before_sync() if e.get("type") == "error"] == []
    # Also once alice's list was evicted: loaded on demand, still refused.
    assert wait_counter(server, "lists_evicted", 1) >= 1
    bob.message(f"alice@{d}", "second secret")
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    # The stored messages come in one delivery, on alice's loop: once carol's
    # came (perhaps before the login's own round trip), a round trip there
    # has every other one before it.
    if "stored from carol" not in bodies(alice):
        alice.expect_message("stored from carol")
    alice.nothing_before_sync()
    assert bodies(alice) == ["stored from carol"]


def test_what_was_stored_before_the_block_is_not_delivered_after_it(server_factory, raw_factory):
    """A message stored offline before its sender was blocked never passes the
    inbound hooks again: the filter on what is written to the session drops it
    at the login's delivery (XEP-0191 §3.3: nothing from a blocked address is
    delivered) and answers the sender as a live message is answered."""
    server = start(server_factory, extra_modules={"mod_offline": {}})
    d = server.domain
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    carol = login(server, raw_factory, "carol", "c", presence=True)
    bob.message(f"alice@{d}", "stored from bob")
    carol.message(f"alice@{d}", "stored from carol")
    for c in (bob, carol):
        assert [e for e in c.nothing_before_sync() if e.get("type") == "error"] == []
    # Logged in without presence: nothing is delivered before the block.
    alice = login(server, raw_factory, "alice", "chamber")
    ok(alice.iq("set", block_xml(f"bob@{d}")))
    alice.send("<presence/>")
    alice.expect_message("stored from carol")
    alice.nothing_before_sync()
    assert bodies(alice) == ["stored from carol"]
    error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable"
    # Dropped, not left stored: a later login without the block gets only what
    # was stored since (one delivery, in the order stored: bob's would come first).
    ok(alice.iq("set", unblock_xml(f"bob@{d}")))
    alice.close()
    carol.message(f"alice@{d}", "later from carol")
    carol.nothing_before_sync()
    again = login(server, raw_factory, "alice", "again", presence=True)
    if "later from carol" not in bodies(again):  # perhaps before the login's own round trip
        again.expect_message("later from carol")
    again.nothing_before_sync()
    assert bodies(again) == ["later from carol"]


def cross_loop_count(server):
    for line in server.ctl("status").stdout.splitlines():
        if line.startswith("stanzas_cross_loop: "):
            return int(line.split(": ", 1)[1])
    raise AssertionError("parleyctl status shows no stanzas_cross_loop")


def login_on_another_loop(server, raw_factory, peer, user, presence=True, attempts=40):
    """A session of `user` on another loop than `peer` (workers: 2): the kernel
    spreads connections over the loops, so log in until a message from `peer`
    to the new session is counted as crossing loops."""
    d = server.domain
    for n in range(attempts):
        c = login(server, raw_factory, user, f"probe{n}", presence=presence)
        before = cross_loop_count(server)
        peer.message(c.jid, f"which loop {n}")
        c.expect_message(f"which loop {n}")
        if cross_loop_count(server) > before:
            return c
        c.close()
    raise AssertionError(f"no session of {user} on another loop than {peer.jid} in {attempts} logins")


def test_block_and_unblock_take_effect_at_once_on_the_other_loop(server_factory, raw_factory):
    """Each loop keeps its own copy of a list, and the commands run on the
    user's owning loop: the answer to block/unblock comes only once every loop
    applied the change, so the contact's very next stanza, handled on the
    other loop, is judged by the new list, both ways, every time."""
    server = start(server_factory, workers=2)
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login_on_another_loop(server, raw_factory, alice, "bob")
    for n in range(15):
        ok(alice.iq("set", block_xml(f"bob@{d}")))
        bob.message(f"alice@{d}", f"blocked {n}")
        error = bob.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
        assert stanza_error_condition(error)[1] == "service-unavailable", xml(error)
        # Outbound on alice's loop, from the same list.
        sid = alice.message(f"bob@{d}", f"to blocked {n}")
        refused = alice.expect(q(NS_CLIENT, "message"), match=lambda e, sid=sid: e.get("id") == sid)
        assert refused.find(q(NS_CLIENT, "error")).find(q(NS_ERRORS, "blocked")) is not None
        ok(alice.iq("set", unblock_xml(f"bob@{d}")))
        bob.message(f"alice@{d}", f"unblocked {n}")
        alice.expect_message(f"unblocked {n}")
    assert not [b for b in bodies(alice) if b.startswith("blocked ")]
    # The other loop's copy is the one bob's own session was checked against
    # when bob blocks alice from there.
    ok(bob.iq("set", block_xml(f"alice@{d}")))
    sid = alice.message(f"bob@{d}", "to bob, who blocked me")
    error = alice.expect(q(NS_CLIENT, "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "service-unavailable", xml(error)


# -- a real client library -----------------------------------------------------------

def test_gloox_clients(server_factory, gloox_factory):
    server = start(server_factory)
    d = server.domain
    alice = gloox_factory(server, "alice", "chamber")
    bob = gloox_factory(server, "bob", "orchard")
    alice.connected()
    bob.connected()
    alice.cmd(f"raw <iq type='get' id='glist-a'><blocklist xmlns='{NS}'/></iq>")
    alice.cmd("expect-in glist-a 10")
    assert "result" in alice.wait_line("IN ")
    # The push (alice asked for the list) names bob; the list then has him.
    alice.cmd(f"raw <iq type='set' id='gblock-a'><block xmlns='{NS}'><item jid='bob@{d}'/></block></iq>")
    alice.cmd("expect-in block-push 10")
    line = alice.wait_line("IN ")
    assert f"bob@{d}" in line and NS in line, line
    alice.cmd(f"raw <iq type='get' id='glist-b'><blocklist xmlns='{NS}'/></iq>")
    alice.cmd("expect-in glist-b 10")
    line = alice.wait_line("IN ")
    assert "result" in line and f"bob@{d}" in line, line

    bob.cmd(f"send alice@{d} hello from bob")
    bob.cmd("expect-in service-unavailable 10")
    assert "error" in bob.wait_line("IN ")

    alice.cmd(f"send bob@{d} are you there")
    alice.cmd(f"expect-in {NS_ERRORS} 10")
    line = alice.wait_line("IN ")
    assert "not-acceptable" in line, line

    alice.cmd(f"raw <iq type='set' id='gunblock-a'><unblock xmlns='{NS}'/></iq>")
    alice.cmd("expect-in gunblock-a 10")
    assert "result" in alice.wait_line("IN ")
    bob.cmd(f"send alice@{d} after unblock")
    # An explicit timeout: without one the script client's default is lost
    # (split_trailing_number overwrites it with 0).
    alice.cmd("expect-msg after unblock 10")
    alice.wait_for("OK expect-msg")
    assert "hello from bob" not in [m.get("body") for m in alice.messages()]
    assert "are you there" not in [m.get("body") for m in bob.messages()]
    assert alice.quit() == 0
    assert bob.quit() == 0


# -- with the roster and presence modules (RFC 6121) -----------------------------

def subscribe(watcher, watched):
    """`watcher` subscribes to `watched`'s presence, approved (RFC 6121 §3.1)."""
    watcher_bare, watched_bare = watcher.jid.split("/")[0], watched.jid.split("/")[0]
    watcher.send(f"<presence to='{watched_bare}' type='subscribe'/>")
    watched.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("type") == "subscribe")
    watched.send(f"<presence to='{watcher_bare}' type='subscribed'/>")
    watcher.expect(q(NS_CLIENT, "presence"),
                   match=lambda e: e.get("from") == watched.jid and e.get("type") is None)


def presences_from(client, jid, start=0):
    return [e for e in client.received[start:] if e.tag == q(NS_CLIENT, "presence") and e.get("from") == jid]


def test_with_presence_module_block_hides_and_unblock_restores_presence(server_factory, raw_factory):
    server = start(server_factory, extra_modules={"mod_roster": {}, "mod_presence": {}})
    d = server.domain
    alice = login(server, raw_factory, "alice", "chamber", presence=True)
    bob = login(server, raw_factory, "bob", "orchard", presence=True)
    carol = login(server, raw_factory, "carol", "c", presence=True)
    server.register("dave", PASSWORD)
    dave = login(server, raw_factory, "dave", "d", presence=True)
    subscribe(bob, alice)  # bob sees alice's presence
    subscribe(dave, alice)  # and so does dave, the witness of her broadcasts

    # Blocking: bob gets alice's unavailable presence, then none of her broadcasts.
    ok(alice.iq("set", block_xml(f"bob@{d}", f"carol@{d}")))
    bob.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("from") == alice.jid and e.get("type") == "unavailable")
    mark_bob, mark_carol = len(bob.received), len(carol.received)
    alice.send("<presence><show>away</show></presence>")
    # The broadcast runs after a roster read, for every subscriber at once:
    # once dave has it, anything it sent bob was already posted to bob's loop
    # when bob's ping comes.
    dave.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("from") == alice.jid and e.get("type") is None
                and e.findtext(q(NS_CLIENT, "show")) == "away")
    bob.nothing_before_sync()
    assert presences_from(bob, alice.jid, mark_bob) == []

    # Unblocking: bob, subscribed, gets alice's current presence again; carol,
    # not subscribed, gets nothing that reveals it.
    ok(alice.iq("set", unblock_xml()))
    away = bob.expect(q(NS_CLIENT, "presence"), match=lambda e: e.get("from") == alice.jid)
    assert away.get("type") is None and away.findtext(q(NS_CLIENT, "show")) == "away", xml(away)
    # The unblock probed for both, on alice's loop, and bob's probe was
    # answered. Carol's answer comes after a storage read of its own (two
    # reader threads: begun with bob's, not strictly done in order), then
    # from alice's loop, like the marker that follows.
    carol.nothing_before_marker(alice)
    assert [xml(e) for e in presences_from(carol, alice.jid, mark_carol) if e.get("type") in (None, "probe")] == []
