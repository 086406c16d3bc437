"""mod_stream_mgmt (XEP-0198 Stream Management, urn:xmpp:sm:3) against a
running parleyd with two worker loops, through a raw client for the exact XML:
the <sm/> feature, <enable/> with and without resumption and its errors, <r/>
and <a/> both ways (the server's requests after N stanzas or T seconds, an ack
of more than was sent), resumption after a reset on the other loop with
stanzas in flight, a bad, expired or someone else's SM-ID, a resume racing the
old connection, the resume timeout (unacknowledged messages to offline storage
with their first delay stamp; the unavailable presence then), max_ack_queue,
a flood of <r/>, a second login replacing a detached session; and slixmpp's
xep_0198 plugin end to end.

mod_test_stream is loaded too, only for its <where/> nonza (which loop a
stream landed on: tests/integration/test_session_seams.py)."""

import asyncio
import calendar
import math
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_SASL, q
from test_mod_offline import collect_messages, stored_rows, wait_counter as wait_offline_counter
from test_mod_presence import expect_presence, login as presence_login, subscribe_both
from test_modules import module_dir
from slix_driver import SlixRunner
from test_session_seams import authenticated, bodies, bound, end_abruptly, stream_on_loop

NS_SM = "urn:xmpp:sm:3"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DELAY = "urn:xmpp:delay"
NS_STREAM = "http://etherx.jabber.org/streams"
MESSAGE = q(NS_CLIENT, "message")
PRESENCE = q(NS_CLIENT, "presence")
STANZAS = {q(NS_CLIENT, name) for name in ("message", "presence", "iq")}

# No request from the server unless a test asks for it: the counts stay exact.
QUIET = {"ack_request_stanzas": 1000000, "ack_request_seconds": 0}


# -- helpers ---------------------------------------------------------------------

def sm_server(server_factory, tmp_path, offline=False, presence=False, users=("alice", "bob"), **options):
    sm_options = dict(QUIET)
    sm_options.update(options)
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_test_stream": {}, "mod_stream_mgmt": sm_options}
    if presence:
        modules.update({"mod_roster": {}, "mod_presence": {}})
    if offline:
        modules["mod_offline"] = {}
    server = server_factory(module_paths=[module_dir(tmp_path, "mod_test_stream")], modules=modules, workers=2)
    for user in users:
        server.register(user, PASSWORD)
    return server


def sm_element(client, timeout=None):
    """The next element of the urn:xmpp:sm:3 namespace (stanzas before it are
    kept in client.received)."""
    deadline = time.monotonic() + (timeout or client.timeout)
    while True:
        elem = client.next_element(max(0.01, deadline - time.monotonic()))
        if elem.tag.startswith("{" + NS_SM + "}"):
            return elem


def enable(client, resume=False, max_=None):
    """<enable/>; returns <enabled/> and marks where the client's own h starts."""
    attrs = " resume='true'" if resume else ""
    attrs += f" max='{max_}'" if max_ is not None else ""
    client.send(f"<enable xmlns='{NS_SM}'{attrs}/>")
    enabled = sm_element(client)
    assert enabled.tag == q(NS_SM, "enabled"), ET.tostring(enabled, "unicode")
    client.sm_mark = next(i for i, e in enumerate(client.received) if e is enabled) + 1
    return enabled


def handled(client):
    """The client's h: stanzas it received since <enabled/>."""
    return sum(1 for e in client.received[client.sm_mark:] if e.tag in STANZAS)


def server_h(client):
    """<r/> -> the server's h."""
    client.send(f"<r xmlns='{NS_SM}'/>")
    a = client.expect(q(NS_SM, "a"))
    return int(a.get("h"))


def failed_condition(elem):
    assert elem.tag == q(NS_SM, "failed"), ET.tostring(elem, "unicode")
    children = [c.tag for c in elem]
    assert len(children) == 1 and children[0].startswith("{" + NS_STANZAS + "}"), children
    return children[0].split("}")[1]


def loop_of(sm_id):
    return int(sm_id.split(".")[0]) >> 48


def sm_counter(server, name):
    prefix = f"mod_stream_mgmt.{server.domain}.{name}: "
    for line in server.ctl("status").stdout.splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix):])
    return 0


