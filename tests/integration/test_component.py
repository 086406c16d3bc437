"""XEP-0114 external components (jabber:component:accept) against a running
parleyd: the handshake (right secret, wrong secret, unknown domain, wrong
namespace, a second connection for a connected domain), stanzas both ways
between components and local users (raw sockets and slixmpp's
ComponentXMPP), bounces for a configured component that is not connected,
reconnection, the host's disco#items, and a component that stops reading:
its queue fills and what comes for it is bounced while other users chat on;
its queue length is in parleyctl status and in /metrics.

One server for the whole file (module scope); every test uses its own
component domains or leaves the ones it shares connected as it found them."""

import asyncio
import http.client
import itertools
import socket
import struct
import time

import pytest
import slixmpp

from prometheus_client.parser import text_string_to_metric_families

from component_client import HANDSHAKE, NS_COMPONENT, RawComponent, error_condition, handshake_digest
from conftest import PASSWORD
from parley_harness import ParleyServer, free_port
from rawxmpp import NS_CLIENT, RawClient, q, stanza_error_condition

SECRETS = {
    "push.localhost": "push-secret",
    "echo.localhost": "echo-secret",
    "absent.localhost": "absent-secret",
    "slow.localhost": "slow-secret",
    "slix.localhost": "slix-secret",
    "twice.localhost": "twice-secret",
    "gone.localhost": "gone-secret",
}
MAX_QUEUE = 40
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
CMESSAGE = q(NS_COMPONENT, "message")
CIQ = q(NS_COMPONENT, "iq")
MESSAGE = q(NS_CLIENT, "message")


@pytest.fixture(scope="module")
def cserver(tmp_path_factory, binaries):
    port = free_port()
    http_port = free_port()
    server = ParleyServer(
        tmp_path_factory.mktemp("component"), binaries["parleyd"], binaries["parleyctl"],
        limits={"max_component_queue": MAX_QUEUE},
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {d: {"password": s} for d, s in SECRETS.items()}},
                         {"port": http_port, "ip": "127.0.0.1", "module": "http"}])
    server.component_port = port
    server.http_port = http_port
    server.start()
    for user in ("alice", "bob", "carol"):
        server.register(user, PASSWORD)
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, server.log()[-20000:]
    assert not server.sanitizer_reports(), server.sanitizer_reports()[:20]


# One server for the module: each login gets a resource of its own, so that a
# previous test's session of the same full JID, still leaving, never meets
# the new one (its exit or unavailable presence reaching the new session).
_resources = (f"r{n}" for n in itertools.count(1))


@pytest.fixture
def clients(request, cserver):
    request.node._parley_servers = [cserver]  # its log in the report of a failed test
    made = []

    def component(domain, secret=None, **kwargs):
        c = RawComponent(cserver.component_port, domain, **kwargs)
        made.append(c)
        if secret is not None:
            c.connect_as(secret)
        return c

    def user(name, resource=None):
        resource = resource or next(_resources)
        c = RawClient(cserver.c2s_port)
        made.append(c)
        c.login(name, PASSWORD, resource=resource, presence=True)
        return c

    component.user = user
    yield component
    for c in made:
        c.close(timeout=2)


def status(server):
    out = server.ctl("status").stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def metrics(server):
    """/metrics, parsed: {(sample name, component label): value}."""
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    assert r.status == 200, body
    out = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if "component" in sample.labels:
                out[(sample.name, sample.labels["component"])] = sample.value
    return out


