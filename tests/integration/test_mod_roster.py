"""mod_roster against a running parleyd: RFC 6121 section 2 (roster get,
set, remove, pushes and every error) and 2.6 / XEP-0237 (versioning) with the
raw client for exact XML; the stores (both backends, the move from the old
tables). Section 3 (subscriptions) and gloox's RosterManager are in
test_mod_roster_subscriptions.py; the shared peer in roster_peer.py.

Every test runs with mod_roster alone (no mod_presence): the probes mod_roster
routes after an approval are then dropped by the router. With
PARLEY_ROSTER_WITH_PRESENCE=1 in the environment every server also loads
mod_presence, and the raw-client tests must hold all the same.
"""

import sqlite3
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD, old_tables_left
from rawxmpp import NS_CLIENT, NS_DISCO_INFO, q, stanza_error_condition
from old_schemas import recreate_old_tables

from roster_peer import GROUP, IQ, ITEM, NS, PRESENCE, QUERY, error_of, groups_of, login, ping, start


# -- section 2: roster management ---------------------------------------------------

def test_empty_roster_get(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice", roster=False)
    reply = alice.get()
    assert reply.get("type") == "result"
    query = reply.find(QUERY)
    assert query is not None and len(query) == 0
    assert query.get("ver") is not None  # versioning is on by default


def test_add_update_remove_rfc_examples(server_factory, raw_factory, storage_backend):
    # RFC 6121 2.3 (add), 2.4 (update), 2.5 (delete), with the pushes of 2.1.6.
    server = start(server_factory, users=("juliet",), storage=storage_backend)
    juliet = login(server, raw_factory, "juliet", resource="balcony")
    reply = juliet.set("nurse@example.com", name="Nurse", groups=["Servants"])
    assert reply.get("type") == "result" and len(reply) == 0
    item, ver1 = juliet.push("nurse@example.com")
    assert item.get("name") == "Nurse" and item.get("subscription") == "none"
    assert item.get("ask") is None and groups_of(item) == ["Servants"]
    assert ver1

    roster = juliet.roster()
    assert list(roster) == ["nurse@example.com"]
    assert groups_of(roster["nurse@example.com"]) == ["Servants"]

    reply = juliet.set("nurse@example.com", name="Nurse", groups=["Friends", "Servants"])
    assert reply.get("type") == "result"
    item, ver2 = juliet.push("nurse@example.com")
    assert groups_of(item) == ["Friends", "Servants"]
    assert int(ver2) > int(ver1)
    # A set replaces name and groups: without them, the item has neither.
    juliet.set("nurse@example.com")
    item, _ = juliet.push("nurse@example.com")
    assert item.get("name") is None and groups_of(item) == []

    reply = juliet.remove("nurse@example.com")
    assert reply.get("type") == "result"
    item, ver3 = juliet.push("nurse@example.com")
    assert item.get("subscription") == "remove"
    assert int(ver3) > int(ver2)
    assert juliet.roster() == {}


def test_contact_jid_is_prepared(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    assert alice.set("Romeo@Example.NET").get("type") == "result"
    item, _ = alice.push()
    assert item.get("jid") == "romeo@example.net"
    assert list(alice.roster()) == ["romeo@example.net"]


def test_non_ascii_contact_jid_is_prepared_by_the_server_rules(server_factory, raw_factory):
    # RFC 7622 nodeprep case-folds beyond ASCII: two spellings, one item.
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    assert alice.set("\u00c4RGER@Example.NET").get("type") == "result"
    item, _ = alice.push()
    assert item.get("jid") == "\u00e4rger@example.net"
    assert alice.set("\u00e4rger@example.net", name="same").get("type") == "result"
    alice.push()
    assert list(alice.roster()) == ["\u00e4rger@example.net"]
    # A JID the server's stringprep refuses (U+2028 is a prohibited control character).
    assert error_of(alice.set("bad\u2028x@example.net"))[1] == "jid-malformed"


def test_pushes_reach_interested_resources_only(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    first = login(server, raw_factory, "alice", resource="one")
    second = login(server, raw_factory, "alice", resource="two")
    other = login(server, raw_factory, "alice", resource="three", roster=False, presence=True)
    assert first.set("romeo@example.net", name="Romeo").get("type") == "result"
    assert first.push("romeo@example.net")[0].get("name") == "Romeo"
    assert second.push("romeo@example.net")[0].get("name") == "Romeo"
    other.no_push()
    # Asking for the roster makes a resource interested from then on.
    other.get()
    first.set("romeo@example.net", name="Romeo M.")
    assert other.push("romeo@example.net")[0].get("name") == "Romeo M."


def test_set_errors(server_factory, raw_factory):
    server = start(server_factory, users=("alice",), max_name_length=10, max_group_length=8)
    alice = login(server, raw_factory, "alice")
    cases = [
        # RFC 6121 2.3.3: bad-request
        (f"<query xmlns='{NS}'><item jid='a@example.net'/><item jid='b@example.net'/></query>",
         "bad-request"),
        (f"<query xmlns='{NS}'/>", "bad-request"),
        (f"<query xmlns='{NS}'><item jid='a@example.net'><group>G</group><group>G</group></item></query>",
         "bad-request"),
        (f"<query xmlns='{NS}'><item name='no jid'/></query>", "bad-request"),
        # not-acceptable
        (f"<query xmlns='{NS}'><item jid='a@example.net'><group></group></item></query>", "not-acceptable"),
        (f"<query xmlns='{NS}'><item jid='a@example.net' name='{'n' * 11}'/></query>", "not-acceptable"),
        (f"<query xmlns='{NS}'><item jid='a@example.net'><group>{'g' * 9}</group></item></query>",
         "not-acceptable"),
        # the contact's address
        (f"<query xmlns='{NS}'><item jid='a@@example.net'/></query>", "jid-malformed"),
        (f"<query xmlns='{NS}'><item jid='a@example.net/res'/></query>", "bad-request"),
        (f"<query xmlns='{NS}'><item jid='alice@{server.domain}'/></query>", "not-allowed"),
        # 2.5.3: removing what is not there
        (f"<query xmlns='{NS}'><item jid='nobody@example.net' subscription='remove'/></query>",
         "item-not-found"),
    ]
    for child, condition in cases:
        reply = alice.iq("set", child)
        assert error_of(reply)[1] == condition, child
    assert error_of(alice.iq("set", cases[0][0]))[0] == "modify"
    assert error_of(alice.iq("set", cases[-1][0]))[0] == "cancel"
    alice.no_push()
    assert alice.roster() == {}
    # At the limits exactly: accepted.
    reply = alice.set("a@example.net", name="n" * 10, groups=["g" * 8])
    assert reply.get("type") == "result"


def test_client_cannot_set_subscription_ask_or_approved(server_factory, raw_factory):
    # RFC 6121 2.1.2: the server ignores those in a roster set; only
    # subscription='remove' means something.
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    reply = alice.set("romeo@example.net", extra=" subscription='both' ask='subscribe' approved='true'")
    assert reply.get("type") == "result"
    item, _ = alice.push("romeo@example.net")
    assert item.get("subscription") == "none"
    assert item.get("ask") is None and item.get("approved") is None


def test_another_users_roster_is_forbidden(server_factory, raw_factory):
    server = start(server_factory)
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    assert error_of(bob.iq("get", f"<query xmlns='{NS}'/>", to=alice.bare)) == ("auth", "forbidden")
    reply = bob.iq("set", f"<query xmlns='{NS}'><item jid='x@example.net'/></query>", to=alice.bare)
    assert error_of(reply) == ("auth", "forbidden")
    alice.no_push()
    # To one's own bare JID is the same as no 'to'.
    assert alice.iq("get", f"<query xmlns='{NS}'/>", to=alice.bare).get("type") == "result"


def test_max_roster_size(server_factory, raw_factory):
    server = start(server_factory, max_roster_size=2)
    alice = login(server, raw_factory, "alice", presence=True)
    assert alice.set("a@example.net").get("type") == "result"
    assert alice.set("b@example.net").get("type") == "result"
    assert error_of(alice.set("c@example.net"))[1] == "not-allowed"
    # Changing an existing item is still fine.
    assert alice.set("a@example.net", name="A").get("type") == "result"
    # A subscription request that would add an item is refused the same way.
    alice.send(f"<presence to='bob@{server.domain}' type='subscribe'/>")
    err = alice.wait(lambda e: e.tag == PRESENCE and e.get("type") == "error", what="presence error")
    assert stanza_error_condition(err)[1] == "not-allowed"
    assert sorted(alice.roster()) == ["a@example.net", "b@example.net"]
    # After a removal there is room again.
    assert alice.remove("b@example.net").get("type") == "result"
    assert alice.set("c@example.net").get("type") == "result"


def test_max_groups_per_item(server_factory, raw_factory):
    # Issue 9 item 6: groups per item were unbounded. The default is 32.
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    groups = [f"g{i:02d}" for i in range(33)]
    assert alice.set("a@example.net", groups=groups[:32]).get("type") == "result"
    alice.push("a@example.net")
    assert error_of(alice.set("a@example.net", groups=groups)) == ("modify", "not-acceptable")
    assert groups_of(alice.roster()["a@example.net"]) == groups[:32]
    # The option sets it.
    server = start(server_factory, users=("alice",), max_groups_per_item=2)
    alice = login(server, raw_factory, "alice")
    assert alice.set("a@example.net", groups=["g1", "g2"]).get("type") == "result"
    assert error_of(alice.set("a@example.net", groups=["g1", "g2", "g3"])) == ("modify", "not-acceptable")


def test_default_roster_bytes_bound_the_roster(server_factory, raw_factory):
    # Issue 9 item 6: by default a roster holds at most 512 KiB (so that its
    # result, one iq, fits a session's write backlog). Items with long names
    # reach that before the 1000 items of max_roster_size.
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    name = "n" * 1000  # 16 + 1000 + 64 bytes an item: the 486th goes over 524288
    n = 490
    alice.send("".join(f"<iq type='set' id='big{i}'><query xmlns='{NS}'><item jid='c{i:03d}@example.net' "
                       f"name='{name}'/></query></iq>" for i in range(n)))
    replies = {}
    while len(replies) < n:
        e = alice.wait(lambda e: e.tag == IQ and (e.get("id") or "").startswith("big"), timeout=20,
                       what="a reply to a roster set")
        replies[e.get("id")] = e
    kinds = [replies[f"big{i}"].get("type") for i in range(n)]
    assert kinds == ["result"] * 485 + ["error"] * 5, kinds.count("result")
    assert stanza_error_condition(replies["big489"])[1] == "not-allowed"
    assert len(alice.roster()) == 485


def test_max_roster_bytes(server_factory, raw_factory):
    # Issue 9 item 6: a roster of many large items could not be fetched by
    # its owner; its total size is now bounded (each item counts its jid,
    # name and groups plus 64 bytes of markup).
    server = start(server_factory, max_roster_bytes=2048)
    alice = login(server, raw_factory, "alice", presence=True)
    name = "n" * 600
    for i in range(3):  # 3 x (14 + 600 + 64) = 2034 bytes
        assert alice.set(f"c{i}@example.net", name=name).get("type") == "result"
    reply = alice.set("c3@example.net", name=name)
    assert error_of(reply)[1] == "not-allowed"
    # Growing an item past the budget is refused the same way...
    reply = alice.set("c0@example.net", name=name, groups=["g" * 20])
    assert error_of(reply)[1] == "not-allowed"
    # ... and an outbound subscription that would add an item too.
    alice.send(f"<presence to='bob@{server.domain}' type='subscribe'/>")
    err = alice.wait(lambda e: e.tag == PRESENCE and e.get("type") == "error", what="presence error")
    assert stanza_error_condition(err)[1] == "not-allowed"
    # Shrinking is always fine, and frees room.
    assert alice.set("c0@example.net", name="short").get("type") == "result"
    assert alice.set("c3@example.net", name="n" * 200).get("type") == "result"
    assert sorted(alice.roster()) == [f"c{i}@example.net" for i in range(4)]


def test_large_roster_can_be_fetched_by_its_owner(server_factory, raw_factory):
    # Issue 9 item 2: a roster with many large groups per item was accepted
    # until its result (one iq) no longer fit the session's write backlog:
    # its owner was cut at every fetch. max_roster_bytes now refuses the set
    # that would take it there, and the owner fetches what was accepted.
    server = start(server_factory, users=("alice",))
    writer = login(server, raw_factory, "alice", resource="w", roster=False)  # not interested: no pushes
    groups = "".join(f"<group>{k:02d}{'g' * 998}</group>" for k in range(32))  # ~32 KB an item
    n = 400
    accepted = 0
    # 20 sets at a time, each batch's replies read before the next: an error
    # reply carries the refused query back (~32 KB), and a client that writes
    # megabytes without reading is cut as a slow reader (as it should be).
    for start_at in range(0, n, 20):
        batch = range(start_at, start_at + 20)
        writer.send("".join(f"<iq type='set' id='s{i}'><query xmlns='{NS}'><item jid='c{i:03d}@example.net'>"
                            f"{groups}</item></query></iq>" for i in batch))
        for i in batch:
            e = writer.wait(lambda e: e.tag == IQ and e.get("id") == f"s{i}", timeout=60, what=f"reply s{i}")
            accepted += e.get("type") == "result"
    assert 0 < accepted < n
    owner = login(server, raw_factory, "alice", resource="owner", roster=False)
    roster = owner.roster(timeout=60)  # megabytes of groups: slow on a loaded CI machine
    assert len(roster) == accepted
    assert all(len(item.findall(GROUP)) == 32 for item in roster.values())
    ping(owner, server)  # still connected


def test_roster_survives_restart(server_factory, raw_factory, storage_backend):
    server = start(server_factory, users=("alice",), storage=storage_backend)
    alice = login(server, raw_factory, "alice")
    alice.set("romeo@example.net", name="Romeo", groups=["Friends", "Lovers"])
    alice.c.close()
    server.restart()
    alice = login(server, raw_factory, "alice", roster=False)
    roster = alice.roster()
    assert roster["romeo@example.net"].get("name") == "Romeo"
    assert groups_of(roster["romeo@example.net"]) == ["Friends", "Lovers"]


def test_rows_of_the_old_tables_are_moved_into_the_map_store(server_factory, raw_factory):
    """A server whose mod_roster kept rosters in its SQLite tables (before the map
    store) has them after the upgrade: items with their state, names and groups,
    removals for versioned gets, pending requests delivered at login; the old rows
    are deleted once moved."""
    server = start(server_factory, users=("alice", "bob"))
    d = server.domain
    server.stop()
    db = sqlite3.connect(str(server.data_dir / "parley.db"))
    recreate_old_tables(db, "mod_roster_items", "mod_roster_pending", "mod_roster_removed")
    with db:
        db.executemany(
            "INSERT INTO mod_roster_items (host, user, contact, subscription, ask, approved, name, groups, ver) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(d, "alice", "romeo@example.net", "both", 0, 0, "Romeo M.", "7:Friends3:A:B", 3),
             (d, "alice", "nurse@example.net", "none", 1, 0, None, "", 5),
             (d, "bob", f"alice@{d}", "to", 0, 0, "Alice", "", 1)])
        db.execute("INSERT INTO mod_roster_removed (host, user, contact, ver) VALUES (?, ?, ?, ?)",
                   (d, "alice", "tybalt@example.net", 4))
        db.execute("INSERT INTO mod_roster_pending (host, user, contact, stanza) VALUES (?, ?, ?, ?)",
                   (d, "alice", "mercutio@example.net",
                    f"<presence xmlns='jabber:client' type='subscribe' from='mercutio@example.net' "
                    f"to='alice@{d}'><status>moved</status></presence>"))
    db.close()
    server.start()
    alice = login(server, raw_factory, "alice", roster=False)
    reply = alice.get()
    query = reply.find(QUERY)
    assert query.get("ver") == "5"
    items = {i.get("jid"): i for i in query.findall(ITEM)}
    assert sorted(items) == ["nurse@example.net", "romeo@example.net"]
    romeo = items["romeo@example.net"]
    assert romeo.get("name") == "Romeo M." and romeo.get("subscription") == "both"
    assert groups_of(romeo) == ["A:B", "Friends"]
    assert items["nurse@example.net"].get("ask") == "subscribe" and items["nurse@example.net"].get("name") is None
    # A cache from before the removal gets it, and the newer change, as pushes.
    other = login(server, raw_factory, "alice", resource="cached", roster=False)
    assert len(other.get(ver="3")) == 0
    item, ver = other.push("tybalt@example.net")
    assert item.get("subscription") == "remove" and ver == "4"
    _, ver = other.push("nurse@example.net")
    assert ver == "5"
    # The request waiting in the old table is delivered when alice becomes available.
    alice.send("<presence/>")
    request = alice.presence("subscribe", "mercutio@example.net")
    assert request.find(q(NS_CLIENT, "status")).text == "moved"
    bob = login(server, raw_factory, "bob", roster=False)
    assert bob.roster()[f"alice@{d}"].get("subscription") == "to"
    # The old rows are deleted once moved (a write after the move's last put), and
    # the tables dropped.
    assert old_tables_left(server.data_dir / "parley.db",
                           ("mod_roster_items", "mod_roster_removed", "mod_roster_pending")) == {}


def test_concurrent_changes_of_one_user_keep_distinct_versions(server_factory, raw_factory):
    # Several resources (on both worker loops, by the odds) change one roster
    # at once: every change gets its own version, none is lost.
    server = start(server_factory, users=("alice",))
    peers = [login(server, raw_factory, "alice", resource=f"r{i}") for i in range(4)]
    per_peer = 8
    for i, peer in enumerate(peers):
        peer.send("".join(f"<iq type='set' id='c{i}-{n}'><query xmlns='{NS}'>"
                          f"<item jid='c{i}-{n}@example.net'/></query></iq>" for n in range(per_peer)))
    for i, peer in enumerate(peers):
        for n in range(per_peer):
            reply = peer.wait(lambda e, sid=f"c{i}-{n}": e.tag == IQ and e.get("id") == sid, what="set result")
            assert reply.get("type") == "result"
    total = per_peer * len(peers)
    versions = [int(peers[0].push()[1]) for _ in range(total)]
    assert len(set(versions)) == total
    roster = peers[0].get().find(QUERY)
    assert len(roster.findall(ITEM)) == total
    assert int(roster.get("ver")) == max(versions)


def status_value(server, name):
    """A line of parleyctl status ("name: value"), 0 if absent."""
    for line in server.ctl("status").stdout.splitlines():
        if line.startswith(name + ": "):
            return int(line.split(": ", 1)[1])
    return 0


def login_on_two_loops(server, raw_factory, user, attempts=40):
    """Two sessions of `user` on different worker loops (workers: 2). The
    kernel spreads connections over the loops: log in until a message between
    the two is counted as crossing loops."""
    first = login(server, raw_factory, user, resource="first")
    for n in range(attempts):
        other = login(server, raw_factory, user, resource=f"other{n}")
        before = status_value(server, "stanzas_cross_loop")
        first.c.message(other.jid, f"which loop {n}")
        other.wait(lambda e, n=n: e.tag == q(NS_CLIENT, "message") and e.findtext(q(NS_CLIENT, "body")) ==
                   f"which loop {n}", what="the probe message")
        if status_value(server, "stanzas_cross_loop") > before:
            return first, other
        other.c.close()
    raise AssertionError(f"no two sessions of {user} on different loops in {attempts} logins")


def test_contended_roster_work_is_queued_and_posted_not_polled(server_factory, raw_factory):
    """A user's roster work runs one piece at a time on the loop that owns the
    user. Work from a session on another loop is posted there; work that comes
    while earlier work runs waits in the line and is started when that work is
    done, not found by a timer polling every 1-2 ms (the old design, which
    had neither of these metrics). Two sessions on different loops pipeline
    sets: every set is answered, every change has its own version, the
    module's metrics show queued and posted work; then, idle, they stand
    still and the module reloads at once (no timer or task pending)."""
    server = start(server_factory, users=("alice",))
    peers = login_on_two_loops(server, raw_factory, "alice")
    per_peer = 20
    for i, peer in enumerate(peers):
        peer.send("".join(f"<iq type='set' id='p{i}-{n}'><query xmlns='{NS}'>"
                          f"<item jid='p{i}-{n}@example.net'/></query></iq>" for n in range(per_peer)))
    for i, peer in enumerate(peers):
        for n in range(per_peer):
            reply = peer.wait(lambda e, sid=f"p{i}-{n}": e.tag == IQ and e.get("id") == sid, what="set result")
            assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    total = per_peer * len(peers)
    versions = [int(peers[0].push()[1]) for _ in range(total)]
    assert len(set(versions)) == total
    assert len(peers[1].roster()) == total
    prefix = f"mod_roster.{server.domain}."
    waited = status_value(server, prefix + "work_waited")
    posted = status_value(server, prefix + "work_posted")
    assert waited > 0, "pipelined sets of one user never queued behind one another"
    assert posted > 0, "a session off the owning loop had its work posted there"
    time.sleep(0.5)
    assert status_value(server, prefix + "work_waited") == waited
    assert status_value(server, prefix + "work_posted") == posted
    deadline = time.monotonic() + 5
    while True:  # the last storage completion is counted done just after it answered
        reloaded = server.ctl("module", "reload", "mod_roster")
        if reloaded.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr


def test_hot_reload_keeps_interested_resources(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    interested = login(server, raw_factory, "alice", resource="one")
    writer = login(server, raw_factory, "alice", resource="two", roster=False)
    reloaded = server.ctl("module", "reload", "mod_roster")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert writer.set("romeo@example.net").get("type") == "result"
    interested.push("romeo@example.net")
    writer.no_push()


def test_disco_advertises_roster_versioning(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice", roster=False)
    reply = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=server.domain)
    features = [f.get("var") for f in reply.find(q(NS_DISCO_INFO, "query")).findall(q(NS_DISCO_INFO, "feature"))]
    assert "urn:xmpp:features:rosterver" in features


def test_stream_features_advertise_versioning_and_preapproval(server_factory, raw_factory):
    # RFC 6121 §2.6.1 and §3.4: after authentication, next to bind.
    server = start(server_factory, users=("alice",))
    c = raw_factory(server.c2s_port)
    c.start()
    c.starttls()
    assert c.auth_plain("alice", PASSWORD).tag == q("urn:ietf:params:xml:ns:xmpp-sasl", "success")
    features = c.start()
    assert features.find(q("urn:xmpp:features:rosterver", "ver")) is not None
    assert features.find(q("urn:xmpp:features:pre-approval", "sub")) is not None


# -- 2.6 / XEP-0237: versioning ------------------------------------------------------

def test_versioning_same_version_empty_result(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    alice.set("romeo@example.net")
    _, ver = alice.push()
    reply = alice.get(ver=ver)
    assert reply.get("type") == "result" and len(reply) == 0  # nothing changed: empty result
    alice.no_push()


def test_versioning_older_version_pushes_the_delta(server_factory, raw_factory, storage_backend):
    server = start(server_factory, users=("alice",), storage=storage_backend)
    alice = login(server, raw_factory, "alice")
    for contact in ("a@example.net", "b@example.net", "c@example.net", "d@example.net"):
        alice.set(contact)
        alice.push(contact)
    old = alice.get().find(QUERY).get("ver")
    alice.set("b@example.net", name="Bee")
    alice.push("b@example.net")
    alice.remove("c@example.net")
    _, current = alice.push("c@example.net")
    # A second resource with a cache at `old`.
    other = login(server, raw_factory, "alice", resource="cached", roster=False)
    reply = other.get(ver=old)
    assert reply.get("type") == "result" and len(reply) == 0
    item, ver = other.push("b@example.net")
    assert item.get("name") == "Bee"
    item, ver2 = other.push("c@example.net")
    assert item.get("subscription") == "remove"
    assert int(ver) < int(ver2) == int(current)
    other.no_push()


def test_removal_records_are_bounded(server_factory, raw_factory):
    """max_removal_records: past it the oldest removals are forgotten, and a cache
    older than them gets the whole roster (RFC 6121 2.6.3 allows it); a newer one
    still gets the removals it missed as pushes."""
    server = start(server_factory, users=("alice",), max_removal_records=2)
    alice = login(server, raw_factory, "alice")
    kept = ("keep1@example.net", "keep2@example.net", "keep3@example.net")
    for contact in kept:  # more items than changes: a delta is worth sending
        alice.set(contact)
        alice.push(contact)
    contacts = ("a@example.net", "b@example.net", "c@example.net")
    for contact in contacts:
        alice.set(contact)
        alice.push(contact)
    before = alice.get().find(QUERY).get("ver")
    vers = []
    for contact in contacts:
        alice.remove(contact)
        vers.append(alice.push(contact)[1])
    other = login(server, raw_factory, "alice", resource="cached", roster=False)
    # The removal of a@ is forgotten: a cache from before it gets the roster.
    query = other.get(ver=before).find(QUERY)
    assert query is not None and query.get("ver") == vers[-1]
    assert sorted(i.get("jid") for i in query.findall(ITEM)) == list(kept)
    # A cache from after it gets the two remembered removals.
    assert len(other.get(ver=vers[0])) == 0
    assert other.push("b@example.net")[0].get("subscription") == "remove"
    assert other.push("c@example.net")[0].get("subscription") == "remove"
    other.no_push()


def test_versioning_unknown_version_gets_the_whole_roster(server_factory, raw_factory):
    server = start(server_factory, users=("alice",))
    alice = login(server, raw_factory, "alice")
    alice.set("romeo@example.net")
    _, current = alice.push()
    for ver in ("", "not-a-version", "999999"):
        reply = alice.get(ver=ver)
        query = reply.find(QUERY)
        assert query is not None, ver
        assert query.get("ver") == current
        assert [i.get("jid") for i in query.findall(ITEM)] == ["romeo@example.net"]


def test_versioning_off(server_factory, raw_factory):
    server = start(server_factory, users=("alice",), versioning=False)
    alice = login(server, raw_factory, "alice")
    reply = alice.get(ver="1")
    assert reply.find(QUERY) is not None and reply.find(QUERY).get("ver") is None
    alice.set("romeo@example.net")
    _, ver = alice.push()
    assert ver is None


def test_a_writer_cut_in_the_middle_of_its_sets_leaves_a_clean_stop(server_factory, raw_factory):
    # Regression: a client that writes megabytes of roster sets without
    # reading is cut as a slow reader (the error replies carry the refused
    # queries back). The sets still waiting for the user's line were dropped
    # at shutdown on the main thread, and their Turns reached the per-loop
    # lines from there: parleyd aborted on SIGTERM (PerLoop::here() off the
    # loops) in about 4 runs in 10 under TSan.
    server = start(server_factory, users=("alice",))
    writer = login(server, raw_factory, "alice", resource="w", roster=False)
    groups = "".join(f"<group>{k:02d}{'g' * 998}</group>" for k in range(32))  # ~32 KB an item
    try:
        for start_at in range(0, 400, 20):
            writer.send("".join(f"<iq type='set' id='s{i}'><query xmlns='{NS}'><item jid='c{i:03d}@example.net'>"
                                f"{groups}</item></query></iq>" for i in range(start_at, start_at + 20)))
    except OSError:
        pass  # the server closed the connection while we wrote
    # Cut or not (a fast server may keep up), another session still gets
    # answers; the stop itself is checked by the teardown.
    other = login(server, raw_factory, "alice", resource="other", roster=False)
    ping(other, server)
