"""mod_muc's broadcasts serialized once (issue 15, the host's route_shared,
core/router/router_fanout.cpp): every occupant gets the room's stanza with
its own 'to' and nothing else differing, on either worker loop, with stream
management on (its unacked queue and a resumption replay the occupant's own
copy) and off, through client state indication's hold, past a blocking
recipient's hook; and at a server shutdown each occupant is told the room
goes away (status 332) before its stream closes.

One server for the suite (two worker loops) with the modules that see
outgoing stanzas loaded: mod_stream_mgmt, mod_csi, mod_blocking, mod_carbons
and mod_mam. The shutdown test is the last: it stops that server."""

import re
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from muc_support import (IQ, MESSAGE, NS_OID, NS_USER, PRESENCE, codes, create, groupchat, join, q, service,
                         until)
from parley_harness import ParleyServer, required_binary
from rawxmpp import NS_CLIENT, RawClient
from test_modules import module_dir
from test_mod_stream_mgmt import NS_SM, enable, handled, loop_of, resume, sm_counter, wait_sm_counter
from test_session_seams import end_abruptly, stream_on_loop

NS_CSI = "urn:xmpp:csi:0"
NS_DELAY = "urn:xmpp:delay"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_BLOCKING = "urn:xmpp:blocking"
NS_TEST = "urn:parley:test:stream"  # tests/modules/mod_test_stream.cpp
USERS = ("alice", "bob", "carol", "dave", "erin")
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_muc": {},
           "mod_stream_mgmt": {"ack_request_stanzas": 1000000, "ack_request_seconds": 0},
           "mod_csi": {}, "mod_blocking": {}, "mod_carbons": {}, "mod_mam": {},
           # An outgoing filter a session turns on (<filter on='1'/>) that changes
           # a message carrying its <tag/> (tagged='yes'); <where/> tells the loop.
           "mod_test_stream": {"filter_per_session": True}}


@pytest.fixture(scope="module")
def fan_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("muc_fanout")
    server = ParleyServer(base, required_binary("PARLEYD"), required_binary("PARLEYCTL"), modules=MODULES, workers=2,
                          module_paths=[module_dir(base, "mod_test_stream")])
    for user in USERS:
        server.register(user, PASSWORD)
    server.start()
    yield server
    code, killed = server.stop()  # the shutdown test stopped it already: its result again
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


@pytest.fixture
def clients():
    made = []

    def make(server, user, resource):
        c = RawClient(server.c2s_port)
        c.login(user, PASSWORD, resource=resource, presence=True)
        made.append(c)
        return c
    yield make
    for c in made:
        c.abort()


rooms = iter(range(1, 1000))


def new_room(server):
    return f"fan{next(rooms)}@{service(server)}"


def without_to(stanza):
    copy = ET.fromstring(ET.tostring(stanza))
    copy.attrib.pop("to", None)
    return ET.tostring(copy, "unicode")


def body_is(body):
    return lambda e: e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body")) == body


def occupants(server, clients, room, specs):
    """alice/owner-ROOM creates `room`; then each (user, resource, nick, setup)
    joins (setup runs before the join: SM enabled, say). Returns the clients,
    the owner first."""
    # A resource of its own for each room's owner: the last test's owner left
    # its room when its connection was aborted, and the room's answer (its exit,
    # 110) to a reused alice/owner reached this session, inside its create()
    # (seen under TSan: create() read that presence as its own).
    owner = clients(server, "alice", "owner-" + room.split("@")[0])
    create(owner, room, "owner")
    joined = [owner]
    for user, resource, nick, setup in specs:
        c = clients(server, user, resource)
        if setup:
            setup(c)
        join(c, room, nick)
        joined.append(c)
    # Every join's presence broadcast has reached everybody: the owner's marker
    # comes after them on the room's path.
    marker = f"joined {room}"
    groupchat(owner, room, marker)
    for c in joined:
        until(c, body_is(marker))
    return joined


