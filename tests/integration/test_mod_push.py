"""mod_push (XEP-0357) against a running parleyd, with external components
(XEP-0114) as app servers: slixmpp's ComponentXMPP and a raw component.

The account feature; <enable/> and <disable/> with their errors; a push for
a message stored offline with the summary form (no body by default) and the
publish-options intact; none for a message delivered to a connected session
(the next push's message-count proves it); disable stops pushes; an app
server's error removes the registration.

And a push for a message that waits for a detached stream-management
session (XEP-0198: the client's socket reset, the session kept).

Issue 14, second part: the HTTP webhook (a Python http.server on 127.0.0.1
gets the HMAC-signed JSON; one that hangs delays no one and times out), a
push for an urgent message to a CSI-inactive session (none once active), and
group chat messages for room members who are not in the room or whose joined
session is detached, and none for a member who is online elsewhere and active.

Notifications come from the server's JID (XEP-0357 0.3, as Prosody and
ejabberd send them). An app server's affiliation change notice (XEP-0357
section 8, remote disabling) removes that registration.

The helpers (the app servers, publishes awaited and answered) are in
push_app.py; the tests that need a server of their own (the move of the old
table into the map store, the per-device rate limit) in test_mod_push_store.py."""

import asyncio
import hashlib
import hmac
import http.server
import json
import queue
import socket
import threading
import struct
import time
import xml.etree.ElementTree as ET

import pytest
import slixmpp

from component_client import NS_COMPONENT, RawComponent
from conftest import PASSWORD
from parley_harness import ParleyServer, free_port
from push_app import (NS_DATA, NS_PUBSUB, NS_PUSH, PUBLISH_OPTIONS, SECRET, counters, enable, expect_push,
                      form_fields, login, next_push, push_to, slix_app, summary)
from rawxmpp import NS_DISCO_INFO, q, stanza_error_condition

WEBHOOK_SECRET = "webhook-secret-0123456789"
WEBHOOK_TIMEOUT_MS = 2000
HANG_USER = "hang@localhost"  # the webhook never answers notifications for this account


