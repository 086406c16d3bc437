"""mod_csi (XEP-0352 Client State Indication) against a running parleyd: the
<csi/> feature after authentication, what an inactive session holds (presence,
only the latest per contact; chat states; receipts) and what flushes it, in
order (a message with a body, an encrypted payload, a call proposal, an iq
request, <active/> before anything sent after it, a full buffer, the client's
own traffic), with the contact on the same worker loop and on the other one;
stream management's counting (mod_test_stream's filter runs after ours) and a
detach and resume; held messages routed again when the session closes; a hot
reload that keeps what was held; the metrics; and slixmpp's xep_0352 plugin.

A check that nothing arrived ends with a marker through the same path as the
stimulus: an iq result from the contact to the inactive session, which
mod_csi lets through without flushing (an answer is not urgent and not held).
"""

import asyncio
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_SASL, StreamErrorReceived, q
from test_mod_presence import expect_presence, subscribe_both
from test_modules import module_dir
from test_session_seams import authenticated, end_abruptly, nonza, stream_on_loop, where

NS_CSI = "urn:xmpp:csi:0"
NS_STREAM_TEST = "urn:parley:test:stream"
NS_DELAY = "urn:xmpp:delay"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_RECEIPTS = "urn:xmpp:receipts"
MESSAGE = q(NS_CLIENT, "message")
PRESENCE = q(NS_CLIENT, "presence")
IQ = q(NS_CLIENT, "iq")
INACTIVE = f"<inactive xmlns='{NS_CSI}'/>"
ACTIVE = f"<active xmlns='{NS_CSI}'/>"


# -- helpers ---------------------------------------------------------------------

def csi_server(server_factory, tmp_path, csi=None, users=("alice", "bob")):
    """mod_csi (options `csi`) with mod_roster, mod_presence and mod_test_stream
    (its <where/> says on which loop a session is; its outgoing filter counts
    after ours, as stream management's), two worker loops."""
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {},
               "mod_csi": csi or {}, "mod_test_stream": {}}
    server = server_factory(module_paths=[module_dir(tmp_path, "mod_test_stream")], modules=modules, workers=2)
    for user in users:
        server.register(user, PASSWORD)
    return server


def login(server, raw_factory, user, resource, loop=None, tries=64):
    """A bound, available session of `user`; on worker loop `loop` if given
    (new connections until one lands there: bound without presence, so that a
    wrong one leaves without telling anybody)."""
    for _ in range(tries):
        client = raw_factory(server.c2s_port)
        client.login(user, PASSWORD, resource=resource)
        if loop is not None:
            _, here, _ = where(client)
            if here != loop:
                client.close()
                continue
        client.send("<presence/>")
        expect_presence(client, client.jid)
        return client
    raise AssertionError(f"no session of {user} landed on loop {loop}")


def pair(server, raw_factory, bob_loop):
    """alice/phone and bob/home, mutually subscribed, both available; bob on
    alice's loop ('same') or on the other one ('other')."""
    subscribe_both(server, raw_factory, "alice", "bob")
    alice = login(server, raw_factory, "alice", "phone")
    _, alice_loop, _ = where(alice)
    bob = login(server, raw_factory, "bob", "home", alice_loop if bob_loop == "same" else 1 - alice_loop)
    expect_presence(alice, bob.jid)
    return alice, bob


def go_inactive(client):
    client.send(INACTIVE)
    client.sync()  # nothing is held yet: the round trip only proves <inactive/> was processed


def mark(sender, receiver):
    """Sends the marker (an iq result, let through without a flush) and
    returns what `receiver` got before it: the marker comes after whatever the
    sender's earlier stanzas brought, on the same path."""
    marker_id = f"mark-{sender.new_id()}"
    sender.send(f"<iq type='result' id='{marker_id}' to='{receiver.jid}'/>")
    return receiver.expect_nothing_until(lambda e: e.tag == IQ and e.get("id") == marker_id)


