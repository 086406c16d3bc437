"""mod_push (XEP-0357) against a running parleyd, with external components
(XEP-0114) as app servers: slixmpp's ComponentXMPP and a raw component.

The account feature; <enable/> and <disable/> with their errors; a push for
a message stored offline with the summary form (no body by default) and the
publish-options intact; none for a message delivered to a connected session
(the next push's message-count proves it); disable stops pushes; an app
server's error removes the registration.

And a push for a message that waits for a detached stream-management
session (XEP-0198: the client's socket reset, the session kept)."""

import asyncio
import socket
import struct
import time
import xml.etree.ElementTree as ET

import pytest
import slixmpp

from component_client import NS_COMPONENT, RawComponent
from conftest import PASSWORD
from parley_harness import ParleyServer, free_port
from rawxmpp import NS_DISCO_INFO, RawClient, q, stanza_error_condition

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
SECRET = "app-secret"
PUBLISH_OPTIONS = ("<x xmlns='jabber:x:data' type='submit'>"
                   "<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"
                   "<field var='secret'><value>eruio234vzxc2kla-91</value></field>"
                   "<field var='endpoint'><value>https://push.example/a&amp;b</value></field></x>")


@pytest.fixture(scope="module")
def pserver(tmp_path_factory, binaries):
    port = free_port()
    server = ParleyServer(
        tmp_path_factory.mktemp("push"), binaries["parleyd"], binaries["parleyctl"],
        modules={"mod_disco": {}, "mod_ping": {}, "mod_offline": {},
                 "mod_stream_mgmt": {"ack_request_stanzas": 1000000, "ack_request_seconds": 0},
                 "mod_push": {"min_push_interval_ms": 0, "retry_base_ms": 100, "max_retries": 1,
                              "iq_timeout_ms": 5000}},
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {"app.localhost": {"password": SECRET}}}])
    server.component_port = port
    server.start()
    for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
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


def login(server, made, user, resource="r"):
    c = RawClient(server.c2s_port)
    made.append(c)
    c.login(user, PASSWORD, resource=resource, presence=True)
    return c


def enable(client, node, options=""):
    reply = client.iq("set", f"<enable xmlns='{NS_PUSH}' jid='app.localhost' node='{node}'>{options}</enable>",
                      to=client.jid.split("/")[0])
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")


def form_fields(x):
    return {f.get("var"): [v.text for v in f.findall(q(NS_DATA, "value"))] for f in x.findall(q(NS_DATA, "field"))}


def expect_push(app, node, answer="result", condition=None):
    """The next publish to `node` at the raw app server; answered."""
    iq = app.expect(q(NS_COMPONENT, "iq"),
                    match=lambda e: e.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish") is not None)
    publish = iq.find(f"{{{NS_PUBSUB}}}pubsub/{{{NS_PUBSUB}}}publish")
    if answer == "result":
        app.send(f"<iq type='result' id='{iq.get('id')}' from='app.localhost' to='{iq.get('from')}'/>")
    else:
        app.send(f"<iq type='error' id='{iq.get('id')}' from='app.localhost' to='{iq.get('from')}'>"
                 f"<error type='{answer}'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
    return iq, publish


def counters(server):
    out = server.ctl("status").stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


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
        assert pub.get("from") == "carol@localhost" and pub.get("type") == "set"
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
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
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
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
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


def test_push_for_a_detached_session(pserver, made):
    app = RawComponent(pserver.component_port, "app.localhost")
    made.append(app)
    app.connect_as(SECRET)
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
    assert iq.get("from") == "frank@localhost"
    x = publish.find(f"{{{NS_PUBSUB}}}item/{{{NS_PUSH}}}notification/{{{NS_DATA}}}x")
    fields = form_fields(x)
    assert fields["message-count"] == ["1"]
    assert fields["last-message-sender"] == [bob.jid]