class Webhook:
    """An HTTP webhook on 127.0.0.1 (Python's http.server, a thread per
    request): records what is POSTed; never answers for HANG_USER."""

    def __init__(self):
        self.received = queue.Queue()
        self.hung = queue.Queue()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                doc = json.loads(raw)
                if doc.get("recipient") == HANG_USER:
                    outer.hung.put(time.monotonic())
                    outer.release.wait(30)  # accepted, read, never answered
                    self.close_connection = True
                    return
                outer.received.put((doc, raw, dict(self.headers)))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/push"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, recipient, timeout=10):
        """The next POST for `recipient` (others' are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            doc, raw, headers = self.received.get(timeout=max(0.01, deadline - time.monotonic()))
            if doc.get("recipient") == recipient:
                return doc, raw, headers

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture(scope="module")
def pserver(tmp_path_factory, binaries, webhook):
    port = free_port()
    server = ParleyServer(
        tmp_path_factory.mktemp("push"), binaries["parleyd"], binaries["parleyctl"],
        modules={"mod_disco": {}, "mod_ping": {}, "mod_offline": {}, "mod_csi": {}, "mod_muc": {},
                 "mod_stream_mgmt": {"ack_request_stanzas": 1000000, "ack_request_seconds": 0},
                 "mod_push": {"min_push_interval_ms": 0, "retry_base_ms": 100, "max_retries": 1,
                              "iq_timeout_ms": 5000, "notify_csi_inactive": True,
                              "webhook_url": webhook.url, "webhook_secret": WEBHOOK_SECRET,
                              "webhook_timeout_ms": WEBHOOK_TIMEOUT_MS}},
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {"app.localhost": {"password": SECRET}}}])
    server.component_port = port
    server.start()
    for user in ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hana", "hang", "ivan", "judy", "kate",
                 "lena", "mona", "nora", "olga", "pia", "quinn", "sara", "uma"):
        server.register(user, PASSWORD)
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, server.log()[-20000:]
    assert not server.sanitizer_reports(), server.sanitizer_reports()[:20]


@pytest.fixture
def made(request, pserver):
    request.node._parley_servers = [pserver]  # its log in the report of a failed test
    clients = []
    yield clients
    for c in clients:
        c.close(timeout=2)


def test_feature_and_enable_errors(pserver, made):
    alice = login(pserver, made, "alice")
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to="alice@localhost")
    assert NS_PUSH in {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    # no jid: bad-request; a form that is not publish-options: bad-request
    reply = alice.iq("set", f"<enable xmlns='{NS_PUSH}' node='n'/>", to="alice@localhost")
    assert stanza_error_condition(reply)[1] == "bad-request"
    reply = alice.iq("set", f"<enable xmlns='{NS_PUSH}' jid='app.localhost' node='n'>"
                            f"<x xmlns='jabber:x:data'><field var='FORM_TYPE'><value>other</value></field></x>"
                            f"</enable>", to="alice@localhost")
    assert stanza_error_condition(reply)[1] == "bad-request"
    reply = alice.iq("set", f"<disable xmlns='{NS_PUSH}'/>", to="alice@localhost")
    assert stanza_error_condition(reply)[1] == "bad-request"
    # someone else's account: nothing to see there
    bob = login(pserver, made, "bob")
    reply = bob.iq("set", f"<enable xmlns='{NS_PUSH}' jid='app.localhost' node='n'/>", to="alice@localhost")
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_max_registrations_and_re_enabling(pserver, made):
    """max_registrations (20 by default) per account: one more is refused with
    resource-constraint; enabling a service and node again replaces its
    options (one registration, XEP-0357 section 5) and is not refused."""
    sara = login(pserver, made, "sara", "phone")
    for i in range(20):
        enable(sara, f"n{i:02d}")
    reply = sara.iq("set", f"<enable xmlns='{NS_PUSH}' jid='app.localhost' node='one-more'/>", to="sara@localhost")
    assert stanza_error_condition(reply)[1] == "resource-constraint"
    enable(sara, "n00", PUBLISH_OPTIONS)  # the same node again: its options replaced
    reply = sara.iq("set", f"<disable xmlns='{NS_PUSH}' jid='app.localhost'/>", to="sara@localhost")
    assert reply.get("type") == "result"
    enable(sara, "one-more")  # room again


def test_offline_push_with_summary_and_publish_options_slixmpp(pserver, made):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        app = slixmpp.ComponentXMPP("app.localhost", SECRET, "127.0.0.1", pserver.component_port)
        started = loop.create_future()
        publishes = asyncio.Queue()

        def on_iq(iq):
            publishes.put_nowait(ET.fromstring(str(iq)))
            iq.reply().send()
        app.register_handler(slixmpp.xmlstream.handler.Callback(
            "push publish", slixmpp.xmlstream.matcher.MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_PUBSUB}}}pubsub"),
            on_iq))
        app.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        app.connect()
        loop.run_until_complete(asyncio.wait_for(started, 20))

        carol = login(pserver, made, "carol", "phone")
        enable(carol, "carol-node", PUBLISH_OPTIONS)
        carol.close()
        bob = login(pserver, made, "bob", "desk")
        bob.message("carol@localhost", "secret text")
        pub = loop.run_until_complete(asyncio.wait_for(publishes.get(), 15))
        assert pub.get("from") == "localhost" and pub.get("type") == "set"  # the server's JID
        publish = pub.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
        assert publish.get("node") == "carol-node"
        x = publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x")
        fields = form_fields(x)
        assert fields["FORM_TYPE"] == ["urn:xmpp:push:summary"]
        assert fields["message-count"] == ["1"]
        assert fields["last-message-sender"] == ["bob@localhost/desk"]
        assert "last-message-body" not in fields  # include_body is off by default
        assert "secret text" not in ET.tostring(pub, "unicode")
        options = pub.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish-options/{{{NS_DATA}}}x")
        assert form_fields(options) == {
            "FORM_TYPE": ["http://jabber.org/protocol/pubsub#publish-options"],
            "secret": ["eruio234vzxc2kla-91"],
            "endpoint": ["https://push.example/a&b"]}
        deadline = time.monotonic() + 10
        while counters(pserver).get("mod_push.localhost.sent", "0") == "0":
            loop.run_until_complete(asyncio.sleep(0.05))  # slixmpp answers on its loop
            assert time.monotonic() < deadline, counters(pserver)
        done = app.disconnect()
        if asyncio.isfuture(done) or asyncio.iscoroutine(done):
            loop.run_until_complete(asyncio.wait_for(done, 10))
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)


def test_no_push_while_connected_and_disable_stops(pserver, made):
    app = slix_app(pserver, made)  # slixmpp's ComponentXMPP
    dave = login(pserver, made, "dave", "phone")
    enable(dave, "a-node")
    enable(dave, "z-witness")
    bob = login(pserver, made, "bob", "desk")
    # Connected and available: delivered, no push.
    bob.message(dave.jid, "while online")
    dave.expect_message("while online")
    dave.close()
    bob.message("dave@localhost", "while offline")
    # Both devices, in node order; message-count 1: the first message made no push.
    _, p1 = expect_push(app, "a-node")
    _, p2 = expect_push(app, "z-witness")
    assert [p1.get("node"), p2.get("node")] == ["a-node", "z-witness"]
    for p in (p1, p2):
        x = p.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x")
        assert form_fields(x)["message-count"] == ["1"]
    # disable one node: only the witness is pushed from now on.
    dave = login(pserver, made, "dave", "phone2")
    reply = dave.iq("set", f"<disable xmlns='{NS_PUSH}' jid='app.localhost' node='a-node'/>", to="dave@localhost")
    assert reply.get("type") == "result"
    dave.close()
    bob.message("dave@localhost", "after disable")
    iq, p = expect_push(app, "z-witness")
    assert p.get("node") == "z-witness"  # nothing for a-node came before it
    # disable without node: every node of the service.
    dave = login(pserver, made, "dave", "phone3")
    reply = dave.iq("set", f"<disable xmlns='{NS_PUSH}' jid='app.localhost'/>", to="dave@localhost")
    assert reply.get("type") == "result"
    enable(dave, "zz-witness2")
    dave.close()
    bob.message("dave@localhost", "after disable all")
    _, p = expect_push(app, "zz-witness2")
    assert p.get("node") == "zz-witness2"


def test_app_server_error_removes_the_registration(pserver, made):
    app = slix_app(pserver, made)  # slixmpp's ComponentXMPP
    erin = login(pserver, made, "erin", "phone")
    enable(erin, "a-gone")
    enable(erin, "z-witness")
    erin.close()
    bob = login(pserver, made, "bob", "desk")
    before = int(counters(pserver).get("mod_push.localhost.removed", "0"))
    bob.message("erin@localhost", "one")
    expect_push(app, "a-gone", answer="cancel", condition="item-not-found")
    expect_push(app, "z-witness")
    deadline = time.monotonic() + 10
    while int(counters(pserver).get("mod_push.localhost.removed", "0")) <= before:
        assert time.monotonic() < deadline, counters(pserver)
        time.sleep(0.05)  # polling a counter for the removal's commit
    bob.message("erin@localhost", "two")
    _, p = expect_push(app, "z-witness")
    assert p.get("node") == "z-witness"  # a-gone was removed


def test_no_retry_to_a_registration_disabled_meanwhile(pserver, made):
    """XEP-0357 §6: a service that is not enabled MUST NOT be published to,
    also by a retry that was waiting when the client disabled it."""
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
    lena = login(pserver, made, "lena", "phone")
    enable(lena, "l-node")
    lena.close()
    bob = login(pserver, made, "bob", "retry")
    bob.message("lena@localhost", "one")
    iq = app.expect(q(NS_COMPONENT, "iq"),
                    match=lambda e: e.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish") is not None)
    # Unanswered while the client disables the node ...
    lena = login(pserver, made, "lena", "phone2")
    reply = lena.iq("set", f"<disable xmlns='{NS_PUSH}' jid='app.localhost' node='l-node'/>", to="lena@localhost")
    assert reply.get("type") == "result"
    enable(lena, "l-witness")
    lena.close()
    before = int(counters(pserver).get("mod_push.localhost.dropped_disabled", "0"))
    # ... then a transient error: retried after the back-off, but the node is gone.
    app.send(f"<iq type='error' id='{iq.get('id')}' from='app.localhost' to='{iq.get('from')}'>"
             f"<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    deadline = time.monotonic() + 10
    while int(counters(pserver).get("mod_push.localhost.dropped_disabled", "0")) <= before:
        assert time.monotonic() < deadline, counters(pserver)
        time.sleep(0.05)  # polling a counter for the retry's decision
    bob.message("lena@localhost", "two")
    _, p = expect_push(app, "l-witness")  # the first publish since: nothing went to l-node
    assert p.get("node") == "l-witness"


def test_push_for_a_detached_session(pserver, made):
    app = slix_app(pserver, made)  # slixmpp's ComponentXMPP
    frank = login(pserver, made, "frank", "phone")
    enable(frank, "f-node")
    frank.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    enabled = frank.expect(q("urn:xmpp:sm:3", "enabled"))
    assert enabled.get("resume") in ("true", "1")
    before = int(counters(pserver).get("mod_stream_mgmt.localhost.detached", "0"))
    # The client's socket is reset (a phone losing its network).
    frank.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    frank.abort()
    deadline = time.monotonic() + 10
    while int(counters(pserver).get("mod_stream_mgmt.localhost.detached", "0")) <= before:
        assert time.monotonic() < deadline, counters(pserver)
        time.sleep(0.05)  # polling a counter for the server to notice the reset
    bob = login(pserver, made, "bob", "desk2")
    bob.message(frank.jid, "are you there?")
    iq, publish = expect_push(app, "f-node")
    assert iq.get("from") == "localhost"
    x = publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x")
    fields = form_fields(x)
    assert fields["message-count"] == ["1"]
    assert fields["last-message-sender"] == [bob.jid]


def test_push_for_encrypted_messages_and_calls_not_chat_states(pserver, made):
    """Worth waking a phone for without a body: an OMEMO message (the body is
    inside) and a call (XEP-0353 propose); not a chat state. Each from its own
    resource: the sender and the count of each push tell which message it is."""
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
    uma = login(pserver, made, "uma", "phone")
    enable(uma, "u-node")
    uma.close()
    typing = login(pserver, made, "bob", "typing")
    typing.send("<message to='uma@localhost' type='chat'>"
                "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    typing.sync()
    omemo = login(pserver, made, "bob", "omemo")
    omemo.send("<message to='uma@localhost' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'>"
               "<header sid='1'><iv>AAAA</iv></header><payload>BBBB</payload></encrypted>"
               "<store xmlns='urn:xmpp:hints'/></message>")
    _, p = expect_push(app, "u-node")
    fields = summary(p)
    assert fields["last-message-sender"] == [omemo.jid] and fields["message-count"] == ["1"], fields
    call = login(pserver, made, "bob", "call")
    call.send("<message to='uma@localhost' type='chat'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'>"
              "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>"
              "<store xmlns='urn:xmpp:hints'/></message>")
    _, p = expect_push(app, "u-node")
    fields = summary(p)
    assert fields["last-message-sender"] == [call.jid] and fields["message-count"] == ["2"], fields


# -- the HTTP webhook ------------------------------------------------------------------


def test_webhook_gets_signed_json(pserver, made, webhook):
    hana = login(pserver, made, "hana", "phone")
    hana.close()
    bob = login(pserver, made, "bob", "hook")
    bob.message("hana@localhost", "a private text")
    doc, raw, headers = webhook.wait_for("hana@localhost")
    assert headers["Content-Type"] == "application/json"
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Parley-Signature"] == expected
    assert doc["message_count"] == 1
    assert doc["last_message_sender"] == bob.jid
    assert "last_message_body" not in doc and b"a private text" not in raw  # include_body is off
    assert abs(doc["timestamp"] - time.time()) < 60
    deadline = time.monotonic() + 10
    while counters(pserver).get("mod_push.localhost.webhook_sent", "0") == "0":
        assert time.monotonic() < deadline, counters(pserver)
        time.sleep(0.05)  # polling a counter for the 204's arrival


def test_hanging_webhook_delays_nobody_and_times_out(pserver, made, webhook):
    bob = login(pserver, made, "bob", "hang")
    bob.message(HANG_USER, "wake up")
    first = webhook.hung.get(timeout=10)  # the POST is at the webhook, which never answers
    alice = login(pserver, made, "alice", "chat")
    carol = login(pserver, made, "carol", "chat")
    for i in range(3):  # round trips both ways while the webhook hangs
        alice.message(carol.jid, f"ping {i}")
        carol.expect_message(f"ping {i}")
        carol.message(alice.jid, f"pong {i}")
        alice.expect_message(f"pong {i}")
    alice.sync()
    carol.sync()
    # All of it happened before the webhook request timed out (its retry
    # comes only after the timeout).
    assert webhook.hung.empty()
    second = webhook.hung.get(timeout=10)  # timed out, retried after back-off
    assert second - first >= (WEBHOOK_TIMEOUT_MS - 200) / 1000


# -- client state indication (XEP-0352) ------------------------------------------------


def test_push_for_an_urgent_message_to_an_inactive_session_only(pserver, made):
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
    gina = login(pserver, made, "gina", "phone")
    enable(gina, "g-node")
    gina.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    gina.sync()
    bob_a = login(pserver, made, "bob", "csi-a")
    bob_a.message(gina.jid, "urgent while inactive")
    gina.expect_message("urgent while inactive")  # delivered: urgent stanzas are not held
    _, p = expect_push(app, "g-node")
    fields = form_fields(p.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
    assert fields["message-count"] == ["1"] and fields["last-message-sender"] == [bob_a.jid]
    gina.send("<active xmlns='urn:xmpp:csi:0'/>")
    gina.sync()
    bob_b = login(pserver, made, "bob", "csi-b")
    bob_b.message(gina.jid, "while active")
    gina.expect_message("while active")
    # The marker: a push for an offline message. Had the active one been
    # pushed, its publish (from csi-b, count 2) would come first.
    gina.close()
    bob_c = login(pserver, made, "bob", "csi-c")
    bob_c.message("gina@localhost", "now offline")
    _, p = expect_push(app, "g-node")
    fields = form_fields(p.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
    assert fields["last-message-sender"] == [bob_c.jid] and fields["message-count"] == ["2"]


# -- group chats ---------------------------------------------------------------------

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"


def join_room(client, room, nick):
    client.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
    client.expect(q("jabber:client", "message"),
                  match=lambda e: e.get("from", "").split("/")[0] == room
                  and e.find(q("jabber:client", "subject")) is not None)


def test_group_chat_pushes_for_absent_members_and_detached_occupants(pserver, made):
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
    room = "pushroom@conference.localhost"
    ivan = login(pserver, made, "ivan", "phone")  # a member, offline
    enable(ivan, "i-node")
    ivan.close()
    kate = login(pserver, made, "kate", "phone")  # no affiliation, offline: not woken
    enable(kate, "k-node")
    kate.close()
    judy = login(pserver, made, "judy", "phone")  # joined, then detached
    enable(judy, "j-node")
    alice = login(pserver, made, "alice", "muc")
    join_room(alice, room, "A")
    reply = alice.iq("set", f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query>",
                     to=room)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    reply = alice.iq("set", f"<query xmlns='{NS_MUC_ADMIN}'><item jid='ivan@localhost' affiliation='member'/>"
                            f"</query>", to=room)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    # The room tells offline ivan of his new affiliation (XEP-0045 status 101, a
    # normal message with a body from the room's bare JID): an offline message,
    # pushed like any; waited for here so that it cannot pass for the group
    # chat's push below.
    _, p = next_push(app)
    assert p.get("node") == "i-node"
    fields = form_fields(p.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
    assert fields["last-message-sender"] == [room] and fields["message-count"] == ["1"]
    join_room(judy, room, "J")
    judy.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    judy.expect(q("urn:xmpp:sm:3", "enabled"))
    before = int(counters(pserver).get("mod_stream_mgmt.localhost.detached", "0"))
    judy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    judy.abort()
    deadline = time.monotonic() + 10
    while int(counters(pserver).get("mod_stream_mgmt.localhost.detached", "0")) <= before:
        assert time.monotonic() < deadline, counters(pserver)
        time.sleep(0.05)  # polling a counter for the server to notice the reset
    alice.message(room, "hello room", type_="groupchat")
    pushes = {}
    for _ in range(2):
        iq, p = next_push(app)
        pushes[p.get("node")] = (iq, p)
    assert set(pushes) == {"i-node", "j-node"}
    # The group chat's push names its sender, room/nick (ivan's counts the status 101 message too).
    for node, count in (("i-node", "2"), ("j-node", "1")):
        iq, p = pushes[node]
        assert iq.get("from") == "localhost"
        fields = form_fields(p.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
        assert fields["last-message-sender"] == [f"{room}/A"] and fields["message-count"] == [count]
    # kate (no affiliation) was not woken: her next push counts 1 and comes from this chat message.
    alice.message("kate@localhost", "direct")
    _, p = next_push(app)
    assert p.get("node") == "k-node"
    fields = form_fields(p.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
    assert fields["message-count"] == ["1"] and fields["last-message-sender"] == [alice.jid]


def test_group_chat_push_slixmpp(pserver, made):
    """The same with slixmpp: a room owner (xep_0045) makes an offline user a
    member and talks; the member's app server, a slixmpp ComponentXMPP, gets
    the notification."""
    from slix_driver import SlixRunner
    mona = login(pserver, made, "mona", "phone")
    enable(mona, "m-node")
    mona.close()
    runner = SlixRunner()
    app = slixmpp.ComponentXMPP("app.localhost", SECRET, "127.0.0.1", pserver.component_port)
    try:
        started = runner.loop.create_future()
        publishes = asyncio.Queue()

        def on_iq(iq):
            publishes.put_nowait(ET.fromstring(str(iq)))
            iq.reply().send()
        app.register_handler(slixmpp.xmlstream.handler.Callback(
            "push publish", slixmpp.xmlstream.matcher.MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_PUBSUB}}}pubsub"),
            on_iq))
        app.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        app.connect()
        nora = runner.client("nora@localhost/slix", PASSWORD)
        nora.xmpp.register_plugin("xep_0045")
        room = "slixroom@conference.localhost"

        async def scenario():
            await asyncio.wait_for(started, 20)
            assert await nora.connect(pserver.c2s_port) is True
            muc = nora.xmpp["xep_0045"]
            await muc.join_muc_wait(room, "N", timeout=10)
            await muc.set_room_config(room, nora.xmpp["xep_0004"].make_form(ftype="submit"))
            await muc.set_affiliation(room, "member", jid="mona@localhost")
            # First the push of the room's status 101 message to offline mona
            # (her new affiliation), then the group chat's.
            notice = await asyncio.wait_for(publishes.get(), 15)
            nora.xmpp.send_message(mto=room, mbody="hello from slixmpp", mtype="groupchat")
            return notice, await asyncio.wait_for(publishes.get(), 15)
        notice, pub = runner.run(scenario())
        for iq, sender, count in ((notice, room, "1"), (pub, f"{room}/N", "2")):
            assert iq.get("from") == "localhost"
            publish = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
            assert publish.get("node") == "m-node"
            fields = form_fields(publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x"))
            assert fields["last-message-sender"] == [sender] and fields["message-count"] == [count]
        assert "hello from slixmpp" not in ET.tostring(pub, "unicode")
    finally:
        done = app.disconnect()
        if asyncio.isfuture(done) or asyncio.iscoroutine(done):
            try:
                runner.run(done, timeout=10)
            except Exception:
                pass
        runner.close()


def test_reload_cancels_a_hanging_webhook_request(pserver, made, webhook):
    """A module's HTTP requests end with it: a reload of mod_push while its
    webhook hangs is not held up by the request (cancelled, its callback
    freed unrun), and the new code's webhook works."""
    while not webhook.hung.empty():
        webhook.hung.get_nowait()
    bob = login(pserver, made, "bob", "reload")
    bob.message(HANG_USER, "hang again")
    arrived = webhook.hung.get(timeout=10)
    reloaded = pserver.ctl("module", "reload", "mod_push")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    # The reload answers once the old instance has nothing in flight: had the
    # request not been cancelled, only after its timeout (2 s after it left).
    assert time.monotonic() - arrived < 0.75 * WEBHOOK_TIMEOUT_MS / 1000
    bob.message("hana@localhost", "after the reload")
    doc, _, _ = webhook.wait_for("hana@localhost")
    assert doc["last_message_sender"] == bob.jid