def read(client, n):
    return [client.next_element() for _ in range(n)]


def chat_state(to, state, stanza_id):
    return f"<message to='{to}' type='chat' id='{stanza_id}'><{state} xmlns='{NS_CHATSTATES}'/></message>"


def directed(to, status):
    return f"<presence to='{to}'><status>{status}</status></presence>"


def delay_of(elem):
    return elem.find(q(NS_DELAY, "delay"))


def assert_held(elem, server):
    """The stamp mod_csi puts on what it held (XEP-0203, from the account)."""
    delay = delay_of(elem)
    assert delay is not None, ET.tostring(elem, "unicode")
    assert delay.get("from") == f"alice@{server.domain}"
    assert len(delay.get("stamp")) == len("2002-09-10T23:08:25.123Z") and delay.get("stamp").endswith("Z")


def describe(elem):
    """(tag, from, id or status) of a stanza: enough to check the exact order."""
    status = elem.findtext(q(NS_CLIENT, "status"))
    return (elem.tag.split("}")[1], elem.get("from"), status if elem.tag == PRESENCE else elem.get("id"))


def metrics(server):
    prefix = f"mod_csi.{server.domain}."
    out = {}
    for line in server.ctl("status").stdout.splitlines():
        if line.startswith(prefix):
            name, value = line[len(prefix):].split(": ", 1)
            out[name] = int(value)
    return out


# -- the feature -----------------------------------------------------------------

def test_csi_is_offered_after_authentication_only(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    client = raw_factory(server.c2s_port)
    features = client.start()
    assert features.find(q(NS_CSI, "csi")) is None
    features = client.starttls()
    assert features.find(q(NS_CSI, "csi")) is None
    assert client.auth_plain("alice", PASSWORD).tag == q(NS_SASL, "success")
    features = client.start()
    csi = features.find(q(NS_CSI, "csi"))
    assert csi is not None and len(csi) == 0 and not csi.attrib


# -- holding and flushing --------------------------------------------------------

@pytest.mark.parametrize("bob_loop", ["same", "other"])
def test_inactive_holds_until_a_message_with_a_body_flushes_in_order(server_factory, tmp_path, raw_factory,
                                                                     bob_loop):
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, bob_loop)
    go_inactive(alice)
    bob.send(directed(alice.jid, "one"))
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    bob.send(directed(alice.jid, "two"))   # supersedes "one"
    bob.send(f"<message to='{alice.jid}' id='rc1'><received xmlns='{NS_RECEIPTS}' id='m0'/></message>")
    bob.send(chat_state(alice.jid, "paused", "cs2"))
    # Nothing of it reached alice (the marker came the same way, after it).
    assert mark(bob, alice) == []
    bob.message(alice.jid, "wake up")
    got = read(alice, 5)
    assert [describe(e) for e in got] == [
        ("message", bob.jid, "cs1"),
        ("presence", bob.jid, "two"),
        ("message", bob.jid, "rc1"),
        ("message", bob.jid, "cs2"),
        ("message", bob.jid, got[4].get("id")),
    ]
    assert got[0].find(q(NS_CHATSTATES, "composing")) is not None
    assert got[2].find(q(NS_RECEIPTS, "received")).get("id") == "m0"
    for held in got[:4]:
        assert held.get("to") == alice.jid
        assert_held(held, server)
    assert got[4].findtext(q(NS_CLIENT, "body")) == "wake up"
    assert delay_of(got[4]) is None  # not held: no stamp
    # Still inactive: the next chat state waits again.
    bob.send(chat_state(alice.jid, "active", "cs3"))
    assert mark(bob, alice) == []
    m = metrics(server)
    assert m["held"] == 6 and m["superseded"] == 1 and m["flushes"] == 1 and m["flushes_urgent"] == 1
    assert m["wakeups_saved"] == 5  # four written with the body, one never written
    assert m["inactive_sessions"] == 1


