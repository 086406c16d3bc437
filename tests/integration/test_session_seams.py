"""The ABI 1.2 session seams against a running parleyd, through the test module
mod_test_stream (tests/modules/), a miniature stream management in the
namespace urn:parley:test:stream: nonzas on a bound or authenticated stream
(NONZA_IN, session_write), the outgoing filter (STANZA_OUT: count, drop, hold
and release with session_send_after, rewrite), MESSAGE_DELIVERED after the
RFC 6121 8.5 choice, a connection lost without a closed stream turned into a
detached session (SESSION_CLOSING/DETACHED: a reset, an EOF, a slow-reader
cut), resumed on a new connection accepted on the other worker loop or its own,
over STARTTLS or direct TLS (session_attach, SESSION_REATTACHED), what waits
for a detached session (in order, never bounced or stored meanwhile), its ends
(limits.max_detached_seconds and limits.max_detached_stanzas, session_close
from its loop, a new binding of its resource, the account's removal, a server
stop: what waited is routed as for a resource that is gone), closes that never
detach, and session slots carried across a hot reload
(save_session_data/restore_session_data).

The module's nonzas: <enable/> -> <enabled id= loop=/>, <r/> -> <a h=/> (the
stanzas its filter saw for the session), <delivered/> -> <delivered n=/>,
<release/> -> the held stanzas then <released n=/>, <where/> -> <here id=
loop= state=/>, <resume previd=/> -> <resumed previd= h=/> or <failed/>,
<close condition=/>. An iq get <query/> to the server answers its counters;
an iq set <query><close id=/></query> closes a session from its own loop."""

import socket
import struct
import time

import pytest

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_SASL, StreamClosed, StreamErrorReceived, q, stanza_error_condition
from test_mod_offline import collect_messages, stored_rows
from test_mod_presence import expect_presence, login as presence_login, subscribe_both
from test_modules import module_dir

NS = "urn:parley:test:stream"
PRESENCE = q(NS_CLIENT, "presence")
MESSAGE = q(NS_CLIENT, "message")
BOUND, DETACHED, UNBOUND = 1, 2, 3


# -- helpers ---------------------------------------------------------------------

def stream_server(server_factory, tmp_path, presence=False, offline=False, limits=None, users=("alice", "bob"),
                  stream_options=None):
    """A server with mod_test_stream (and mod_roster/mod_presence, mod_offline
    when asked), two worker loops, and the users registered."""
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_test_stream": dict(stream_options or {})}
    if presence:
        modules.update({"mod_roster": {}, "mod_presence": {}})
    if offline:
        modules["mod_offline"] = {}
    server = server_factory(module_paths=[module_dir(tmp_path, "mod_test_stream")], modules=modules,
                            workers=2, limits=limits)
    for user in users:
        server.register(user, PASSWORD)
    return server


def bound(server, raw_factory, user, resource, presence=False):
    client = raw_factory(server.c2s_port)
    client.login(user, PASSWORD, resource=resource, presence=presence)
    return client


def authenticated(server, raw_factory, user, direct_tls=False):
    """A stream that authenticated and restarted, not bound: where <resume/> goes."""
    if direct_tls:
        client = raw_factory(server.tls_port, direct_tls=True)
        client.start()
    else:
        client = raw_factory(server.c2s_port)
        client.start()
        client.starttls()
    outcome = client.auth_plain(user, PASSWORD)
    assert outcome.tag == q(NS_SASL, "success")
    client.start()
    return client


def nonza(client, xml, answer):
    """Sends a nonza of the module and returns its answer (an element named `answer`)."""
    client.send(xml)
    return client.expect(q(NS, answer))


def enable(client):
    """Makes the session resumable: (session id, its loop)."""
    enabled = nonza(client, f"<enable xmlns='{NS}'/>", "enabled")
    session_id = int(enabled.get("id"))
    assert int(enabled.get("loop")) == session_id >> 48
    return session_id, session_id >> 48


def ack(client):
    """<r/> -> h: the stanzas the module's outgoing filter saw for the session."""
    return int(nonza(client, f"<r xmlns='{NS}'/>", "a").get("h"))


def delivered(client):
    return int(nonza(client, f"<delivered xmlns='{NS}'/>", "delivered").get("n"))