def test_every_occupant_gets_the_broadcast_with_its_own_to(fan_server, clients):
    room = new_room(fan_server)
    joined = occupants(fan_server, clients, room, [
        ("bob", "sm", "bob", lambda c: enable(c)),   # stream management on
        ("carol", "plain", "carol", None),           # off
        ("dave", "one", "dave1", None),
        ("dave", "two", "dave2", None),              # two sessions of one account
        ("erin", "sm", "erin", lambda c: enable(c)),
        ("alice", "second", "al2", None),            # the sender's own other session
    ])
    owner, bob, erin = joined[0], joined[1], joined[5]
    body = "to each their own & <to>"
    groupchat(owner, room, body)
    got = [until(c, body_is(body))[-1] for c in joined]
    for c, m in zip(joined, got):
        assert m.get("to") == c.jid, ET.tostring(m, "unicode")
        assert m.get("from") == f"{room}/owner" and m.get("type") == "groupchat"
        assert m.find(q(NS_OID, "occupant-id")) is not None
    # The same stanza to everyone but for 'to': one serialization, spliced.
    assert len({without_to(m) for m in got}) == 1, {without_to(m) for m in got}
    # Stream management counted every stanza it wrote (the broadcast too): an
    # ack of more than that ends the stream with the server's count in it.
    erin.send(f"<a xmlns='{NS_SM}' h='{handled(erin) + 1000}'/>")
    error = erin.expect(q("http://etherx.jabber.org/streams", "error"))
    too_high = error.find(q(NS_SM, "handled-count-too-high"))
    assert too_high is not None and int(too_high.get("send-count")) == handled(erin), ET.tostring(error, "unicode")
    # And one that acknowledges exactly what bob got is fine.
    bob.send(f"<a xmlns='{NS_SM}' h='{handled(bob)}'/>")
    bob.sync()


def test_a_filter_that_changes_the_stanza_gets_its_session_its_own(fan_server, clients):
    # The lent element is changed by one session's filter: that session gets
    # the changed stanza (its own serialization); the others, filter on or
    # off, on either loop, get theirs as they should be.
    def filter_on(c):
        c.send(f"<filter xmlns='{NS_TEST}' on='1'/>")
        assert c.expect(q(NS_TEST, "filter")).get("ok") == "1"
    room = new_room(fan_server)
    specs = [("bob", f"f{i}", f"f{i}", filter_on) for i in range(4)] + \
            [("carol", f"p{i}", f"p{i}", None) for i in range(4)]
    joined = occupants(fan_server, clients, room, specs)
    loops = set()
    for c in joined:
        c.send(f"<where xmlns='{NS_TEST}'/>")
        loops.add(c.expect(q(NS_TEST, "here")).get("loop"))
    assert len(loops) == 2  # both loops have occupants: the cross-loop path is taken
    owner = joined[0]
    owner.send(f"<message to='{room}' type='groupchat'><body>tag me</body><tag xmlns='{NS_TEST}'/></message>")
    for c, filtered in zip(joined, [False] + [True] * 4 + [False] * 4):
        m = until(c, body_is("tag me"))[-1]
        assert m.get("to") == c.jid, ET.tostring(m, "unicode")
        assert m.get("tagged") == ("yes" if filtered else None), (c.jid, ET.tostring(m, "unicode"))


def tap(client):
    """Keeps what the client reads from now on in client.raw: the bytes as the
    server wrote them, attribute order included. A broadcast's shared bytes
    have 'to' spliced in right after the element's name; a serialization of a
    session's own (the element with its 'to' set) has it last."""
    client.raw = bytearray()
    feed = client._feed

    def tapped(data):
        client.raw += data
        feed(data)
    client._feed = tapped
    return client


def shared_written(client, room, nick):
    """How many stanzas from room/nick reached `client` as the shared bytes."""
    pattern = f"<message to='{re.escape(client.jid)}'[^>]* from='{re.escape(room)}/{re.escape(nick)}'"
    return len(re.findall(pattern, client.raw.decode()))