def wait_sm_counter(server, name, value, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        got = sm_counter(server, name)
        if got >= value:
            assert got == value, f"{name}: {got}, expected {value}"
            return
        assert time.monotonic() < deadline, f"{name} stayed at {got}, expected {value}"
        time.sleep(0.05)


def resume(stream, sm_id, h):
    stream.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='{h}'/>")
    return sm_element(stream)


def detached_alice(server, raw_factory, resource="phone", messages=0, bob=None):
    """alice bound and resumable; bob sends her `messages` messages, which she
    reads without acknowledging; then her connection is reset and the session
    detached. Returns (alice's full JID, SM-ID, the client's h, her client)."""
    alice = bound(server, raw_factory, "alice", resource)
    sm_id = enable(alice, resume=True).get("id")
    if messages:
        for i in range(1, messages + 1):
            bob.message(alice.jid, f"m{i}")
        collect_messages(alice, messages)
    h = handled(alice)
    before = sm_counter(server, "detached")
    end_abruptly(alice, "reset")
    wait_sm_counter(server, "detached", before + 1)
    return alice.jid, sm_id, h, alice


# -- enable, <r/>, <a/> ----------------------------------------------------------

def test_the_feature_enable_and_its_errors(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    # XEP-0198 §2: never offered before authentication (neither before nor
    # after STARTTLS).
    pre = raw_factory(server.c2s_port)
    assert pre.start().find(q(NS_SM, "sm")) is None
    assert pre.starttls().find(q(NS_SM, "sm")) is None
    # Offered after authentication, where <resume/> may come instead of binding.
    stream = authenticated(server, raw_factory, "alice")
    features = stream.received[-1]
    assert features.tag == q(NS_STREAM, "features")
    assert features.find(q(NS_SM, "sm")) is not None
    # <enable/> before binding: unexpected-request; the stream goes on.
    stream.send(f"<enable xmlns='{NS_SM}'/>")
    assert failed_condition(sm_element(stream)) == "unexpected-request"
    stream.bind("r")
    enabled = enable(stream)
    assert enabled.get("id") is None and enabled.get("resume") is None  # not asked for resumption
    assert server_h(stream) == 0  # nonzas are not stanzas
    stream.sync()
    stream.message(stream.jid, "to myself")
    stream.expect_message("to myself")
    assert server_h(stream) == 2
    # Stanzas the core refuses before any module sees them are handled too.
    stream.send("<message to='a@b@c' type='chat' id='bad'><body>x</body></message>")
    stream.send("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")  # no id: bad-request
    stream.sync()
    assert server_h(stream) == 5


def test_enable_and_resume_before_authentication_fail_and_the_stream_goes_on(server_factory, tmp_path, raw_factory):
    """XEP-0198 §6: an error with an <enable/> or a <resume/> MUST be answered
    <failed/>; before authentication there is nothing to enable or resume.
    Regression: the core ended the stream with not-authorized (RFC 6120's
    rule for stanzas) before any module saw them."""
    server = sm_server(server_factory, tmp_path)
    pre = raw_factory(server.c2s_port)
    pre.start()
    pre.starttls()
    pre.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    assert failed_condition(sm_element(pre)) == "unexpected-request"
    pre.send(f"<resume xmlns='{NS_SM}' previd='nothing' h='0'/>")
    assert failed_condition(sm_element(pre)) == "unexpected-request"
    # The stream went on: the same connection logs in, binds and is answered.
    outcome = pre.auth_plain("alice", PASSWORD)
    assert outcome.tag == q(NS_SASL, "success")
    pre.start()
    pre.bind("r")
    assert pre.nothing_before_sync() == []


def test_a_second_enable_fails_and_ends_the_stream(server_factory, tmp_path, raw_factory):
    """XEP-0198 §3: an <enable/> is answered <enabled/> or <failed/> (MUST);
    "a client SHALL only make at most one attempt to enable stream management.
    If a server receives a second <enable/> element it SHOULD respond with a
    stream error, thus terminating the client connection". Regression: the
    stream went on after the <failed/>."""
    server = sm_server(server_factory, tmp_path, offline=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice, resume=True)
    bob.message(alice.jid, "m1")
    collect_messages(alice, 1)  # read, never acknowledged
    alice.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    assert failed_condition(sm_element(alice)) == "unexpected-request"
    assert alice.expect_stream_error() == "policy-violation"
    assert alice.wait_closed()
    # A stream error is a deliberate end: the session is not kept for a
    # resume, and its unacknowledged message goes to offline storage.
    wait_offline_counter(server, "stored", 1)
    assert sm_counter(server, "detached") == 0
    again = bound(server, raw_factory, "alice", "a2")
    again.send("<presence/>")
    assert bodies(collect_messages(again, 1)) == ["m1"]


def test_enable_with_resumption_and_its_timeout(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, resume_timeout=120, max_resume_timeout=200)
    alice = bound(server, raw_factory, "alice", "a")
    enabled = enable(alice, resume=True)
    assert enabled.get("resume") == "true"
    assert enabled.get("max") == "120"
    sm_id = enabled.get("id")
    session, token = sm_id.split(".")
    assert int(session) > 0 and len(token) == 32
    # The client's max is taken up to max_resume_timeout; ids never repeat.
    other = bound(server, raw_factory, "alice", "b")
    enabled = enable(other, resume="true", max_=100000)
    assert enabled.get("max") == "200"
    assert enabled.get("id") != sm_id
    third = bound(server, raw_factory, "alice", "c")
    assert enable(third, resume=True, max_=30).get("max") == "30"


def test_the_location_option_is_given_with_resumption_only(server_factory, tmp_path, raw_factory):
    # XEP-0198 §5: <enabled location='...'/> where the client should reconnect
    # to resume; only a resumable session gets it; without the option none does.
    server = sm_server(server_factory, tmp_path, location="127.0.0.1:5222")
    alice = bound(server, raw_factory, "alice", "a")
    assert enable(alice, resume=True).get("location") == "127.0.0.1:5222"
    other = bound(server, raw_factory, "alice", "b")
    assert enable(other).get("location") is None
    plain = sm_server(server_factory, tmp_path)
    bob = bound(plain, raw_factory, "bob", "b")
    assert enable(bob, resume=True).get("location") is None


def test_acks_both_ways_count_stanzas_only(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, ack_request_stanzas=3)
    alice = bound(server, raw_factory, "alice", "a")
    bob = bound(server, raw_factory, "bob", "b")
    enable(alice)
    # The server asks after 3 unacknowledged stanzas, after the third.
    for body in ("1", "2", "3"):
        bob.message(alice.jid, body)
    got = []
    while True:
        elem = alice.next_element()
        if elem.tag == q(NS_SM, "r"):
            break
        got.append(elem)
    assert bodies(got) == ["1", "2", "3"]
    alice.send(f"<a xmlns='{NS_SM}' h='{handled(alice)}'/>")
    assert handled(alice) == 3
    # The client's <r/>: what the server handled from it (3 stanzas: the
    # message, the iq, and the message to herself).
    alice.message(bob.jid, "hi")
    alice.sync()
    alice.message(alice.jid, "self")
    alice.expect_message("self")
    assert server_h(alice) == 3
    # An <a/> acknowledging more than was sent ends the stream (XEP-0198 §4).
    sent = handled(alice)
    alice.send(f"<a xmlns='{NS_SM}' h='{sent + 1}'/>")
    error = alice.expect(q(NS_STREAM, "error"))
    assert error.find(q("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition")) is not None
    too_high = error.find(q(NS_SM, "handled-count-too-high"))
    assert too_high.get("h") == str(sent + 1) and too_high.get("send-count") == str(sent)
    assert alice.wait_closed()


def test_r_and_a_before_enable_are_not_stream_management(server_factory, tmp_path, raw_factory):
    """XEP-0198 §4: acks are sent "after enabling stream management". Before
    <enable/> an <r/> or <a/> is an element nothing on the stream takes: never
    answered with an <a/>; the stream ends as for any unknown top-level element
    (RFC 6120: unsupported-stanza-type once bound; not-authorized before)."""
    server = sm_server(server_factory, tmp_path)
    for nonza in (f"<r xmlns='{NS_SM}'/>", f"<a xmlns='{NS_SM}' h='0'/>"):
        client = bound(server, raw_factory, "alice", "a")
        client.send(nonza)
        assert client.expect_stream_error() == "unsupported-stanza-type"
        assert not [e for e in client.received if e.tag == q(NS_SM, "a")]
    stream = authenticated(server, raw_factory, "alice")
    stream.send(f"<r xmlns='{NS_SM}'/>")
    assert stream.expect_stream_error() == "not-authorized"


def test_the_server_asks_for_an_ack_after_t_seconds(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, ack_request_seconds=1)
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice)
    start = time.monotonic()
    alice.sync()  # its answer is one unacknowledged stanza
    request = sm_element(alice, timeout=10)
    assert request.tag == q(NS_SM, "r")
    assert time.monotonic() - start >= 0.9
    alice.send(f"<a xmlns='{NS_SM}' h='{handled(alice)}'/>")
    assert server_h(alice) == 1


def test_an_ack_out_of_range_ends_the_stream(server_factory, tmp_path, raw_factory):
    """h is a 32-bit number (modulo 2^32: the unit test covers the wrap):
    2^32 is malformed; 2^32 - 1 with nothing sent is too high."""
    server = sm_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice)
    alice.sync()
    alice.send(f"<a xmlns='{NS_SM}' h='4294967296'/>")  # not a 32-bit number
    assert alice.expect_stream_error() == "bad-format"
    bob = bound(server, raw_factory, "bob", "b")
    enable(bob)
    bob.send(f"<a xmlns='{NS_SM}' h='4294967295'/>")  # 2^32 - 1 sent? no: too high
    assert bob.expect_stream_error() == "undefined-condition"
    # RFC 6120 4.9.1.1: only the close after the stream error (no last <a/> of
    # a graceful close: test_a_clean_close_is_preceded_by_an_ack_of_what_was_handled).
    assert bob.wait_closed()
    last_error = max(i for i, e in enumerate(bob.received) if e.tag == q(NS_STREAM, "error"))
    assert bob.received[last_error + 1:] == [], [ET.tostring(e, "unicode") for e in bob.received[last_error + 1:]]