def wait_status(server, key, predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        value = status(server).get(key)
        if value is not None and predicate(value):
            return value
        assert time.monotonic() < deadline, f"{key} is {value}"
        time.sleep(0.05)  # polling a status, not waiting for an event to maybe happen


# -- the handshake -----------------------------------------------------------------

def test_handshake_accepted(cserver, clients):
    c = clients("push.localhost")
    header = c.open_component_stream()
    assert header["tag"] == q("http://etherx.jabber.org/streams", "stream")
    assert header["from"] == "push.localhost"
    assert len(header["id"]) >= 16
    c.send(f"<handshake>{handshake_digest(header['id'], 'push-secret')}</handshake>")
    reply = c.next_element()
    assert reply.tag == HANDSHAKE and not (reply.text or "").strip()
    assert c.ping_server() == []
    assert status(cserver)["component_push.localhost_connected"] == "1"


def test_wrong_secret_is_not_authorized(cserver, clients):
    c = clients("push.localhost")
    c.handshake("not-the-secret")
    assert c.stream_error_received() == "not-authorized" or c.expect_stream_error() == "not-authorized"
    assert c.wait_eof()
    # Uppercase hex of the right digest is accepted (the same secret).
    ok = clients("push.localhost")
    header = ok.open_component_stream()
    ok.send(f"<handshake>{handshake_digest(header['id'], 'push-secret').upper()}</handshake>")
    assert ok.next_element().tag == HANDSHAKE


def test_slixmpp_component_with_a_wrong_secret_is_refused(cserver):
    """The issue's app server, slixmpp's ComponentXMPP, with a wrong secret:
    <not-authorized/>, the connection closed, never a session."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    failures = int(status(cserver)["auth_failures"])
    try:
        xmpp = slixmpp.ComponentXMPP("slix.localhost", "not-the-secret", "127.0.0.1", cserver.component_port)
        xmpp.reconnect_max_attempts = 0
        errors = []
        started = []
        gone = asyncio.Event()
        xmpp.add_event_handler("stream_error", lambda e: errors.append(e["condition"]))
        xmpp.add_event_handler("session_start", lambda _: started.append(True))
        xmpp.add_event_handler("disconnected", lambda _: gone.set())
        xmpp.connect()
        loop.run_until_complete(asyncio.wait_for(gone.wait(), 20))
        assert errors == ["not-authorized"] and not started
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
    assert int(status(cserver)["auth_failures"]) == failures + 1
    assert status(cserver)["component_slix.localhost_connected"] == "0"


def test_unknown_domain_is_host_unknown(cserver, clients):
    c = clients("nobody.localhost")
    header = c.open_component_stream()
    assert "from" not in header  # not a domain it serves
    assert c.expect_stream_error() == "host-unknown"
    assert c.wait_eof()
    # A served host is no component either.
    c2 = clients("localhost")
    c2.open_component_stream()
    assert c2.expect_stream_error() == "host-unknown"


def test_client_namespace_is_invalid_namespace(cserver, clients):
    c = clients("push.localhost")
    c.open_component_stream(ns=NS_CLIENT)
    assert c.expect_stream_error() == "invalid-namespace"
    assert c.wait_eof()


def test_stanza_before_handshake_is_not_authorized(cserver, clients):
    c = clients("push.localhost")
    c.open_component_stream()
    c.send("<message from='push.localhost' to='alice@localhost'><body>x</body></message>")
    assert c.expect_stream_error() == "not-authorized"


def test_second_connection_is_refused_with_conflict(cserver, clients):
    first = clients("twice.localhost", "twice-secret")
    second = clients("twice.localhost")
    second.handshake("twice-secret")
    assert second.stream_error_received() == "conflict" or second.expect_stream_error() == "conflict"
    assert second.wait_eof()
    # The first one still serves the domain.
    assert first.ping_server() == []
    alice = clients.user("alice")
    alice.message("twice.localhost", "still there")
    got = first.expect(CMESSAGE)
    assert got.findtext(q(NS_COMPONENT, "body")) == "still there"


# -- stanzas both ways ------------------------------------------------------------

def test_messages_and_iqs_both_ways(cserver, clients):
    comp = clients("echo.localhost", "echo-secret")
    alice = clients.user("alice")
    # user -> component, to the domain and to a JID at it
    alice.message("echo.localhost", "to the domain")
    m = comp.expect(CMESSAGE)
    assert m.get("from") == alice.jid and m.get("to") == "echo.localhost"
    assert m.findtext(q(NS_COMPONENT, "body")) == "to the domain"
    alice.message("bot@echo.localhost/x", "to a user there")
    m = comp.expect(CMESSAGE)
    assert m.get("to") == "bot@echo.localhost/x"
    # component -> user, from the domain and from any user at it
    comp.send(f"<message from='bot@echo.localhost' to='{alice.jid}' type='chat'><body>hello alice</body></message>")
    m = alice.expect_message("hello alice")
    assert m.get("from") == "bot@echo.localhost"
    comp.send("<message from='echo.localhost' to='alice@localhost' type='chat'><body>to the bare JID</body></message>")
    assert alice.expect_message("to the bare JID").get("from") == "echo.localhost"
    # iq user -> component, answered by it
    alice.send("<iq type='get' id='v1' to='echo.localhost'><query xmlns='jabber:iq:version'/></iq>")
    iq = comp.expect(CIQ, match=lambda e: e.get("id") == "v1")
    assert iq.get("from") == alice.jid
    comp.send(f"<iq type='result' id='v1' from='echo.localhost' to='{alice.jid}'>"
              "<query xmlns='jabber:iq:version'><name>echo</name></query></iq>")
    reply = alice.expect(q(NS_CLIENT, "iq"), match=lambda e: e.get("id") == "v1")
    assert reply.get("type") == "result" and reply.get("from") == "echo.localhost"
    assert reply.findtext("{jabber:iq:version}query/{jabber:iq:version}name") == "echo"
    # iq component -> user's full JID: the client answers through the server
    comp.send(f"<iq type='get' id='c1' from='echo.localhost' to='{alice.jid}'><ping xmlns='urn:xmpp:ping'/></iq>")
    ping = alice.expect(q(NS_CLIENT, "iq"), match=lambda e: e.get("id") == "c1")
    assert ping.get("from") == "echo.localhost"
    alice.send("<iq type='result' id='c1' to='echo.localhost'/>")
    answer = comp.expect(CIQ, match=lambda e: e.get("id") == "c1")
    assert answer.get("type") == "result" and answer.get("from") == alice.jid
    # iq component -> server: disco#info of the host
    comp.send("<iq type='get' id='c2' from='echo.localhost' to='localhost'>"
              "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
    answer = comp.expect(CIQ, match=lambda e: e.get("id") == "c2")
    assert answer.get("type") == "result"


def test_component_to_component(cserver, clients):
    a = clients("echo.localhost", "echo-secret")
    b = clients("push.localhost", "push-secret")
    a.send("<message from='x@echo.localhost' to='push.localhost'><body>between components</body></message>")
    m = b.expect(CMESSAGE)
    assert m.get("from") == "x@echo.localhost"
    assert m.findtext(q(NS_COMPONENT, "body")) == "between components"


def test_stanza_without_to_or_from_gets_bad_request(cserver, clients):
    comp = clients("echo.localhost", "echo-secret")
    comp.send("<message from='echo.localhost' id='m1'><body>nowhere</body></message>")
    err = comp.expect(CMESSAGE, match=lambda e: e.get("id") == "m1")
    assert err.get("type") == "error"
    assert error_condition(err)[1] == "bad-request"
    comp.send("<iq type='get' id='i1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
    err = comp.expect(CIQ, match=lambda e: e.get("id") == "i1")
    assert err.get("type") == "error" and error_condition(err)[1] == "bad-request"
    assert comp.ping_server() == []  # the stream goes on


# -- absent components, reconnection, disco ----------------------------------------

def test_absent_component_is_bounced(cserver, clients):
    alice = clients.user("alice")
    alice.message("absent.localhost", "anyone?")
    err = alice.expect(MESSAGE, match=lambda e: e.get("type") == "error")
    assert err.get("from") == "absent.localhost"
    assert stanza_error_condition(err)[1] == "service-unavailable"
    reply = alice.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="absent.localhost")
    assert reply.get("type") == "error" and stanza_error_condition(reply)[1] == "service-unavailable"
    # A domain nobody configured is a remote server we cannot reach.
    alice.message("unconfigured.example", "anyone?")
    err = alice.expect(MESSAGE, match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(err)[1] == "remote-server-not-found"


def test_reconnect_after_close_and_after_reset(cserver, clients):
    alice = clients.user("alice")
    comp = clients("absent.localhost", "absent-secret")
    alice.message("absent.localhost", "first")
    assert comp.expect(CMESSAGE).findtext(q(NS_COMPONENT, "body")) == "first"
    comp.close()
    wait_status(cserver, "component_absent.localhost_connected", lambda v: v == "0")
    alice.message("absent.localhost", "while away")
    err = alice.expect(MESSAGE, match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(err)[1] == "service-unavailable"
    again = clients("absent.localhost", "absent-secret")
    alice.message("absent.localhost", "second")
    assert again.expect(CMESSAGE).findtext(q(NS_COMPONENT, "body")) == "second"
    again.abort()  # no </stream:stream>: the server finds the socket closed
    wait_status(cserver, "component_absent.localhost_connected", lambda v: v == "0")
    third = clients("absent.localhost", "absent-secret")
    alice.message("absent.localhost", "third")
    assert third.expect(CMESSAGE).findtext(q(NS_COMPONENT, "body")) == "third"
    third.close()
    wait_status(cserver, "component_absent.localhost_connected", lambda v: v == "0")


def test_disco_items_of_the_host_lists_connected_components(cserver, clients):
    comp = clients("echo.localhost", "echo-secret")
    alice = clients.user("alice")

    def items():
        reply = alice.iq("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to="localhost")
        assert reply.get("type") == "result"
        return {i.get("jid") for i in reply.iter(q(NS_DISCO_ITEMS, "item"))}
    listed = items()
    assert "echo.localhost" in listed
    assert "absent.localhost" not in listed  # configured, not connected
    comp.close()
    wait_status(cserver, "component_echo.localhost_connected", lambda v: v == "0")
    assert "echo.localhost" not in items()


# -- slixmpp's ComponentXMPP ------------------------------------------------------

def test_slixmpp_component_exchanges_with_a_user(cserver, clients):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        xmpp = slixmpp.ComponentXMPP("slix.localhost", "slix-secret", "127.0.0.1", cserver.component_port)
        started = loop.create_future()
        got = asyncio.Queue()
        xmpp.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        xmpp.add_event_handler("message", lambda m: got.put_nowait(m))
        xmpp.connect()
        loop.run_until_complete(asyncio.wait_for(started, 20))

        alice = clients.user("alice")
        alice.message("slix.localhost", "hello slixmpp")
        msg = loop.run_until_complete(asyncio.wait_for(got.get(), 10))
        assert msg["body"] == "hello slixmpp" and str(msg["from"]) == alice.jid

        xmpp.send_message(mto=alice.jid, mfrom="bot@slix.localhost", mbody="hello from slixmpp", mtype="chat")
        # slixmpp writes on its loop: run it while the user waits.
        loop.run_until_complete(asyncio.sleep(0))
        deadline = time.monotonic() + 10
        while True:
            loop.run_until_complete(asyncio.sleep(0.01))
            try:
                m = alice.expect_message("hello from slixmpp", timeout=0.05)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "slixmpp's message never arrived"
        assert m.get("from") == "bot@slix.localhost"

        done = xmpp.disconnect()
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


# -- a component that stops reading -----------------------------------------------

def test_component_that_stops_reading_fills_its_queue_and_others_chat_on(cserver, clients):
    slow = clients("slow.localhost", "slow-secret", rcvbuf=4096)
    carol = clients.user("carol")
    alice = clients.user("alice", "chat")
    bob = clients.user("bob", "chat")
    body = "x" * 16000
    sent = 0
    errors = 0

    def count_errors(elements):
        n = 0
        for e in elements:
            if e.tag == MESSAGE and e.get("type") == "error":
                assert e.get("from") == "slow.localhost"
                assert stanza_error_condition(e)[1] == "resource-constraint"
                n += 1
        return n
    # The component reads nothing: the socket buffers fill, then the
    # connection's window, then its queue; then carol's messages are bounced.
    while errors == 0:
        assert sent < 3000, "never bounced"
        for _ in range(20):
            carol.message("slow.localhost", body)
            sent += 1
        errors += count_errors(carol.nothing_before_sync())
    queue = status(cserver)
    assert MAX_QUEUE - 5 <= int(queue["component_slow.localhost_queue"]) <= MAX_QUEUE
    assert int(queue["component_slow.localhost_refused_queue_full"]) >= 1
    # The same figures in /metrics (the component reads nothing: they stay).
    m = metrics(cserver)
    assert m[("parley_component_queue", "slow.localhost")] == int(queue["component_slow.localhost_queue"])
    assert m[("parley_component_refused_queue_full_total", "slow.localhost")] == \
        int(queue["component_slow.localhost_refused_queue_full"])
    assert m[("parley_component_connected", "slow.localhost")] == 1
    assert m[("parley_component_connected", "absent.localhost")] == 0
    # An iq result for the full queue is dropped, never answered with an
    # error (RFC 6120 8.3.1): the error for a message sent after it, on the
    # same path, comes first.
    # (Several messages: the queue may have taken a few more meanwhile.)
    carol.send("<iq type='result' id='r-full' to='slow.localhost'/>")
    markers = {carol.message("slow.localhost", body) for _ in range(10)}
    sent += len(markers)
    before = carol.expect_nothing_until(lambda e: e.tag == MESSAGE and e.get("id") in markers
                                        and e.get("type") == "error")
    errors += 1 + count_errors(before)
    assert not [e for e in before if e.get("id") == "r-full"], before
    # Meanwhile two other users chat: round trips, both ways.
    for i in range(3):
        alice.message(bob.jid, f"ping {i}")
        bob.expect_message(f"ping {i}")
        bob.message(alice.jid, f"pong {i}")
        alice.expect_message(f"pong {i}")
    # The component reads again: each of carol's messages either reaches it
    # or came back to carol as an error, none is lost.
    received = 0
    deadline = time.monotonic() + 60
    while received + errors < sent:
        assert time.monotonic() < deadline, f"sent {sent}, received {received}, bounced {errors}"
        try:
            m = slow.next_element(timeout=0.05)
            if m.tag == CMESSAGE:
                assert m.findtext(q(NS_COMPONENT, "body")) == body
                received += 1
        except TimeoutError:
            pass
        try:
            errors += count_errors([carol.next_element(timeout=0.01)])
        except TimeoutError:
            pass
    assert received + errors == sent
    assert errors >= 1 and received >= MAX_QUEUE
    assert slow.ping_server() == []
    wait_status(cserver, "component_slow.localhost_queue", lambda v: v == "0")


def test_what_waits_for_a_component_that_goes_is_bounced(cserver, clients):
    """Never silently lost: the stanzas waiting in a component's queue when its
    connection ends (a reset) are answered with service-unavailable, and its
    queue is empty again."""
    comp = clients("gone.localhost", "gone-secret", rcvbuf=4096)
    carol = clients.user("carol", "gone")
    body = "y" * 16000
    full = 0
    sent = 0
    while full == 0:
        assert sent < 3000, "never full"
        for _ in range(20):
            carol.message("gone.localhost", body)
            sent += 1
        for e in carol.nothing_before_sync():
            if e.tag == MESSAGE and e.get("type") == "error":
                assert stanza_error_condition(e)[1] == "resource-constraint"
                full += 1
    queued = int(status(cserver)["component_gone.localhost_queue"])
    assert queued >= MAX_QUEUE - 5
    comp.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    comp.abort()  # a reset, with the server's bytes unread
    unavailable = 0
    deadline = time.monotonic() + 30
    while unavailable < queued:
        assert time.monotonic() < deadline, f"{queued} queued, {unavailable} bounced"
        try:
            e = carol.next_element(timeout=0.1)
        except TimeoutError:
            continue
        if e.tag == MESSAGE and e.get("type") == "error":
            assert e.get("from") == "gone.localhost"
            if stanza_error_condition(e)[1] == "service-unavailable":
                unavailable += 1
    wait_status(cserver, "component_gone.localhost_connected", lambda v: v == "0")
    assert status(cserver)["component_gone.localhost_queue"] == "0"