def test_no_groupchat_push_for_a_member_online_elsewhere(pserver, made):
    """Regression: a room member whose client is connected and active but not
    joined to the room was pushed for the room's messages. Pushes are for
    users who are offline or whose sessions all sleep (detached, or
    CSI-inactive): pia (active, not in the room) is not pushed; quinn (her
    only session inactive, not in the room) is."""
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
    room = "awakeroom@conference.localhost"
    pia = login(pserver, made, "pia", "desk")
    enable(pia, "p-node")
    quinn = login(pserver, made, "quinn", "phone")
    enable(quinn, "q-node")
    quinn.send("<inactive xmlns='urn:xmpp:csi:0'/>")
    quinn.sync()
    alice = login(pserver, made, "alice", "awake")
    join_room(alice, room, "A")
    reply = alice.iq("set", f"<query xmlns='{NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query>",
                     to=room)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    reply = alice.iq("set", f"<query xmlns='{NS_MUC_ADMIN}'><item jid='pia@localhost' affiliation='member'/>"
                            f"<item jid='quinn@localhost' affiliation='member'/></query>", to=room)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    # The status 101 notices reach both clients; quinn's, urgent for an
    # inactive session, is pushed (notify_csi_inactive).
    pia.expect_message()
    _, p, others = push_to(app, "q-node")
    assert summary(p)["last-message-sender"] == [room]
    assert "p-node" not in [o.get("node") for o in others]
    alice.message(room, "hello awake", type_="groupchat")
    alice.expect(q("jabber:client", "message"),
                 match=lambda e: e.get("from") == f"{room}/A" and e.findtext(q("jabber:client", "body")) == "hello awake")
    _, p, others = push_to(app, "q-node")
    fields = summary(p)
    assert fields["last-message-sender"] == [f"{room}/A"] and fields["message-count"] == ["2"]
    assert "p-node" not in [o.get("node") for o in others]
    # The marker: pia goes offline and gets a direct message. Had the room's
    # message been pushed to her, it would be counted here (2) and its
    # publish would come first.
    pia.close()
    alice.message("pia@localhost", "now you are offline")
    _, p, others = push_to(app, "p-node")
    fields = summary(p)
    assert fields["last-message-sender"] == [alice.jid] and fields["message-count"] == ["1"], fields