def test_a_flood_of_r_is_answered_a_bounded_number_of_times(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, max_ack_answers_per_second=5)
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice)
    start = time.monotonic()
    alice.send(f"<r xmlns='{NS_SM}'/>" * 200)
    got = alice.nothing_before_sync()  # all 200 processed
    elapsed = time.monotonic() - start
    # The point of this wait is time: a coalesced answer comes at the end of
    # its one-second window.
    later = alice.quiet(1.5)
    answers = [e for e in got + later if e.tag == q(NS_SM, "a")]
    # 5 per started window, plus one coalesced: far from 200.
    assert 5 <= len(answers) <= 5 * (math.ceil(elapsed + 1.5) + 1) + 1, (len(answers), elapsed)
    # Each with h as it was when written: 0 before the ping, 1 after it.
    assert {a.get("h") for a in got if a.tag == q(NS_SM, "a")} == {"0"}
    assert {a.get("h") for a in later if a.tag == q(NS_SM, "a")} <= {"1"}
    assert server_h(alice) == 1  # still answered (the sync ping counted), the stream still open


# -- resumption ------------------------------------------------------------------

def test_a_resume_after_a_reset_on_the_other_loop_delivers_what_was_in_flight_once_in_order(
        server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "phone")
    alice_jid = alice.jid
    sm_id = enable(alice, resume=True).get("id")
    # Two stanzas from alice: the server's h.
    alice.message(bob.jid, "hello")
    alice.sync()
    bob.expect_message("hello")
    h = handled(alice)  # the ping's answer
    assert h == 1
    # Five messages reach her socket; she never handles them; reset.
    before = time.time()
    for i in range(1, 6):
        bob.message(alice_jid, f"m{i}")
    collect_messages(alice, 5)
    time.sleep(0.05)  # the stamps are of the first writing, not of the resume
    end_abruptly(alice, "reset")
    wait_sm_counter(server, "detached", 1)
    # Two more while detached: they wait in the core.
    bob.message(alice_jid, "m6")
    bob.message(alice_jid, "m7")
    bob.sync()

    new = stream_on_loop(server, raw_factory, "alice", 1 - loop_of(sm_id))
    resumed = resume(new, sm_id, h)
    assert resumed.tag == q(NS_SM, "resumed"), ET.tostring(resumed, "unicode")
    assert resumed.get("previd") == sm_id
    assert resumed.get("h") == "2"
    got = collect_messages(new, 7)
    assert bodies(got) == [f"m{i}" for i in range(1, 8)]
    assert all(m.get("to") == alice_jid for m in got)
    # The five sent again carry when they were first sent (XEP-0203); the two
    # that waited in the core are sent for the first time now, unstamped.
    for m in got[:5]:
        delays = m.findall(q(NS_DELAY, "delay"))
        assert len(delays) == 1, ET.tostring(m, "unicode")
        assert delays[0].get("from") == server.domain
        stamp = delays[0].get("stamp")
        seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        assert before - 1 <= seconds <= before + 2, (stamp, before)
    assert [m.findall(q(NS_DELAY, "delay")) for m in got[5:]] == [[], []]
    # None twice: nothing more before a round trip.
    assert [e for e in new.nothing_before_sync() if e.tag == MESSAGE] == []
    # The session goes on: same JID, the counters continue.
    new.message(bob.jid, "back")
    assert bob.expect_message("back").get("from") == alice_jid
    assert server_h(new) == 4  # hello, the ping, then the sync ping and "back"
    new.send(f"<a xmlns='{NS_SM}' h='{h + 7}'/>")
    assert server_h(new) == 4
    assert sm_counter(server, "resumed") == 1