def where(client):
    """(session id, loop, state) of the stream, as the module sees it."""
    here = nonza(client, f"<where xmlns='{NS}'/>", "here")
    return int(here.get("id")), int(here.get("loop")), int(here.get("state"))


def counters(client):
    """The module-wide counters: closing (asked), kept, detached, reattached."""
    reply = client.iq("get", f"<query xmlns='{NS}'/>", to=client.domain)
    assert reply.get("type") == "result", reply
    query = reply.find(q(NS, "query"))
    return {name: int(query.get(name)) for name in ("closing", "kept", "detached", "reattached")}


def wait_counter(client, name, value, timeout=10):
    """Polls the module's counters (a round trip each) until `name` reaches `value`."""
    deadline = time.monotonic() + timeout
    while True:
        got = counters(client)
        if got[name] >= value:
            assert got[name] == value, got
            return got
        assert time.monotonic() < deadline, f"{name} stayed at {got[name]}, expected {value}: {got}"
        time.sleep(0.05)


def end_abruptly(client, how):
    """Ends the connection without </stream:stream>: a TCP reset, or a plain
    close of the socket (EOF, no TLS close_notify)."""
    if how == "reset":
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.abort()

def alice_detached(server_factory, tmp_path, raw_factory, **options):
    """The common start: alice (available) and bob bound, alice's session made
    resumable, then her connection reset: detached. Returns the server, bob,
    alice's full JID, her session id and its loop."""
    server = stream_server(server_factory, tmp_path, **options)
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid = alice.jid
    session_id, loop = enable(alice)
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)
    return server, bob, alice_jid, session_id, loop



def stream_on_loop(server, raw_factory, user, loop, tries=64, direct_tls=False):
    """An authenticated unbound stream of `user` accepted on worker loop
    `loop`: new connections until the kernel's SO_REUSEPORT spread puts one
    there (each lands on either loop)."""
    for _ in range(tries):
        client = authenticated(server, raw_factory, user, direct_tls)
        stream_id, stream_loop, state = where(client)
        assert state == UNBOUND and stream_loop == stream_id >> 48
        if stream_loop == loop:
            return client
        client.abort()
    raise AssertionError(f"no connection landed on loop {loop} in {tries} tries")


def resume(stream, session_id):
    """<resume/>: the first thing back must be <resumed/>; returns its h."""
    stream.send(f"<resume xmlns='{NS}' previd='{session_id}'/>")
    resumed = stream.next_element()
    assert resumed.tag == q(NS, "resumed"), resumed
    assert resumed.get("previd") == str(session_id)
    return int(resumed.get("h"))


def close_remotely(client, session_id):
    """Asks the module to session_close `session_id` from its own loop:
    (closed, the elements that reached `client` before the iq's answer)."""
    stanza_id = client.new_id()
    client.send(f"<iq type='set' id='{stanza_id}' to='{client.domain}'>"
                f"<query xmlns='{NS}'><close id='{session_id}'/></query></iq>")
    answer = []

    def is_answer(e):
        if e.tag == q(NS_CLIENT, "iq") and e.get("id") == stanza_id:
            answer.append(e)
            return True
        return False
    before = client.expect_nothing_until(is_answer)
    assert answer[0].get("type") == "result", answer[0]
    return answer[0].find(q(NS, "query")).get("closed") == "1", before


def bodies(elements):
    return [e.findtext(q(NS_CLIENT, "body")) for e in elements if e.tag == MESSAGE]


def tagged_message(to, body, child):
    return (f"<message to='{to}' type='chat'><body>{body}</body>"
            f"<{child} xmlns='{NS}'/></message>")


def unavailable_from(elements, jid):
    return [e for e in elements if e.tag == PRESENCE and e.get("from") == jid and e.get("type") == "unavailable"]


# -- nonzas ----------------------------------------------------------------------