@pytest.mark.parametrize("bob_loop", ["same", "other"])
def test_active_flushes_before_what_the_client_sends_after_it(server_factory, tmp_path, raw_factory, bob_loop):
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, bob_loop)
    go_inactive(alice)
    bob.send("<presence><show>away</show></presence>")  # a broadcast: mod_presence reads the roster first
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    # The broadcast goes after a storage read: wait until bob's chat state was
    # held (the metric), then the marker proves nothing reached alice.
    deadline = time.monotonic() + 10
    while metrics(server).get("held", 0) < 2:
        assert time.monotonic() < deadline, metrics(server)
        time.sleep(0.05)
    assert mark(bob, alice) == []
    # XEP-0352 5.1: <active/> takes effect before the ping after it.
    ping_id = alice.new_id()
    alice.send(ACTIVE + f"<iq type='get' id='{ping_id}' to='{server.domain}'><ping xmlns='urn:xmpp:ping'/></iq>")
    got = read(alice, 3)
    # Held in the order they reached alice's loop (the broadcast after its storage read).
    assert {describe(e) for e in got[:2]} == {("presence", bob.jid, None), ("message", bob.jid, "cs1")}
    assert got[2].tag == IQ and got[2].get("id") == ping_id and got[2].get("type") == "result"
    # Active again: nothing is held.
    bob.send(chat_state(alice.jid, "paused", "cs2"))
    assert [describe(e) for e in mark(bob, alice)] == [("message", bob.jid, "cs2")]
    m = metrics(server)
    assert m["flushes_active"] == 1 and m["inactive_sessions"] == 0


def test_a_full_buffer_flushes_everything_in_order(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path, csi={"max_stanzas": 3})
    alice, bob = pair(server, raw_factory, "other")
    go_inactive(alice)
    for i in range(3):
        bob.send(chat_state(alice.jid, "composing", f"cs{i}"))
    assert mark(bob, alice) == []
    bob.send(chat_state(alice.jid, "paused", "cs3"))  # the fourth does not fit
    got = read(alice, 4)
    assert [e.get("id") for e in got] == ["cs0", "cs1", "cs2", "cs3"]
    for held in got[:3]:
        assert_held(held, server)
    assert delay_of(got[3]) is None
    # Empty again: the next one is held.
    bob.send(chat_state(alice.jid, "composing", "cs4"))
    assert mark(bob, alice) == []
    assert metrics(server)["flushes_full"] == 1


def test_the_latest_presence_of_each_contact_only_with_the_order_kept(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path, users=("alice", "bob", "carol"))
    alice, bob = pair(server, raw_factory, "same")
    carol = login(server, raw_factory, "carol", "desk")  # not a contact: directed presence only
    go_inactive(alice)
    bob.send(directed(alice.jid, "b1"))
    assert mark(bob, alice) == []
    carol.send(directed(alice.jid, "c1"))
    assert mark(carol, alice) == []
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    bob.send(directed(alice.jid, "b2"))
    bob.send(f"<presence to='{alice.jid}' type='unavailable'><status>b3</status></presence>")
    # Each sender's marker before the other one sends: two senders' stanzas
    # reach alice's loop in no set order otherwise.
    assert mark(bob, alice) == []
    carol.send(directed(alice.jid, "c2"))
    assert mark(carol, alice) == []
    bob.message(alice.jid, "flush")
    got = read(alice, 4)
    assert [describe(e)[1:] for e in got] == [
        (bob.jid, "cs1"), (bob.jid, "b3"), (carol.jid, "c2"), (bob.jid, got[3].get("id"))]
    assert got[1].get("type") == "unavailable"