def test_a_resume_with_a_bad_or_unknown_id_fails_and_the_stream_can_bind(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    stream = authenticated(server, raw_factory, "alice")
    for previd in ("garbage", "", "281474976710657." + "0" * 32, "1.xyz"):
        failed = resume(stream, previd, 0)
        assert failed_condition(failed) == "item-not-found"
        assert failed.get("h") is None
    # Without h (XEP-0198 §5: required in urn:xmpp:sm:3).
    stream.send(f"<resume xmlns='{NS_SM}' previd='1.{'0' * 32}'/>")
    assert failed_condition(sm_element(stream)) == "bad-request"
    jid = stream.bind("again")
    assert jid.endswith("/again")
    enable(stream, resume=True)
    # Once bound, <resume/> is out of place.
    stream.send(f"<resume xmlns='{NS_SM}' previd='1.{'0' * 32}' h='0'/>")
    assert failed_condition(sm_element(stream)) == "unexpected-request"


def test_a_resume_of_another_accounts_session_is_refused_as_unknown(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid, sm_id, h, _ = detached_alice(server, raw_factory, messages=2, bob=bob)
    mallory = authenticated(server, raw_factory, "bob")
    refused = resume(mallory, sm_id, 0)
    unknown = resume(mallory, sm_id.split(".")[0] + "." + "f" * 32, 0)
    # The same answer as for an id that does not exist: nothing leaks.
    assert ET.tostring(refused) == ET.tostring(unknown)
    assert failed_condition(refused) == "item-not-found" and refused.get("h") is None
    # Still alice's to resume.
    new = authenticated(server, raw_factory, "alice")
    resumed = resume(new, sm_id, h)
    assert resumed.tag == q(NS_SM, "resumed"), ET.tostring(resumed, "unicode")
    assert [e for e in new.nothing_before_sync() if e.tag == MESSAGE] == []  # both were acknowledged by h


def test_a_resume_racing_the_old_open_connection_closes_it_and_takes_over(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    old = bound(server, raw_factory, "alice", "phone")
    alice_jid = old.jid
    sm_id = enable(old, resume=True).get("id")
    for i in range(1, 4):
        bob.message(alice_jid, f"m{i}")
    collect_messages(old, 3)
    # The old connection is still open: a new one resumes, having handled m1.
    new = authenticated(server, raw_factory, "alice")
    resumed = resume(new, sm_id, 1)
    assert resumed.tag == q(NS_SM, "resumed"), ET.tostring(resumed, "unicode")
    assert old.expect_stream_error() == "conflict"
    assert old.wait_closed()
    # Exactly what was not acknowledged, then the session goes on.
    assert bodies(collect_messages(new, 2)) == ["m2", "m3"]
    bob.message(alice_jid, "m4")
    assert bodies(collect_messages(new, 1)) == ["m4"]
    assert [e for e in new.nothing_before_sync() if e.tag == MESSAGE] == []


def test_a_pipelined_resume_counts_what_follows_it(server_factory, tmp_path, raw_factory):
    """A client may send stanzas right behind its <resume/> without waiting for
    <resumed/>: they are the resumed session's, handled after it (h counts them
    on from the old session's) and sent from its full JID."""
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid, sm_id, h, alice = detached_alice(server, raw_factory, messages=1, bob=bob)
    new = authenticated(server, raw_factory, "alice")
    new.send(f"<resume xmlns='{NS_SM}' previd='{sm_id}' h='{h}'/>"
             f"<message to='{bob.jid}' type='chat' id='p1'><body>pipelined</body></message>"
             f"<r xmlns='{NS_SM}'/>")
    resumed = sm_element(new)
    assert resumed.tag == q(NS_SM, "resumed") and resumed.get("h") == "0", ET.tostring(resumed, "unicode")
    a = sm_element(new)
    assert a.tag == q(NS_SM, "a") and a.get("h") == "1", ET.tostring(a, "unicode")
    assert bob.expect_message("pipelined").get("from") == alice_jid


def test_a_clean_close_is_not_resumable(server_factory, tmp_path, raw_factory):
    """XEP-0198 §7: </stream:stream> ends the session; its SM-ID resumes
    nothing (item-not-found, with the h of the same account's ended session)."""
    server = sm_server(server_factory, tmp_path)
    alice = bound(server, raw_factory, "alice", "a")
    sm_id = enable(alice, resume=True).get("id")
    alice.sync()
    alice.close()
    stream = authenticated(server, raw_factory, "alice")
    failed = resume(stream, sm_id, 1)
    assert failed_condition(failed) == "item-not-found"
    assert failed.get("h") == "1"  # the ping
    assert sm_counter(server, "detached") == 0


def test_a_clean_close_is_preceded_by_an_ack_of_what_was_handled(server_factory, tmp_path, raw_factory):
    """XEP-0198 §4: before closing the stream gracefully the server sends an
    <a/> with the stanzas it handled, right before its </stream:stream>; a
    stream without stream management gets none."""
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice)
    alice.sync()  # a ping: 1
    alice.message(bob.jid, "one")  # 2
    alice.message(bob.jid, "two")  # 3
    alice.send("</stream:stream>")
    assert alice.wait_closed()
    after_enable = alice.received[alice.sm_mark:]
    acks = [e for e in after_enable if e.tag == q(NS_SM, "a")]
    assert [a.get("h") for a in acks] == ["3"], [ET.tostring(e, "unicode") for e in after_enable]
    assert after_enable[-1] is acks[0]  # the last thing before the close
    # Without <enable/>: the close alone.
    bob.sync()
    bob.send("</stream:stream>")
    assert bob.wait_closed()
    assert [e for e in bob.received if e.tag.startswith("{" + NS_SM + "}")] == []


# -- the end of a session ----------------------------------------------------------

def test_an_unacked_iq_request_is_answered_with_an_error_at_the_end(server_factory, tmp_path, raw_factory):
    """XEP-0198 §4: unacknowledged stanzas are handled as for an unavailable
    resource at the end (RFC 6121 §8.5.3.2: an iq get/set gets
    service-unavailable; a presence is dropped)."""
    server = sm_server(server_factory, tmp_path, resume_timeout=1)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "a")
    alice_jid = alice.jid
    enable(alice, resume=True)
    bob.send(f"<iq type='get' id='q1' to='{alice_jid}'><query xmlns='jabber:iq:version'/></iq>")
    bob.send(f"<presence to='{alice_jid}'/>")
    alice.expect(q(NS_CLIENT, "iq"))
    alice.expect(PRESENCE)
    end_abruptly(alice, "reset")
    error = bob.expect(q(NS_CLIENT, "iq"), timeout=30, match=lambda e: e.get("id") == "q1")
    assert error.get("type") == "error" and error.get("from") == alice_jid
    assert error.find(f"{q(NS_CLIENT, 'error')}/{q(NS_STANZAS, 'service-unavailable')}") is not None
    assert error.find(q(NS_CLIENT, "error")).get("type") == "cancel"
    assert sm_counter(server, "resume_timeouts") == 1
    # The presence is not bounced: nothing else came back to bob.
    assert [e for e in bob.nothing_before_sync() if e.tag in STANZAS] == []

def test_the_resume_timeout_sends_unacked_messages_to_offline_storage_with_their_first_stamp(
        server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, offline=True, presence=True, resume_timeout=1)
    subscribe_both(server, raw_factory, "alice", "bob")
    bob = presence_login(server, raw_factory, "bob", "b")
    alice = presence_login(server, raw_factory, "alice", "phone")
    alice_jid = alice.jid
    expect_presence(bob, alice_jid)
    sm_id = enable(alice, resume=True).get("id")
    alice.message(bob.jid, "bye")  # the server's h: 1
    bob.expect_message("bye")
    before = time.time()
    for i in range(1, 4):
        bob.message(alice_jid, f"m{i}")
    collect_messages(alice, 3)
    time.sleep(0.05)  # the stamps are of the first writing, not of the timeout
    end_abruptly(alice, "reset")
    # The session ends at the timeout: its contacts hear it then.
    expect_presence(bob, alice_jid, "unavailable", timeout=15)
    wait_offline_counter(server, "stored", 3)  # committed, and known to mod_offline
    rows = stored_rows(server)
    assert len(rows) == 3 and all(NS_DELAY in xml for _, xml in rows), rows
    assert sm_counter(server, "resume_timeouts") == 1
    # An expired id: item-not-found with the session's last h (XEP-0198 §5),
    # for its account only; and the stream can still bind.
    stream = authenticated(server, raw_factory, "alice")
    failed = resume(stream, sm_id, 0)
    assert failed_condition(failed) == "item-not-found" and failed.get("h") == "1"
    other = authenticated(server, raw_factory, "bob")
    failed = resume(other, sm_id, 0)
    assert failed_condition(failed) == "item-not-found" and failed.get("h") is None
    stream.bind("laptop")
    stream.send("<presence/>")
    got = collect_messages(stream, 3)
    assert bodies(got) == ["m1", "m2", "m3"]
    for m in got:
        delays = m.findall(q(NS_DELAY, "delay"))
        assert len(delays) == 1, ET.tostring(m, "unicode")
        stamp = delays[0].get("stamp")
        assert delays[0].get("from") == server.domain
        seconds = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        assert before - 1 <= seconds <= before + 2, (stamp, before)
    assert [e for e in stream.nothing_before_sync() if e.tag == MESSAGE] == []


def test_max_ack_queue_closes_with_policy_violation_and_nothing_is_lost(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, offline=True, max_ack_queue=3)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice, resume=True)
    for i in range(1, 5):
        bob.message(alice.jid, f"m{i}")
    assert alice.expect_stream_error() == "policy-violation"
    assert bodies([e for e in alice.received if e.tag == MESSAGE]) == ["m1", "m2", "m3"]
    # The fourth was not written; all four, unacknowledged, go offline in order.
    wait_offline_counter(server, "stored", 4)
    again = bound(server, raw_factory, "alice", "a2")
    again.send("<presence/>")
    assert bodies(collect_messages(again, 4)) == ["m1", "m2", "m3", "m4"]
    assert sm_counter(server, "ack_queue_overflows") == 1