def test_nonzas_are_answered_and_the_unknown_ones_still_close_the_stream(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    bob = bound(server, raw_factory, "bob", "b")
    session_id, loop = enable(alice)
    assert loop in (0, 1)
    assert where(alice) == (session_id, loop, BOUND)
    before = ack(alice)
    bob.message(alice.jid, "one")
    bob.message(alice.jid, "two")
    assert bodies([alice.expect_message("one"), alice.expect_message("two")]) == ["one", "two"]
    # session_write is not filtered: the <a/> answers are not counted.
    assert ack(alice) == before + 2
    assert ack(alice) == before + 2

    # A nonza of the module's namespace it does not take, and one of another
    # namespace: no module takes them, the core closes as without the hook.
    for i, xml in enumerate((f"<bogus xmlns='{NS}'/>", "<active xmlns='urn:xmpp:csi:0'/>")):
        other = bound(server, raw_factory, "bob", f"x{i}")
        other.send(xml)
        assert other.expect_stream_error() == "unsupported-stanza-type"
        assert other.wait_closed()
    # A nonza before authentication is not one: still the core's answer.
    raw = raw_factory(server.c2s_port)
    raw.start()
    raw.starttls()
    raw.send(f"<r xmlns='{NS}'/>")
    assert raw.expect_stream_error() in ("unsupported-stanza-type", "not-authorized")


# -- the outgoing filter ---------------------------------------------------------

def test_the_outgoing_filter_counts_drops_holds_releases_and_rewrites(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    bob = bound(server, raw_factory, "bob", "b")
    before = ack(alice)
    bob.send(tagged_message(alice.jid, "dropped", "drop"))
    bob.send(tagged_message(alice.jid, "held 1", "hold"))
    bob.send(tagged_message(alice.jid, "tagged", "tag"))
    bob.send(tagged_message(alice.jid, "held 2", "hold"))
    bob.message(alice.jid, "plain")
    got = alice.expect_nothing_until(lambda e: e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body")) == "plain")
    # Only the rewritten one came before the last: dropped and held ones did not.
    assert bodies(got) == ["tagged"]
    assert got[0].get("tagged") == "yes"
    assert ack(alice) == before + 5  # the filter saw all five

    # <release/>: the held ones, in order, through the filters after the
    # module's own (so it does not count them again), then the answer.
    alice.send(f"<release xmlns='{NS}'/>")
    released = alice.expect_nothing_until(lambda e: e.tag == q(NS, "released"))
    assert bodies(released) == ["held 1", "held 2"]
    assert [e.get("tagged") for e in released] == [None, None]
    assert ack(alice) == before + 5
    # The dropped one never comes; a round trip (its answer counted) proves it.
    assert alice.nothing_before_sync() == []
    assert ack(alice) == before + 6
    assert nonza(alice, f"<release xmlns='{NS}'/>", "released").get("n") == "0"


def test_a_per_session_filter_runs_only_for_the_sessions_that_turned_it_on(server_factory, tmp_path, raw_factory):
    # hook_mode(STANZA_OUT, PER_SESSION) from start(): the module's filter is
    # skipped for every session until it turns it on for one
    # (session_filter_out), and skipped again once it turns it off.
    server = stream_server(server_factory, tmp_path, stream_options={"filter_per_session": True})
    alice = bound(server, raw_factory, "alice", "a")
    carol = bound(server, raw_factory, "bob", "c")
    bob = bound(server, raw_factory, "bob", "b")
    bob.send(tagged_message(alice.jid, "untagged", "tag"))
    got = alice.expect(MESSAGE)
    assert got.get("tagged") is None  # the filter did not run
    assert ack(alice) == 0

    assert nonza(alice, f"<filter xmlns='{NS}' on='1'/>", "filter").get("ok") == "1"
    bob.send(tagged_message(alice.jid, "tagged", "tag"))
    bob.send(tagged_message(carol.jid, "for carol", "tag"))
    got = alice.expect(MESSAGE)
    assert got.get("tagged") == "yes"
    assert ack(alice) == 1
    # Another session, which did not turn it on: still without the filter.
    got = carol.expect(MESSAGE)
    assert got.get("tagged") is None

    assert nonza(alice, f"<filter xmlns='{NS}' on='0'/>", "filter").get("ok") == "1"
    bob.send(tagged_message(alice.jid, "off again", "tag"))
    got = alice.expect(MESSAGE)
    assert got.get("tagged") is None
    assert ack(alice) == 1


def test_a_hook_left_out_by_hook_mode_off_never_runs(server_factory, tmp_path, raw_factory):
    # hook_mode(NONZA_IN, OFF) from start(): the module's nonza hook is not in
    # the server's tables, so its nonzas are nobody's: the core closes the
    # stream as without the hook.
    server = stream_server(server_factory, tmp_path, stream_options={"nonza_hook_off": True})
    alice = bound(server, raw_factory, "alice", "a")
    alice.send(f"<r xmlns='{NS}'/>")
    assert alice.expect_stream_error() == "unsupported-stanza-type"
    assert alice.wait_closed()


def test_the_filter_sees_the_cores_own_stanzas_too(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    before = ack(alice)
    # An iq result from the core (ping) and an error the core bounces back.
    alice.sync()
    reply = alice.iq("get", "<query xmlns='urn:example:nothing'/>", to=alice.domain)
    assert stanza_error_condition(reply)[1] == "service-unavailable"
    assert ack(alice) == before + 2


# -- delivered -------------------------------------------------------------------

def test_delivered_counts_only_the_resource_the_router_picked(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    high = bound(server, raw_factory, "alice", "high")
    high.send("<presence><priority>5</priority></presence>")
    high.sync()
    low = bound(server, raw_factory, "alice", "low")
    low.send("<presence><priority>1</priority></presence>")
    low.sync()
    bob = bound(server, raw_factory, "bob", "b")
    # RFC 6121 8.5.2.1.1: a chat message to the bare JID goes to the most
    # available resource only.
    bob.message("alice@localhost", "to the bare JID")
    assert high.expect_message("to the bare JID").get("to") == "alice@localhost"
    # Whatever bob's message brought to `low` came before this marker (to its full JID).
    assert bodies(low.nothing_before_marker(bob)) == []
    assert delivered(high) == 1
    assert delivered(low) == 1  # the marker only
    # Addressed to a resource: that one, whatever its priority.
    bob.message(low.jid, "to low")
    low.expect_message("to low")
    assert delivered(low) == 2
    assert delivered(high) == 1
    # Not a message: presence and iqs are not counted.
    bob.send(f"<presence to='{low.jid}'/>")
    assert low.expect(PRESENCE).get("from") == bob.jid
    assert delivered(low) == 2
    assert delivered(bob) == 0


# -- detach and resume -----------------------------------------------------------

@pytest.mark.parametrize("how", ["reset", "eof"])
def test_an_abrupt_end_detaches_and_a_resume_on_the_other_loop_gets_what_waited(
        server_factory, tmp_path, raw_factory, how):
    server = stream_server(server_factory, tmp_path, presence=True, offline=True)
    subscribe_both(server, raw_factory, "alice", "bob")
    bob = presence_login(server, raw_factory, "bob", "home")
    alice = presence_login(server, raw_factory, "alice", "phone")
    expect_presence(bob, alice.jid)
    # bob's presence comes back to alice (RFC 6121 4.3): once it is there,
    # nothing else is on its way to her, and h below is final.
    expect_presence(alice, bob.jid)
    alice_jid = alice.jid
    session_id, loop = enable(alice)
    h = ack(alice)

    end_abruptly(alice, how)
    got = wait_counter(bob, "detached", 1)
    assert got["kept"] == 1 and got["closing"] == 1 and got["reattached"] == 0
    # Messages to the detached session are neither bounced nor stored: they
    # wait. It stays available: one to the bare JID (8.5.2.1.1) waits too.
    away = [f"while away {i}" for i in range(3)]
    addressed = [alice_jid, "alice@localhost", alice_jid]
    for body, to in zip(away, addressed):
        bob.message(to, body)
    assert bob.nothing_before_sync() == []

    # A new connection accepted on the other loop resumes the session there.
    other = 1 - loop
    stream = stream_on_loop(server, raw_factory, "alice", other)
    stream.send(f"<resume xmlns='{NS}' previd='{session_id}'/>")
    resumed = stream.next_element()
    assert resumed.tag == q(NS, "resumed"), resumed
    assert resumed.get("previd") == str(session_id)
    assert int(resumed.get("h")) == h  # nothing reached the filter while detached
    # What waited comes after <resumed/>, in order, through the filter.
    waited = collect_messages(stream, len(away))
    assert bodies(waited) == away
    assert [(m.get("from"), m.get("to")) for m in waited] == [(bob.jid, to) for to in addressed]
    # The same session: same id (so the same loop), bound, its counters on.
    assert where(stream) == (session_id, loop, BOUND)
    assert ack(stream) == h + len(away)
    got = counters(bob)
    assert (got["detached"], got["reattached"], got["kept"]) == (1, 1, 1)

    # It speaks as alice/phone again, and bob never saw it go unavailable.
    stream.jid = alice_jid
    seen = bob.nothing_before_marker(stream, to=bob.jid)
    assert unavailable_from(seen, alice_jid) == []
    assert stream.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain).get("to") == alice_jid
    # Presence stayed: a probe-free check, bob's presence still reaches the resumed session.
    bob.send("<presence><status>back</status></presence>")
    assert expect_presence(stream, bob.jid).findtext(q(NS_CLIENT, "status")) == "back"
    assert stored_rows(server) == []  # the waiting message was never offline

    # A clean close of the resumed session is final: contacts get unavailable.
    stream.close()
    expect_presence(bob, alice_jid, "unavailable")
    assert counters(bob)["detached"] == 1


def test_a_session_cut_as_a_slow_reader_detaches_and_resumes(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path, limits={"max_write_backlog": 256 << 10})
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid = alice.jid
    session_id, loop = enable(alice)
    # alice stops reading; bob writes until her backlog passes the limit and
    # the core cuts the connection: a lost connection, which the module keeps.
    text = "z" * 8000
    for batch in range(100):
        for i in range(20):
            bob.message(alice_jid, f"{batch:03d}.{i:02d} {text}")
        if counters(bob)["detached"] == 1:
            break
    else:
        raise AssertionError("alice was never cut as a slow reader")
    assert counters(bob)["kept"] == 1
    bob.message(alice_jid, "after the cut")
    assert bob.nothing_before_sync() == []
    # What the old connection had not written is settled as written (the
    # module owns it); what came after waits and follows <resumed/>.
    stream = stream_on_loop(server, raw_factory, "alice", 1 - loop)
    resume(stream, session_id)
    got = stream.expect_nothing_until(
        lambda e: e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body")) == "after the cut", timeout=30)
    assert all(e.tag == MESSAGE for e in got)
    assert where(stream) == (session_id, loop, BOUND)


def test_resume_fails_for_an_unknown_session_and_for_another_account(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    bob = bound(server, raw_factory, "bob", "b")
    session_id, _ = enable(alice)
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)

    # bob's authenticated stream cannot take alice's session, nor a made-up one.
    thief = authenticated(server, raw_factory, "bob")
    for previd in (session_id, session_id + 1000, 12345):
        failed = nonza(thief, f"<resume xmlns='{NS}' previd='{previd}'/>", "failed")
        assert failed.get("previd") == str(previd)
    # The stream is unchanged by the failures: it can still bind.
    assert thief.bind("after") == "bob@localhost/after"
    # A bound session cannot resume anything: the host refuses at once.
    refused = nonza(thief, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed")
    assert refused.get("refused") == "yes"

    # alice's detached session was not hurt: she resumes it.
    stream = authenticated(server, raw_factory, "alice")
    resumed = nonza(stream, f"<resume xmlns='{NS}' previd='{session_id}'/>", "resumed")
    assert resumed.get("previd") == str(session_id)
    assert where(stream)[:2] == (session_id, session_id >> 48)
    # A session that is attached again cannot be resumed a second time.
    again = authenticated(server, raw_factory, "alice")
    assert nonza(again, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed") is not None
    assert counters(bob)["reattached"] == 1


def test_a_detached_session_times_out_its_messages_go_offline_and_contacts_see_it_leave(
        server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path, presence=True, offline=True,
                           limits={"max_detached_seconds": 2})
    subscribe_both(server, raw_factory, "alice", "bob")
    bob = presence_login(server, raw_factory, "bob", "home")
    alice = presence_login(server, raw_factory, "alice", "phone")
    expect_presence(bob, alice.jid)
    alice_jid = alice.jid
    session_id, _ = enable(alice)
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)
    bob.message(alice_jid, "waited, then offline")
    assert bob.nothing_before_sync() == []  # not bounced while it waits

    # After max_detached_seconds the session is closed: unavailable to contacts,
    # and what waited is routed as for a resource that is gone (offline storage).
    expect_presence(bob, alice_jid, "unavailable", timeout=15)
    late = authenticated(server, raw_factory, "alice")
    assert nonza(late, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed") is not None
    assert late.bind("laptop")
    late.send("<presence/>")
    assert bodies(collect_messages(late, 1)) == ["waited, then offline"]
    got = counters(bob)
    assert (got["detached"], got["reattached"]) == (1, 0)


def test_the_detached_queue_overflows_and_closes_the_session(server_factory, tmp_path, raw_factory):
    server, bob, alice_jid, session_id, _ = alice_detached(server_factory, tmp_path, raw_factory, offline=True, limits={"max_detached_stanzas": 3})
    sent = [f"message {i}" for i in range(6)]
    for body in sent:
        bob.message(alice_jid, body)
    assert bob.nothing_before_sync() == []

    # Over the queue the session is closed; everything went to offline
    # storage, once each, whatever waited and whatever came after.
    fresh = bound(server, raw_factory, "alice", "laptop")
    fresh.send("<presence/>")
    assert sorted(bodies(collect_messages(fresh, len(sent)))) == sorted(sent)
    assert fresh.nothing_before_sync() == []
    resume = authenticated(server, raw_factory, "alice")
    assert nonza(resume, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed") is not None


def test_the_detached_queue_over_its_bytes_closes_the_session(server_factory, tmp_path, raw_factory):
    # limits.max_detached_bytes: what waits for a detached session counts
    # against a budget of bytes as well as of stanzas; past it the session is
    # closed as past max_detached_stanzas, and nothing is lost.
    server, bob, alice_jid, session_id, _ = alice_detached(server_factory, tmp_path, raw_factory, offline=True,
                                                           limits={"max_detached_bytes": 65536})
    sent = [f"message {i} " + "x" * 10000 for i in range(8)]  # the 7th goes over 64 KiB
    for body in sent:
        bob.message(alice_jid, body)
    assert bob.nothing_before_sync() == []

    fresh = bound(server, raw_factory, "alice", "laptop")
    fresh.send("<presence/>")
    assert sorted(bodies(collect_messages(fresh, len(sent)))) == sorted(sent)
    assert fresh.nothing_before_sync() == []
    # The session is gone: its id resumes nothing.
    resume = authenticated(server, raw_factory, "alice")
    assert nonza(resume, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed") is not None


def test_a_session_detaches_and_resumes_again_over_either_kind_of_tls(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice = raw_factory(server.tls_port, direct_tls=True)
    alice.login("alice", PASSWORD, resource="phone", presence=True)
    alice_jid = alice.jid
    session_id, loop = enable(alice)
    h = ack(alice)

    # Direct TLS lost, resumed over STARTTLS on the session's own loop.
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)
    bob.message(alice_jid, "first")
    assert bob.nothing_before_sync() == []
    first = stream_on_loop(server, raw_factory, "alice", loop)
    assert resume(first, session_id) == h
    assert bodies(collect_messages(first, 1)) == ["first"]
    h = ack(first)

    # The migrated connection is lost in turn; resumed over direct TLS on the other loop.
    end_abruptly(first, "eof")
    wait_counter(bob, "detached", 2)
    bob.message(alice_jid, "second")
    assert bob.nothing_before_sync() == []
    second = stream_on_loop(server, raw_factory, "alice", 1 - loop, direct_tls=True)
    assert resume(second, session_id) == h
    assert bodies(collect_messages(second, 1)) == ["second"]
    assert where(second) == (session_id, loop, BOUND)
    got = counters(bob)
    assert (got["detached"], got["reattached"], got["kept"]) == (2, 2, 2)
    # Both ways still work.
    second.jid = alice_jid
    assert bodies(bob.nothing_before_marker(second, to=bob.jid)) == []
    bob.message(alice_jid, "third")
    assert bodies(collect_messages(second, 1)) == ["third"]


def test_a_stanza_the_filter_held_is_released_after_a_resume_on_the_other_loop(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    session_id, loop = enable(alice)
    bob.send(tagged_message(alice.jid, "held across", "hold"))
    assert bodies(alice.nothing_before_marker(bob)) == []
    h = ack(alice)
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)
    # The module's slot (its held stanza) stays with the session; after the
    # resume, session_send_after writes it on the migrated connection.
    stream = stream_on_loop(server, raw_factory, "alice", 1 - loop)
    assert resume(stream, session_id) == h
    stream.send(f"<release xmlns='{NS}'/>")
    released = stream.expect_nothing_until(lambda e: e.tag == q(NS, "released"))
    assert bodies(released) == ["held across"]
    assert stream.nothing_before_sync() == []


@pytest.mark.parametrize("where_to", ["same loop", "other loop"])
def test_a_new_login_with_the_same_resource_replaces_a_detached_session(server_factory, tmp_path, raw_factory,
                                                                       where_to):
    server, bob, alice_jid, session_id, loop = alice_detached(server_factory, tmp_path, raw_factory, offline=True)
    bob.message(alice_jid, "waiting for phone")
    assert bob.nothing_before_sync() == []
    # RFC 6120 7.7.2.2: the new binding of the same resource wins; the
    # detached session ends, and what waited for it is not lost: it reaches
    # the new alice/phone (at once, or through offline storage at presence).
    again = stream_on_loop(server, raw_factory, "alice", loop if where_to == "same loop" else 1 - loop)
    assert again.bind("phone") == alice_jid
    again.jid = alice_jid
    again.send("<presence/>")
    assert bodies(collect_messages(again, 1)) == ["waiting for phone"]
    assert bodies(again.nothing_before_sync()) == []
    late = authenticated(server, raw_factory, "alice")
    assert nonza(late, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed") is not None
    got = counters(bob)
    assert (got["detached"], got["reattached"]) == (1, 0)


def test_session_close_ends_a_detached_session_at_once(server_factory, tmp_path, raw_factory):
    server, bob, alice_jid, session_id, _ = alice_detached(server_factory, tmp_path, raw_factory)  # no offline storage: what waited is bounced
    stanza_id = bob.message(alice_jid, "waiting")
    assert bob.nothing_before_sync() == []

    # From the session's own loop (post_to_session): closed at once, and what
    # waited is routed as for a resource that is gone (RFC 6121 8.5.3.2.1,
    # no other resource, no offline storage: service-unavailable). The error
    # may come after the answer: the header promises no order between them.
    closed, before = close_remotely(bob, session_id)
    assert closed
    assert [e for e in before if e.tag == MESSAGE and e.get("type") != "error"] == []
    error = next((e for e in before if e.tag == MESSAGE and e.get("id") == stanza_id), None)
    if error is None:
        error = bob.expect(MESSAGE, match=lambda e: e.get("id") == stanza_id)
    assert error.get("type") == "error"
    assert stanza_error_condition(error)[1] == "service-unavailable"
    assert close_remotely(bob, session_id)[0] is False  # gone: post_to_session refuses
    late = authenticated(server, raw_factory, "alice")
    assert nonza(late, f"<resume xmlns='{NS}' previd='{session_id}'/>", "failed") is not None
    assert bounced_once_gone(bob, alice_jid) == "service-unavailable"
    got = counters(bob)
    assert (got["detached"], got["reattached"]) == (1, 0)


def test_removing_the_account_ends_its_detached_session(server_factory, tmp_path, raw_factory):
    server, bob, alice_jid, session_id, _ = alice_detached(server_factory, tmp_path, raw_factory)
    stanza_id = bob.message(alice_jid, "to a removed account")
    assert bob.nothing_before_sync() == []
    removed = server.ctl("unregister", "alice", server.domain)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    # The account loses its sessions, the detached one too: what waited is
    # routed as for a resource that is gone, and the account is gone
    # (RFC 6121 8.5.1: service-unavailable).
    error = bob.expect(MESSAGE, match=lambda e: e.get("id") == stanza_id)
    assert error.get("type") == "error"
    assert stanza_error_condition(error)[1] == "service-unavailable"
    assert close_remotely(bob, session_id)[0] is False


@pytest.mark.parametrize("others", ["a client connected", "no client connected"])
def test_the_server_stops_cleanly_with_a_detached_session_and_keeps_what_waited(
        server_factory, tmp_path, raw_factory, others):
    server = stream_server(server_factory, tmp_path, offline=True)
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid = alice.jid
    enable(alice)
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)
    bob.message(alice_jid, "waiting at shutdown")
    assert bob.nothing_before_sync() == []
    # Whether a connection is still open when the stop begins changes how
    # long the core waits before it stops its loops: both must keep it.
    if others == "no client connected":
        bob.close()
    code, killed = server.stop()
    assert not killed and code == 0
    # What waited for the detached session was routed as for a resource
    # that is gone: offline storage, delivered at the next login.
    server.start()
    again = bound(server, raw_factory, "alice", "laptop")
    again.send("<presence/>")
    assert bodies(collect_messages(again, 1)) == ["waiting at shutdown"]


# -- closes that never detach ----------------------------------------------------

def bounced_once_gone(bob, jid, timeout=10):
    """Sends messages to `jid` until one comes back as an error, and returns
    its condition: the session is gone and nothing waits for it (a detached
    session never bounces). Several tries only because the close may still be
    on its way on the other loop when the first one is routed."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        bob.message(jid, f"probe {n}", type_="normal")
        errors = [e for e in bob.nothing_before_sync() if e.tag == MESSAGE and e.get("type") == "error"]
        if errors:
            return stanza_error_condition(errors[0])[1]
        assert time.monotonic() < deadline, f"{jid} never bounced: detached?"
        time.sleep(0.05)


def test_a_clean_close_never_detaches(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid = alice.jid
    enable(alice)
    alice.close()  # </stream:stream>, the server's answer, then the socket
    assert bounced_once_gone(bob, alice_jid) == "service-unavailable"
    got = counters(bob)
    assert (got["closing"], got["kept"], got["detached"]) == (0, 0, 0)


@pytest.mark.parametrize("condition", ["", "policy-violation"])
def test_session_close_ends_a_resumable_session_without_detaching(server_factory, tmp_path, raw_factory, condition):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid = alice.jid
    enable(alice)
    alice.send(f"<close xmlns='{NS}' condition='{condition}'/>" if condition else f"<close xmlns='{NS}'/>")
    if condition:
        assert alice.expect_stream_error() == condition
    else:
        with pytest.raises(StreamClosed):
            alice.next_element()
        assert alice.stream_error_received() is None
    assert alice.wait_closed() and alice.closed_by_peer
    assert bounced_once_gone(bob, alice_jid) == "service-unavailable"
    got = counters(bob)
    assert (got["closing"], got["detached"]) == (0, 0)


def test_an_abrupt_end_of_a_session_that_is_not_resumable_closes_it(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "phone", presence=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid = alice.jid
    end_abruptly(alice, "reset")
    # Asked, not kept: the core closes it as before 1.2.
    wait_counter(bob, "closing", 1)
    assert bounced_once_gone(bob, alice_jid) == "service-unavailable"
    got = counters(bob)
    assert (got["kept"], got["detached"]) == (0, 0)


# -- slots across a reload -------------------------------------------------------

def test_session_slots_survive_a_reload(server_factory, tmp_path, raw_factory):
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    bob = bound(server, raw_factory, "bob", "b")
    session_id, _ = enable(alice)
    bob.message(alice.jid, "before")
    alice.expect_message("before")
    h = ack(alice)
    n = delivered(alice)
    assert n == 1

    reloaded = server.ctl("module", "reload", "mod_test_stream")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert "reloaded" in reloaded.stdout

    # The new code has the old code's slot: the counts go on.
    assert ack(alice) == h
    bob.message(alice.jid, "after")
    alice.expect_message("after")
    assert ack(alice) == h + 1
    assert delivered(alice) == 2
    # And the resumable flag: an abrupt end still detaches.
    end_abruptly(alice, "reset")
    wait_counter(bob, "detached", 1)
    stream = authenticated(server, raw_factory, "alice")
    resumed = nonza(stream, f"<resume xmlns='{NS}' previd='{session_id}'/>", "resumed")
    assert int(resumed.get("h")) == h + 1


def test_session_detach_refuses_a_condition_that_is_not_a_condition_name(server_factory, tmp_path, raw_factory):
    # The condition becomes an element name in the stream error: anything but
    # lower-case letters and '-' is refused (nothing written, the session stays).
    server = stream_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    for bad in ("conflict/&gt;&lt;x", "Conflict", "bad condition"):
        assert nonza(alice, f"<detach-refused xmlns='{NS}' condition='{bad}'/>", "not-detached") is not None
    alice.sync()  # still bound and answering
    alice.send(f"<detach-refused xmlns='{NS}' condition='conflict'/>")
    with pytest.raises(StreamErrorReceived) as error:
        alice.sync()
    assert error.value.condition == "conflict"