def test_remote_disabling_by_the_app_server_slixmpp(pserver, made):
    """XEP-0357 section 8: the app server (a slixmpp ComponentXMPP) tells the
    user's bare JID that a node's publish affiliation is gone; that
    registration is removed, in XEP-0357's shape and in XEP-0060's. A notice
    that keeps a publishing affiliation, or one from another sender, removes
    nothing."""
    from slix_driver import SlixRunner
    olga = login(pserver, made, "olga", "phone")
    for node in ("a-gone", "b-gone", "c-kept", "d-kept", "z-witness"):
        enable(olga, node)
    olga.close()
    # Not the app server: bob's notice about d-kept removes nothing.
    bob = login(pserver, made, "bob", "spoof")
    bob.send(f"<message to='olga@localhost' id='spoof'><pubsub xmlns='{NS_PUBSUB}' node='d-kept'>"
             f"<affiliation jid='olga@localhost' affiliation='none'/></pubsub></message>")
    bob.sync()
    before = int(counters(pserver).get("mod_push.localhost.remote_disabled", "0"))
    runner = SlixRunner()
    app = slixmpp.ComponentXMPP("app.localhost", SECRET, "127.0.0.1", pserver.component_port)
    try:
        started = runner.loop.create_future()
        publishes = asyncio.Queue()

        def on_iq(iq):
            publishes.put_nowait(ET.fromstring(str(iq)))
            iq.reply().send()
        app.register_handler(slixmpp.xmlstream.handler.Callback(
            "push publish", slixmpp.xmlstream.matcher.MatchXPath(f"{{{NS_COMPONENT}}}iq/{{{NS_PUBSUB}}}pubsub"),
            on_iq))
        app.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        app.connect()

        def notice(payload):
            m = app.make_message(mto="olga@localhost", mfrom="app.localhost")
            m.append(ET.fromstring(payload))
            m.send()

        async def scenario():
            await asyncio.wait_for(started, 20)
            notice(f"<pubsub xmlns='{NS_PUBSUB}' node='a-gone'>"
                   f"<affiliation jid='olga@localhost' affiliation='none'/></pubsub>")
            notice(f"<pubsub xmlns='{NS_PUBSUB}'><affiliations node='b-gone'>"
                   f"<affiliation jid='localhost' affiliation='outcast'/></affiliations></pubsub>")
            notice(f"<pubsub xmlns='{NS_PUBSUB}' node='c-kept'>"
                   f"<affiliation jid='olga@localhost' affiliation='publish-only'/></pubsub>")
            deadline = time.monotonic() + 10
            while int(counters(pserver).get("mod_push.localhost.remote_disabled", "0")) < before + 2:
                assert time.monotonic() < deadline, counters(pserver)
                await asyncio.sleep(0.05)  # polling a counter for the removals' commits
            bob.message("olga@localhost", "after the notices")
            first = await asyncio.wait_for(publishes.get(), 15)
            second = await asyncio.wait_for(publishes.get(), 15)
            third = await asyncio.wait_for(publishes.get(), 15)
            return [first, second, third]
        pubs = runner.run(scenario())
        # In node order, the removed ones would have come first.
        nodes = [p.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish").get("node") for p in pubs]
        assert nodes == ["c-kept", "d-kept", "z-witness"]
        assert int(counters(pserver).get("mod_push.localhost.remote_disabled", "0")) == before + 2
    finally:
        done = app.disconnect()
        if asyncio.isfuture(done) or asyncio.iscoroutine(done):
            try:
                runner.run(done, timeout=10)
            except Exception:
                pass
        runner.close()