def test_a_new_login_replacing_a_detached_session_gets_its_unacked_messages(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, offline=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid, sm_id, h, _ = detached_alice(server, raw_factory, messages=2, bob=bob)
    # The same full JID binds again: the detached session ends (conflict).
    again = bound(server, raw_factory, "alice", "phone")
    assert again.jid == alice_jid
    # Its two messages are routed again from the old session's loop while this
    # one may become available on the other: an available presence between
    # the two would send the first to storage and the second here at once.
    # Here both are stored first (what this test is about); the order across
    # that race is test_mod_offline's live-during-delivery test.
    wait_sm_counter(server, "rerouted", 2)
    wait_offline_counter(server, "stored", 2)
    again.send("<presence/>")
    assert bodies(collect_messages(again, 2)) == ["m1", "m2"]
    assert [e for e in again.nothing_before_sync() if e.tag == MESSAGE] == []
    stream = authenticated(server, raw_factory, "alice")
    assert failed_condition(resume(stream, sm_id, h)) == "item-not-found"


def test_a_clean_close_with_unacked_messages_routes_them_again(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, offline=True)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "a")
    enable(alice)
    bob.message(alice.jid, "m1")
    bob.message(alice.jid, "m2")
    collect_messages(alice, 2)
    alice.send(f"<a xmlns='{NS_SM}' h='1'/>")  # m1 handled, m2 not
    alice.close()
    wait_offline_counter(server, "stored", 1)
    again = bound(server, raw_factory, "alice", "b")
    again.send("<presence/>")
    assert bodies(collect_messages(again, 1)) == ["m2"]
    assert [e for e in again.nothing_before_sync() if e.tag == MESSAGE] == []