@pytest.mark.parametrize("urgent", ["omemo", "propose", "iq", "subscribe", "error"])
def test_urgent_stanzas_flush_first(server_factory, tmp_path, raw_factory, urgent):
    server = csi_server(server_factory, tmp_path, users=("alice", "bob", "carol"))
    alice, bob = pair(server, raw_factory, "other")
    # A subscription request from bob would be answered by the server (they
    # are subscribed already, RFC 6121 3.1.3): carol asks.
    sender = login(server, raw_factory, "carol", "desk") if urgent == "subscribe" else bob
    go_inactive(alice)
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert mark(bob, alice) == []
    stanza = {
        "omemo": f"<message to='{alice.jid}' type='chat' id='u1'><encrypted xmlns='eu.siacs.conversations.axolotl'>"
                 "<header sid='1'/></encrypted></message>",
        "propose": f"<message to='{alice.jid}' type='chat' id='u1'><propose xmlns='urn:xmpp:jingle-message:0' "
                   "id='call1'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>",
        "iq": f"<iq to='{alice.jid}' type='get' id='u1'><query xmlns='jabber:iq:version'/></iq>",
        "subscribe": f"<presence to='alice@{server.domain}' type='subscribe' id='u1'/>",
        "error": f"<message to='{alice.jid}' type='error' id='u1'><error type='cancel'>"
                 "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    }[urgent]
    sender.send(stanza)
    got = read(alice, 2)
    assert got[0].get("id") == "cs1"
    assert_held(got[0], server)
    assert got[1].get("id") == "u1"
    assert delay_of(got[1]) is None


def test_configured_important_payloads_flush(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path, csi={"important_payloads": ["{urn:example:wake}",
                                                                              "{urn:example:named}ring"]})
    alice, bob = pair(server, raw_factory, "same")
    go_inactive(alice)
    bob.send(f"<message to='{alice.jid}' id='n1'><other xmlns='urn:example:named'/></message>")
    assert mark(bob, alice) == []  # the namespace alone is not enough where a name is given
    bob.send(f"<message to='{alice.jid}' id='n2'><ring xmlns='urn:example:named'/></message>")
    assert [e.get("id") for e in read(alice, 2)] == ["n1", "n2"]
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert mark(bob, alice) == []
    bob.send(f"<message to='{alice.jid}' id='w1'><anything xmlns='urn:example:wake'/></message>")
    assert [e.get("id") for e in read(alice, 2)] == ["cs1", "w1"]


@pytest.mark.parametrize("options, reason", [
    ({"important_payloads": ["urn:example:no-braces"]}, "important_payloads"),
    ({"max_stanzas": 0}, "max_stanzas"),
    ({"max_bytes": 10}, "max_bytes"),
])
def test_bad_options_refuse_to_start(server_factory, tmp_path, options, reason):
    from test_modules import start_failure
    log = start_failure(server_factory, modules={"mod_csi": options})
    assert "mod_csi" in log and reason in log, log


def test_the_clients_own_traffic_flushes(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, "same")
    go_inactive(alice)
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert mark(bob, alice) == []
    # alice's ping: her radio is up, what was held comes before the answer.
    assert [e.get("id") for e in alice.nothing_before_sync()] == ["cs1"]
    assert metrics(server)["flushes_client"] == 1


def test_without_flush_on_client_traffic_a_ping_is_answered_and_nothing_else(server_factory, tmp_path,
                                                                            raw_factory):
    server = csi_server(server_factory, tmp_path, csi={"flush_on_client_traffic": False, "delay_stamp": False})
    alice, bob = pair(server, raw_factory, "same")
    go_inactive(alice)
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert mark(bob, alice) == []
    assert alice.nothing_before_sync() == []  # the answer passes, the chat state waits
    alice.send(ACTIVE)
    got = alice.nothing_before_sync()
    assert [e.get("id") for e in got] == ["cs1"]
    assert delay_of(got[0]) is None  # delay_stamp: false


# -- nonzas ----------------------------------------------------------------------

def test_inactive_before_binding_applies_from_binding(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    subscribe_both(server, raw_factory, "alice", "bob")
    bob = login(server, raw_factory, "bob", "home")
    alice = authenticated(server, raw_factory, "alice")
    alice.send(INACTIVE)
    alice.bind("phone")
    # No initial presence: the answers to its probes are sent around the
    # outgoing filters (session_send_tracked), they would not be held.
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert mark(bob, alice) == []
    bob.message(alice.jid, "hello")
    got = read(alice, 2)
    assert got[0].get("id") == "cs1"
    assert_held(got[0], server)
    assert got[1].findtext(q(NS_CLIENT, "body")) == "hello"


def test_an_unknown_element_of_the_namespace_is_unsupported(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "phone")
    alice.send(f"<csi xmlns='{NS_CSI}'/>")
    with pytest.raises(StreamErrorReceived) as error:
        alice.expect(PRESENCE)
    assert error.value.condition == "unsupported-stanza-type"


def test_inactive_twice_and_active_twice_are_harmless(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, "same")
    alice.send(ACTIVE + INACTIVE + INACTIVE)
    alice.sync()
    assert metrics(server)["inactive_sessions"] == 1
    alice.send(ACTIVE + ACTIVE)
    alice.sync()
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert [e.get("id") for e in mark(bob, alice)] == ["cs1"]
    assert metrics(server)["inactive_sessions"] == 0


# -- stream management, close, reload ----------------------------------------------

def test_held_stanzas_are_counted_when_written(server_factory, tmp_path, raw_factory):
    """mod_test_stream's outgoing filter (priority 50, as stream management's
    counting one at 90) sees a held stanza only when mod_csi releases it."""
    server = csi_server(server_factory, tmp_path, csi={"flush_on_client_traffic": False})
    alice, bob = pair(server, raw_factory, "other")

    def h():
        return int(nonza(alice, f"<r xmlns='{NS_STREAM_TEST}'/>", "a").get("h"))

    h0 = h()
    go_inactive(alice)  # + the ping's answer
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    bob.send(chat_state(alice.jid, "paused", "cs2"))
    assert mark(bob, alice) == []  # + the marker
    assert h() == h0 + 2
    bob.message(alice.jid, "now")
    got = read(alice, 3)
    assert [e.get("id") for e in got[:2]] == ["cs1", "cs2"]
    assert h() == h0 + 5


def test_a_detached_session_gets_what_was_held_after_resuming_active(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path, csi={"flush_on_client_traffic": False})
    alice, bob = pair(server, raw_factory, "other")
    enabled = nonza(alice, f"<enable xmlns='{NS_STREAM_TEST}'/>", "enabled")
    session_id, loop = int(enabled.get("id")), int(enabled.get("loop"))
    go_inactive(alice)
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    bob.send(directed(alice.jid, "away"))
    assert mark(bob, alice) == []
    end_abruptly(alice, "reset")
    stream = stream_on_loop(server, raw_factory, "alice", 1 - loop)
    stream.jid = alice.jid
    resumed = nonza(stream, f"<resume xmlns='{NS_STREAM_TEST}' previd='{session_id}'/>", "resumed")
    assert resumed.get("previd") == str(session_id)
    got = read(stream, 2)
    assert [describe(e) for e in got] == [("message", bob.jid, "cs1"), ("presence", bob.jid, "away")]
    # The resumed stream starts active: nothing waits any more.
    bob.send(chat_state(alice.jid, "paused", "cs2"))
    assert [e.get("id") for e in mark(bob, stream)] == ["cs2"]
    m = metrics(server)
    assert m["flushes_detach"] == 1 and m["inactive_sessions"] == 0


def test_held_messages_are_routed_again_when_the_session_closes(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, "other")
    desk = login(server, raw_factory, "alice", "desk")
    expect_presence(alice, desk.jid)
    go_inactive(alice)
    bob.send(directed(alice.jid, "for the phone only"))
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    assert mark(bob, alice) == []
    alice.close()
    # RFC 6121 8.5.3.2.1: the chat message for the resource that is gone goes
    # to the bare JID: the desk. The held presence was dropped: routed, it
    # would have come first (the same task routes them in order).
    before = desk.expect_nothing_until(lambda e: e.tag == MESSAGE and e.get("id") == "cs1")
    assert [e for e in before if e.tag == PRESENCE and e.findtext(q(NS_CLIENT, "status")) == "for the phone only"] == []
    deadline = time.monotonic() + 10
    while metrics(server).get("rerouted", 0) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_hot_reload_keeps_the_state_and_what_was_held(server_factory, tmp_path, raw_factory):
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, "other")
    go_inactive(alice)
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    bob.send(directed(alice.jid, "before"))
    assert mark(bob, alice) == []
    reloaded = server.ctl("module", "reload", "mod_csi")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    bob.send(directed(alice.jid, "after"))  # still inactive: supersedes the restored one
    bob.send(chat_state(alice.jid, "paused", "cs2"))
    assert mark(bob, alice) == []
    bob.message(alice.jid, "flush")
    got = read(alice, 4)
    assert [describe(e)[2] for e in got[:3]] == ["cs1", "after", "cs2"]
    assert got[3].findtext(q(NS_CLIENT, "body")) == "flush"
    assert metrics(server)["inactive_sessions"] == 1


def test_an_unload_sends_what_was_held_in_order(server_factory, tmp_path, raw_factory):
    # The held stanzas are the module's: unloaded, it sends them (through the
    # filters after its own) before it goes, instead of dropping them.
    server = csi_server(server_factory, tmp_path)
    alice, bob = pair(server, raw_factory, "other")
    go_inactive(alice)
    bob.send(chat_state(alice.jid, "composing", "cs1"))
    bob.send(directed(alice.jid, "held"))
    bob.send(chat_state(alice.jid, "paused", "cs2"))
    assert mark(bob, alice) == []
    unloaded = server.ctl("module", "unload", "mod_csi")
    assert unloaded.returncode == 0, unloaded.stdout + unloaded.stderr
    got = read(alice, 3)
    assert [describe(e)[2] for e in got] == ["cs1", "held", "cs2"]
    # Without the module nothing is held any more, and nothing came twice.
    bob.send(chat_state(alice.jid, "active", "cs3"))
    assert [describe(e)[2] for e in mark(bob, alice)] == ["cs3"]


# -- slixmpp ---------------------------------------------------------------------

def test_slixmpp_xep_0352(server_factory, tmp_path, raw_factory):
    from slix_driver import SlixRunner

    server = csi_server(server_factory, tmp_path)
    bob = login(server, raw_factory, "bob", "home")
    runner = SlixRunner()
    try:
        alice = runner.client(f"alice@{server.domain}/slix", PASSWORD, mech="SCRAM-SHA-256", channel_binding=False)
        alice.xmpp.register_plugin("xep_0352")
        # slixmpp's "message" event wants a body: chat states come as "chatstate".
        alice.xmpp.register_plugin("xep_0085")
        alice.xmpp.add_event_handler("chatstate", lambda m: alice.messages.put_nowait(m))
        assert runner.run(alice.connect(server.c2s_port)) is True
        plugin = alice.xmpp["xep_0352"]
        assert plugin.enabled  # the feature was offered

        async def scenario():
            plugin.send_inactive()
            await alice.sync()
            bob.send(chat_state(alice.jid, "composing", "cs1"))
            bob.message(alice.jid, "hi from bob")
            first = await alice.next_message()
            second = await alice.next_message()
            plugin.send_active()
            await alice.sync()
            return first, second

        first, second = runner.run(scenario())
        assert first["id"] == "cs1"
        assert first.xml.find(q(NS_CHATSTATES, "composing")) is not None
        delay = first.xml.find(q(NS_DELAY, "delay"))
        assert delay is not None and delay.get("from") == f"alice@{server.domain}"  # held by mod_csi
        assert second["body"] == "hi from bob"
        assert metrics(server)["inactive_sessions"] == 0
    finally:
        runner.close()