def test_stream_management_replays_the_occupants_own_copy(fan_server, clients, raw_factory):
    # bob has stream management (resumable) and CSI (inactive: a message with
    # a body is urgent) on, as a phone has: the room's messages reach him as
    # the shared bytes, and what stream management keeps for a resumption is
    # a reference to them: replayed (after a reload of the module, on the
    # other loop) as they were written, with their first stamp.
    room = new_room(fan_server)
    joined = occupants(fan_server, clients, room, [("carol", "x", "carol", None)])
    owner = joined[0]
    bob = tap(clients(fan_server, "bob", "resumable"))
    sm_id = enable(bob, resume=True).get("id")
    join(bob, room, "bob")
    bob.send(f"<inactive xmlns='{NS_CSI}'/>")
    groupchat(owner, room, "acked")
    groupchat(owner, room, "unacked")
    until(bob, body_is("unacked"))
    assert shared_written(bob, room, "owner") == 2, bob.raw.decode()[-600:]
    h = handled(bob) - 1  # the client acknowledges all but the last: it is replayed
    # The queue crosses a reload of the module (saved as text).
    reloaded = fan_server.ctl("module", "reload", "mod_stream_mgmt")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    before = sm_counter(fan_server, "detached")
    end_abruptly(bob, "reset")
    wait_sm_counter(fan_server, "detached", before + 1)
    groupchat(owner, room, "while detached")  # waits in the detached session's queue
    until(owner, body_is("while detached"))
    fresh = tap(stream_on_loop(fan_server, raw_factory, "bob", 1 - loop_of(sm_id)))
    fresh.jid = bob.jid
    resumed = resume(fresh, sm_id, h)
    assert resumed.tag.endswith("}resumed"), ET.tostring(resumed, "unicode")
    replayed = until(fresh, body_is("while detached"))
    messages = [e for e in replayed if e.tag == MESSAGE]
    assert [m.findtext(q(NS_CLIENT, "body")) for m in messages] == ["unacked", "while detached"]
    for m in messages:
        assert m.get("to") == bob.jid and m.get("from") == f"{room}/owner", ET.tostring(m, "unicode")
    # Sent again: stamped with when it was first written; the other is new.
    assert messages[0].find(q(NS_DELAY, "delay")).get("from") == fan_server.domain
    assert messages[1].find(q(NS_DELAY, "delay")) is None
    # Both the kept copy (re-sent) and the one that waited are the shared bytes.
    assert shared_written(fresh, room, "owner") == 2, fresh.raw.decode()[-800:]


def test_an_inactive_occupant_gets_held_presences_with_its_own_to(fan_server, clients):
    # carol has CSI (inactive) and stream management on: the room's presences
    # and a message without a body are held (of erin's presences only the
    # latest), stamped, and flushed in order before the next message with a
    # body; stream management counts each once, as written.
    room = new_room(fan_server)
    joined = occupants(fan_server, clients, room, [("carol", "csi", "carol", enable)])
    owner, carol = joined
    carol.send(f"<inactive xmlns='{NS_CSI}'/>")
    carol.sync()
    erin = clients(fan_server, "erin", "late")
    join(erin, room, "erin")  # its presence broadcast: held for carol (not urgent)
    erin.send(f"<presence to='{room}/erin'><status>away now</status></presence>")  # supersedes it
    until(erin, lambda e: e.tag == PRESENCE and e.findtext(q(NS_CLIENT, "status")) == "away now")
    owner.send(f"<message to='{room}' type='groupchat'><active xmlns='{NS_CHATSTATES}'/></message>")  # held
    until(owner, lambda e: e.tag == MESSAGE and e.find(q(NS_CHATSTATES, "active")) is not None)
    groupchat(owner, room, "flush")  # a message with a body flushes what waited
    got = until(carol, body_is("flush"))
    presences = [e for e in got if e.tag == PRESENCE and e.get("from") == f"{room}/erin"]
    assert len(presences) == 1, [ET.tostring(e, "unicode") for e in got]
    assert presences[0].findtext(q(NS_CLIENT, "status")) == "away now"
    states = [e for e in got if e.tag == MESSAGE and e.find(q(NS_CHATSTATES, "active")) is not None]
    assert len(states) == 1 and got.index(states[0]) > got.index(presences[0])
    for held in (presences[0], states[0]):
        assert held.get("to") == carol.jid, ET.tostring(held, "unicode")
        delay = held.find(q(NS_DELAY, "delay"))
        assert delay is not None and delay.get("from") == "carol@" + fan_server.domain, ET.tostring(held, "unicode")
    assert got[-1].get("to") == carol.jid and got[-1].find(q(NS_DELAY, "delay")) is None
    # Stream management counted what was written, each once: an ack of one
    # more ends the stream with the server's count.
    carol.send(f"<a xmlns='{NS_SM}' h='{handled(carol) + 1}'/>")
    error = carol.expect(q("http://etherx.jabber.org/streams", "error"))
    too_high = error.find(q(NS_SM, "handled-count-too-high"))
    assert too_high is not None and int(too_high.get("send-count")) == handled(carol), ET.tostring(error, "unicode")