# -- slixmpp's xep_0198 plugin -----------------------------------------------------

def test_slixmpp_enables_acks_and_resumes_after_losing_its_connection(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path, ack_request_stanzas=5)
    runner = SlixRunner()
    try:
        alice = runner.client(f"alice@{server.domain}/slix", PASSWORD, mech="SCRAM-SHA-256", channel_binding=False)
        x = alice.xmpp
        x.register_plugin("xep_0198")
        plugin = x["xep_0198"]
        enabled = runner.loop.create_future()
        resumed = runner.loop.create_future()
        x.add_event_handler("sm_enabled", lambda s: enabled.done() or enabled.set_result(s["id"]))
        x.add_event_handler("session_resumed", lambda s: resumed.done() or resumed.set_result(True))
        x.add_event_handler("sm_failed", lambda s: resumed.done() or resumed.set_result(str(s)))
        assert runner.run(alice.connect(server.c2s_port)) is True
        sm_id = runner.run(asyncio.wait_for(enabled, 10))
        assert sm_id and loop_of(sm_id) in (0, 1)
        full = alice.jid

        bob = bound(server, raw_factory, "bob", "b")
        # slixmpp asks for an ack within its window of 5 stanzas (its first
        # request comes after the 4th message): the server's h acknowledges them.
        for i in range(6):
            x.send_message(mto=bob.jid, mbody=f"s{i}", mtype="chat")
        runner.run(alice.sync())
        assert bodies(collect_messages(bob, 6)) == [f"s{i}" for i in range(6)]
        runner.run(until(lambda: plugin.last_ack >= 4))
        assert len(plugin.unacked_queue) == plugin.seq - plugin.last_ack  # slixmpp agrees with the count
        # The server asks after 5 of its own: slixmpp answers, both sides agree.
        for i in range(5):
            bob.message(full, f"b{i}")
        for i in range(5):
            runner.run(alice.expect_body(f"b{i}"))

        # The connection goes without </stream:stream>: detached.
        x.abort()
        runner.run(asyncio.wait_for(alice.disconnected.wait(), 10))
        wait_sm_counter(server, "detached", 1)
        for i in range(1, 4):
            bob.message(full, f"m{i}")
        bob.sync()
        x.connect(("127.0.0.1", server.c2s_port), force_starttls=True)
        assert runner.run(asyncio.wait_for(resumed, 20)) is True
        for i in range(1, 4):
            assert runner.run(alice.expect_body(f"m{i}"))["from"] == bob.jid
        assert str(x.boundjid) == full
        x.send_message(mto=bob.jid, mbody="after", mtype="chat")
        runner.run(alice.sync())
        assert bob.expect_message("after").get("from") == full
        assert sm_counter(server, "resumed") == 1
    finally:
        runner.close()


async def until(predicate, timeout=10):
    deadline = asyncio.get_event_loop().time() + timeout
    while not predicate():
        assert asyncio.get_event_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


# -- hot reload ------------------------------------------------------------------

def test_a_reload_keeps_counters_queue_and_resumability(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice = bound(server, raw_factory, "alice", "phone")
    alice_jid = alice.jid
    sm_id = enable(alice, resume=True).get("id")
    alice.sync()
    h = handled(alice)  # the ping's answer
    bob.message(alice_jid, "m1")
    bob.message(alice_jid, "m2")
    collect_messages(alice, 2)  # read, never acknowledged
    assert server_h(alice) == 1

    reloaded = server.ctl("module", "reload", "mod_stream_mgmt")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert "reloaded" in reloaded.stdout

    assert server_h(alice) == 1  # the counter went on
    bob.message(alice_jid, "m3")
    collect_messages(alice, 1)
    end_abruptly(alice, "reset")  # still resumable: detached
    wait_sm_counter(server, "detached", 1)
    new = authenticated(server, raw_factory, "alice")
    resumed = resume(new, sm_id, h)
    assert resumed.tag == q(NS_SM, "resumed"), ET.tostring(resumed, "unicode")
    assert resumed.get("h") == "1"
    # The queue crossed the reload: m1 and m2 (old code) and m3 (new code).
    assert bodies(collect_messages(new, 3)) == ["m1", "m2", "m3"]
    assert [e for e in new.nothing_before_sync() if e.tag == MESSAGE] == []


def test_a_resumed_stream_can_be_lost_and_resumed_again(server_factory, tmp_path, raw_factory):
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid, sm_id, h, _ = detached_alice(server, raw_factory, messages=1, bob=bob)
    first = stream_on_loop(server, raw_factory, "alice", 1 - loop_of(sm_id))
    assert resume(first, sm_id, h).tag == q(NS_SM, "resumed")
    bob.message(alice_jid, "m2")
    assert bodies(collect_messages(first, 1)) == ["m2"]  # read, never acknowledged
    end_abruptly(first, "reset")
    wait_sm_counter(server, "detached", 2)
    bob.message(alice_jid, "m3")
    bob.sync()
    # Back on the session's own loop, with the same SM-ID: the client handled m1 only.
    second = stream_on_loop(server, raw_factory, "alice", loop_of(sm_id))
    resumed = resume(second, sm_id, h)
    assert resumed.tag == q(NS_SM, "resumed"), ET.tostring(resumed, "unicode")
    assert bodies(collect_messages(second, 2)) == ["m2", "m3"]
    assert [e for e in second.nothing_before_sync() if e.tag == MESSAGE] == []
    assert sm_counter(server, "resumed") == 2


def test_an_enable_on_a_resumed_stream_fails_and_ends_the_stream(server_factory, tmp_path, raw_factory):
    """A resumed stream has stream management on (XEP-0198 §5: the session's
    counters go on): an <enable/> there is a second one (§3)."""
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid, sm_id, h, _ = detached_alice(server, raw_factory, messages=1, bob=bob)
    new = authenticated(server, raw_factory, "alice")
    assert resume(new, sm_id, h).tag == q(NS_SM, "resumed")
    new.send(f"<enable xmlns='{NS_SM}'/>")
    assert failed_condition(sm_element(new)) == "unexpected-request"
    assert new.expect_stream_error() == "policy-violation"
    assert new.wait_closed()
    # Ended, not detached again: the id is gone.
    wait_sm_counter(server, "detached", 1)
    stream = authenticated(server, raw_factory, "alice")
    assert failed_condition(resume(stream, sm_id, h)) == "item-not-found"


def test_a_resume_whose_h_is_too_high_fails_and_ends_the_stream(server_factory, tmp_path, raw_factory):
    """XEP-0198 §6: <failed/> answers an error with <resume/> (MUST), and an h
    acknowledging more than was sent ends the stream with undefined-condition
    and <handled-count-too-high h= send-count=/> (SHOULD), as for <a/>.
    Regression: only <failed/> came, and the stream went on. The session stays
    resumable for a right count."""
    server = sm_server(server_factory, tmp_path)
    bob = bound(server, raw_factory, "bob", "b")
    alice_jid, sm_id, h, _ = detached_alice(server, raw_factory, messages=2, bob=bob)
    assert h == 2
    wrong = authenticated(server, raw_factory, "alice")
    failed = resume(wrong, sm_id, h + 1)
    assert failed_condition(failed) == "undefined-condition"
    assert failed.get("h") == "0"  # the server's h: alice sent nothing
    error = wrong.expect(q(NS_STREAM, "error"))
    assert error.find(q("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition")) is not None
    too_high = error.find(q(NS_SM, "handled-count-too-high"))
    assert too_high is not None, ET.tostring(error, "unicode")
    assert too_high.get("h") == str(h + 1) and too_high.get("send-count") == str(h)
    assert wrong.wait_closed()
    # Still alice's to resume with the right h: nothing was lost or settled.
    new = authenticated(server, raw_factory, "alice")
    resumed = resume(new, sm_id, 1)
    assert resumed.tag == q(NS_SM, "resumed"), ET.tostring(resumed, "unicode")
    assert bodies(collect_messages(new, 1)) == ["m2"]
    assert [e for e in new.nothing_before_sync() if e.tag == MESSAGE] == []


def test_offline_messages_flushed_at_login_are_counted(server_factory, tmp_path, raw_factory):
    # Regression: mod_offline writes its queue with session_send_tracked
    # (paced by the connection), which went around the outgoing filters: the
    # server did not count those messages, so the client's <a h/> for them
    # acknowledged more than the server had sent (undefined-condition,
    # handled-count-too-high), and a resume would have re-sent the wrong ones.
    server = sm_server(server_factory, tmp_path, offline=True)
    alice = bound(server, raw_factory, "alice", "a")
    for i in range(3):
        alice.message(f"bob@{server.domain}", f"o{i}")
    wait_offline_counter(server, "stored", 3)
    bob = bound(server, raw_factory, "bob", "b")
    enable(bob)
    bob.send("<presence/>")
    assert bodies(collect_messages(bob, 3)) == ["o0", "o1", "o2"]
    bob.send(f"<a xmlns='{NS_SM}' h='{handled(bob)}'/>")
    bob.sync()  # the stream is still open: the ack was within what the server sent
    assert server_h(bob) == 2  # the client's own: <presence/> and the ping