def test_a_recipient_whose_hook_takes_the_stanza_does_not_get_it(fan_server, clients):
    # mod_blocking's PRESENCE_TO_LOCAL hook takes a presence from an address
    # its user blocked (silently: no error for a presence); the others get it.
    # dave blocks room/erin before he joins.
    room = new_room(fan_server)

    def block_erin(c):
        r = c.iq("set", f"<block xmlns='{NS_BLOCKING}'><item jid='{room}/erin'/></block>")
        assert r.get("type") == "result", ET.tostring(r, "unicode")
    joined = occupants(fan_server, clients, room, [("dave", "blocker", "dave", block_erin),
                                                   ("carol", "c", "carol", None)])
    owner, dave, carol = joined
    erin = clients(fan_server, "erin", "blocked")
    join(erin, room, "erin")
    for c in (owner, carol):
        p = until(c, lambda e: e.tag == PRESENCE and e.get("from") == f"{room}/erin")[-1]
        assert p.get("to") == c.jid and p.get("type") is None, ET.tostring(p, "unicode")
    # The owner's marker comes after erin's presence on the room's path.
    groupchat(owner, room, "marker after erin")
    before = dave.expect_nothing_until(body_is("marker after erin"))
    assert not [e for e in before if e.get("from") == f"{room}/erin"], [ET.tostring(e, "unicode") for e in before]


def test_blocking_an_occupant_keeps_the_blocker_in_the_room(fan_server, clients):
    # XEP-0191 3.3 sends the blocker's unavailable presence only to contacts
    # allowed to see his presence (a 'from' or 'both' subscription). An occupant
    # of a room he is in is not one: the block must not take him out of the room,
    # as an unavailable presence to any occupant JID of it would (XEP-0045 7.14;
    # until session 15 every blocked user address got one).
    dave = clients(fan_server, "dave", "stays")
    room = new_room(fan_server)
    owner = clients(fan_server, "alice", "owner-" + room.split("@")[0])
    create(owner, room, "owner")
    join(dave, room, "dave")
    sid = dave.new_id()
    dave.send(f"<iq type='set' id='{sid}'><block xmlns='{NS_BLOCKING}'><item jid='{room}/owner'/></block></iq>")
    before, answer = dave.expect_nothing_until_reply(sid)
    assert answer.get("type") == "result", ET.tostring(answer, "unicode")
    assert not [e for e in before if e.tag == PRESENCE and e.get("type") == "unavailable"], \
        [ET.tostring(e, "unicode") for e in before]
    # Still an occupant: the room reflects his message (to a non-occupant it
    # would answer with an error).
    groupchat(dave, room, "still here")
    got = until(dave, lambda e: e.tag == MESSAGE and e.get("from") == f"{room}/dave")
    assert got[-1].get("type") == "groupchat", ET.tostring(got[-1], "unicode")
    assert not [e for e in got if e.tag == PRESENCE and e.get("type") == "unavailable"], \
        [ET.tostring(e, "unicode") for e in got]


def test_occupants_learn_of_a_shutdown_before_their_streams_close(fan_server, clients):
    # The last test of the suite: it stops the suite's server.
    room = new_room(fan_server)
    joined = occupants(fan_server, clients, room, [("bob", "b", "bob", None), ("carol", "c", "carol", None),
                                                   ("dave", "d", "dave", None)])
    code, killed = fan_server.stop()
    assert not killed and code == 0
    for c, nick in zip(joined, ("owner", "bob", "carol", "dave")):
        assert c.wait_closed(10)
        gone = [e for e in c.received if e.tag == PRESENCE and e.get("from") == f"{room}/{nick}"
                and e.get("type") == "unavailable"]
        assert gone and {"110", "332"} <= codes(gone[-1]), [ET.tostring(e, "unicode") for e in c.received[-5:]]
        assert gone[-1].get("to") == c.jid
        assert c.stream_error_received() == "system-shutdown"
