"""The HTTP listener (module: http): XMPP over WebSocket (RFC 7395) at
/xmpp-websocket, XEP-0156 host-meta, HTTP limits and bad requests; a
WebSocket client chatting with a TCP client, over ws and wss, and
@xmpp/client and StanzaJS (npm) doing the same."""

import http.client
import json
import os
import socket
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import websocket

from conftest import PASSWORD
from parley_harness import expect_browser_echo, free_port, stop_child
from rawxmpp import NS_SASL, NS_STREAM, NS_TLS, q
from wsxmpp import CLOSE, NS_FRAMING, OPEN, WsClient

NS_XRD = "http://docs.oasis-open.org/ns/xri/xrd-1.0"


@pytest.fixture
def web(server_factory):
    """A server with an http listener (ws) and an https one (wss); alice and bob registered."""
    http_port, https_port = free_port(), free_port()
    server = server_factory(extra_listeners=[
        {"port": http_port, "ip": "127.0.0.1", "module": "http"},
        {"port": https_port, "ip": "127.0.0.1", "module": "http", "tls": True},
    ], limits={"http_max_header_bytes": 2048, "http_max_body_bytes": 1024,
               "http_max_requests_per_connection": 3})
    server.http_port, server.https_port = http_port, https_port
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    return server


@pytest.fixture
def ws_factory():
    clients = []

    def make(port, **kwargs):
        c = WsClient(port, **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def http_exchange(port, request, tls=False):
    """Sends raw request bytes; returns everything the server answered until it closed (or 2 s of quiet)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname="localhost")
    sock.sendall(request)
    sock.settimeout(2)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    sock.close()
    return data


def status_of(response):
    return int(response.split(b" ", 2)[1])


# -- WebSocket: login and chat with a TCP client ----------------------------------

def test_websocket_client_logs_in_with_scram_and_chats_with_a_tcp_client(web, ws_factory, raw_factory):
    bob = ws_factory(web.http_port)
    features = bob.open()
    # The TLS of a WebSocket is the connection's: no STARTTLS; over plain ws,
    # as on a c2s listener without allow_plain_without_tls, no PLAIN.
    assert features.find(q(NS_TLS, "starttls")) is None
    mechs = bob.mechanisms(features)
    assert "SCRAM-SHA-1" in mechs and "PLAIN" not in mechs, mechs
    assert bob.header.get("from") == "localhost" and bob.header.get("version") == "1.0" and bob.header.get("id")
    outcome = bob.auth_scram("bob", PASSWORD, "SCRAM-SHA-256")
    assert outcome.tag == q(NS_SASL, "success")
    bob.open()
    bob.iq("set", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind>")
    bob.send("<presence xmlns='jabber:client'/>")
    bob.sync()

    alice = raw_factory(web.c2s_port)
    alice.login("alice", PASSWORD, resource="tcp")
    alice.message("bob@localhost/web", "hello over tcp")
    got = bob.expect_message("hello over tcp")
    assert got.get("from") == "alice@localhost/tcp"
    bob.message("alice@localhost/tcp", "hello over websocket")
    got = alice.expect_message("hello over websocket")
    assert got.get("from") == "bob@localhost/web"
    # Every message is a document declaring its namespace (parsed one by one above).
    assert all(e.tag.startswith("{") for e in bob.received)


def test_wss_offers_plain_and_no_starttls_and_chats(web, ws_factory, raw_factory):
    bob = ws_factory(web.https_port, tls=True)
    features = bob.open()
    assert features.find(q(NS_TLS, "starttls")) is None
    assert "PLAIN" in bob.mechanisms(features)
    bob.close()
    bob = ws_factory(web.https_port, tls=True)
    bob.login("bob", PASSWORD, mechanism="PLAIN", resource="wss")
    alice = raw_factory(web.c2s_port)
    alice.login("alice", PASSWORD, resource="tcp")
    bob.message("alice@localhost/tcp", "over wss")
    alice.expect_message("over wss")
    alice.message(bob.jid, "back to wss")
    bob.expect_message("back to wss")


def test_starttls_over_websocket_is_refused(web, ws_factory):
    c = ws_factory(web.http_port)
    c.open()
    c.send(f"<starttls xmlns='{NS_TLS}'/>")
    failure = c.next_element()
    assert failure.tag == q(NS_TLS, "failure")
    assert c.next_element().tag == CLOSE


def test_close_is_answered_with_close_then_the_websocket_closes(web, ws_factory):
    c = ws_factory(web.http_port)
    c.login("alice", PASSWORD)
    c.send(f"<close xmlns='{NS_FRAMING}'/>")
    assert c.next_element().tag == CLOSE
    assert c.wait_ws_close() in (1000, None)


def test_ping_is_answered_with_pong(web, ws_factory):
    c = ws_factory(web.http_port)
    c.open()
    c.ws.ping("are you there")
    opcode, data = c.recv_frame()
    assert opcode == websocket.ABNF.OPCODE_PONG and data == b"are you there"


# -- framing errors ------------------------------------------------------------

def test_missing_subprotocol_is_refused(web):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        WsClient(web.http_port, subprotocols=None)
    assert e.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        WsClient(web.http_port, subprotocols=("chat",))
    assert e.value.status_code == 400


def test_wrong_path_is_404(web):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        WsClient(web.http_port, path="/elsewhere")
    assert e.value.status_code == 404


def test_open_in_the_wrong_namespace_is_a_stream_error_then_close(web, ws_factory):
    c = ws_factory(web.http_port)
    c.send("<open xmlns='jabber:client' to='localhost' version='1.0'/>")
    assert c.next_element().tag == OPEN  # our header first, as before any stream error
    assert c.expect_stream_error() == "invalid-namespace"
    assert c.wait_ws_close() in (1000, None)


def test_unknown_host_is_a_stream_error_then_close(web, ws_factory):
    c = ws_factory(web.http_port)
    c.send(f"<open xmlns='{NS_FRAMING}' to='nowhere.example' version='1.0'/>")
    assert c.next_element().tag == OPEN
    assert c.expect_stream_error() == "host-unknown"


def test_a_message_holding_part_of_an_element_is_not_well_formed(web, ws_factory):
    c = ws_factory(web.http_port)
    c.login("alice", PASSWORD)
    c.send("<message xmlns='jabber:client' to='bob@localhost'><body>half")
    assert c.expect_stream_error() == "not-well-formed"
    assert c.wait_ws_close() in (1000, None)


def test_malformed_xml_is_a_stream_error_then_close(web, ws_factory):
    c = ws_factory(web.http_port)
    c.open()
    c.send("<iq xmlns='jabber:client' type='get'><</iq>")
    assert c.expect_stream_error() == "not-well-formed"


def test_a_stanza_over_max_stanza_bytes_is_a_policy_violation_and_a_huge_message_closes_1009(web, ws_factory):
    c = ws_factory(web.http_port)
    c.login("alice", PASSWORD)
    # Above max_stanza_bytes (256 KiB) but within the WebSocket message bound: the stream parser's error.
    c.send("<message xmlns='jabber:client' to='bob@localhost'><body>" + "x" * 270_000 + "</body></message>")
    assert c.expect_stream_error() == "policy-violation"
    c = ws_factory(web.http_port)
    c.open()
    # Above the message bound (max_stanza_bytes + 64 KiB): wslay closes with 1009 from the frame header,
    # before any parsing (unit_http_server_conn checks the frame). The client is still sending then, so
    # the kernel may turn the close into a reset that discards the frame: either way the connection ends.
    c.send("<message xmlns='jabber:client'><body>" + "y" * 400_000 + "</body></message>")
    assert c.wait_ws_close() in (1009, None)
    assert web.alive()


def test_binary_frames_close_the_websocket_with_1003(web, ws_factory):
    c = ws_factory(web.http_port)
    c.open()
    c.ws.send_binary(b"<presence/>")
    assert c.wait_ws_close() == 1003


def test_a_stanza_sent_before_open_is_refused(web, ws_factory):
    c = ws_factory(web.http_port)
    c.send("<message xmlns='jabber:client' to='bob@localhost'><body>x</body></message>")
    assert c.next_element().tag == OPEN
    assert c.expect_stream_error() == "invalid-namespace"


# -- XEP-0156 host-meta ----------------------------------------------------------

def test_host_meta_xrd_and_json_name_the_websocket_and_bosh_endpoints(web):
    conn = http.client.HTTPConnection("127.0.0.1", web.http_port, timeout=5)
    conn.request("GET", "/.well-known/host-meta", headers={"Host": f"localhost:{web.http_port}"})
    r = conn.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "application/xrd+xml"
    assert r.getheader("Access-Control-Allow-Origin") == "*"
    xrd = ET.fromstring(r.read())
    links = [(l.get("rel"), l.get("href")) for l in xrd.iter(q(NS_XRD, "Link"))]
    assert links == [("urn:xmpp:alt-connections:websocket", f"ws://localhost:{web.http_port}/xmpp-websocket"),
                     ("urn:xmpp:alt-connections:xbosh", f"http://localhost:{web.http_port}/http-bind")]
    # Same connection (keep-alive): the JSON form.
    conn.request("GET", "/.well-known/host-meta.json", headers={"Host": f"localhost:{web.http_port}"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "application/json"
    doc = json.loads(r.read())
    assert doc == {"links": [{"rel": "urn:xmpp:alt-connections:websocket",
                              "href": f"ws://localhost:{web.http_port}/xmpp-websocket"},
                             {"rel": "urn:xmpp:alt-connections:xbosh",
                              "href": f"http://localhost:{web.http_port}/http-bind"}]}
    conn.close()
    # Over https the endpoint is wss.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", web.https_port, timeout=5, context=ctx)
    conn.request("GET", "/.well-known/host-meta.json", headers={"Host": f"localhost:{web.https_port}"})
    doc = json.loads(conn.getresponse().read())
    assert doc["links"][0]["href"] == f"wss://localhost:{web.https_port}/xmpp-websocket"
    assert doc["links"][1]["href"] == f"https://localhost:{web.https_port}/http-bind"
    conn.close()


def test_head_and_unknown_paths_and_methods(web):
    resp = http_exchange(web.http_port, b"HEAD /.well-known/host-meta HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 200 and resp.endswith(b"\r\n\r\n")  # no body
    assert status_of(http_exchange(web.http_port, b"GET /nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")) == 404
    resp = http_exchange(web.http_port, b"DELETE /.well-known/host-meta HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 405 and b"Allow: GET, HEAD" in resp
    resp = http_exchange(web.http_port, b"GET /xmpp-websocket HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 426
    resp = http_exchange(web.http_port, b"GET /.well-known/host-meta HTTP/1.1\r\nHost: <evil>\r\n\r\n")
    assert status_of(resp) == 400


# -- HTTP limits and bad requests --------------------------------------------------

def test_bad_requests_get_400_and_the_connection_closes(web):
    for garbage in (b"NONSENSE\r\n\r\n", b"GET / HTTP/1.1\r\nbroken header\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n"):
        resp = http_exchange(web.http_port, garbage)
        assert status_of(resp) == 400, resp
        assert b"Connection: close" in resp


def test_headers_over_the_limit_get_431(web):
    resp = http_exchange(web.http_port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
    assert status_of(resp) == 431


def test_a_body_over_the_limit_gets_413(web):
    resp = http_exchange(web.http_port, b"POST /.well-known/host-meta HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n")
    assert status_of(resp) == 413


def test_requests_per_connection_are_bounded(web):
    req = b"GET /.well-known/host-meta HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = http_exchange(web.http_port, req * 5)
    assert resp.count(b"HTTP/1.1 200 OK") == 3  # then Connection: close
    assert b"Connection: close" in resp


def test_a_request_split_byte_by_byte_is_answered(web):
    sock = socket.create_connection(("127.0.0.1", web.http_port), timeout=5)
    for b in b"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n":
        sock.send(bytes([b]))
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert status_of(data) == 200 and b"xmpp-websocket" in data


def test_an_idle_http_connection_is_closed(server_factory):
    port = free_port()
    server = server_factory(extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "http"}],
                            limits={"http_idle_timeout": 1})
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /.well-known/host-meta HTTP/1.1\r\nHost: h\r\n")  # never finished
    assert sock.recv(100) == b""  # closed by the server, not by our 10 s timeout
    sock.close()
    assert server.alive()


def test_http_connections_per_address_are_bounded(server_factory):
    port = free_port()
    server = server_factory(extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "http"}],
                            limits={"http_max_connections_per_ip": 2})
    request = b"GET /.well-known/host-meta HTTP/1.1\r\nHost: h\r\n\r\n"

    def answered(sock):
        sock.sendall(request)
        return sock.recv(65536)

    def admitted():
        # Connections that just closed (the harness's readiness probe, a
        # refused one) leave the count once the server has seen them close.
        deadline = time.time() + 10
        while True:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            status = status_of(answered(sock))
            if status == 200:
                return sock
            sock.close()
            assert status == 503 and time.time() < deadline
            time.sleep(0.05)

    a = admitted()
    b = admitted()  # both counted and open now
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    refused = answered(c)
    assert status_of(refused) == 503 and b"Connection: close" in refused
    assert c.recv(100) == b""
    c.close()
    # Another address has its own count; a freed place is free again.
    other = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
    assert status_of(answered(other)) == 200
    other.close()
    a.close()
    admitted().close()
    assert status_of(answered(b)) == 200
    b.close()
    assert server.alive()


# -- web client libraries (npm) over WebSocket ---------------------------------------------

def node_clients_dir(kind=None):
    """The npm packages of tests/integration/node (or its browser/), installed once into a cache."""
    base = Path(os.environ.get("PARLEY_NODE_CACHE", Path.home() / ".cache" / "parley"))
    cache = base / ("browser-clients" if kind else "node-clients")
    script = Path(os.environ["PARLEY_SOURCE_DIR"]) / "tools" / "install-node-clients.sh"
    subprocess.run([str(script), str(cache)] + ([kind] if kind else []), check=True, timeout=240)
    return cache


@pytest.mark.parametrize("script,resource", [("xmpp_client_ws.mjs", "xmppjs"), ("stanza_client.mjs", "stanzajs")],
                         ids=["xmpp.js", "stanza.js"])
def test_web_client_library_logs_in_over_websocket_and_chats_with_a_tcp_client(web, raw_factory, script, resource):
    """@xmpp/client and StanzaJS (npm, unmodified) log in over ws (SCRAM),
    bind, answer a TCP client's message and stop cleanly."""
    cache = node_clients_dir()
    source = Path(os.environ["PARLEY_SOURCE_DIR"]) / "tests" / "integration" / "node" / script
    runnable = cache / script  # next to its node_modules, where its imports resolve
    runnable.write_text(source.read_text())
    proc = subprocess.Popen(["node", str(runnable), f"ws://127.0.0.1:{web.http_port}/xmpp-websocket", "localhost",
                             "bob", PASSWORD], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == f"ONLINE bob@localhost/{resource}", line + proc.stdout.read()
        bob = line.split(" ", 1)[1]
        alice = raw_factory(web.c2s_port)
        alice.login("alice", PASSWORD, resource="tcp")
        alice.message(bob, "hello web client")
        assert proc.stdout.readline().strip() == "GOT alice@localhost/tcp hello web client"
        got = alice.expect_message("echo: hello web client")
        assert got.get("from") == bob
        rest = proc.stdout.read()
        assert proc.wait(timeout=20) == 0, rest
        assert "SENT" in rest and "STOPPED" in rest, rest
    finally:
        stop_child(proc)


def test_converse_js_in_headless_chromium_logs_in_over_websocket_and_chats_with_a_tcp_client(
        server_factory, raw_factory):
    """Converse.js 14, the latest on npm (unmodified, embedded as an ES
    module as its docs say), in Debian's chromium-headless-shell: logs in
    over ws (SASL, bind, roster, disco, carbons, presence), receives a TCP
    client's message and answers it from its chat box (typed, then Enter)."""
    http_port = free_port()
    # mod_blocking: Converse 14 shows a chat with a JID not in the roster
    # only once it has the blocklist (XEP-0191), which it asks only of a
    # server that has it; without, the chat box never opens.
    server = server_factory(
        modules={"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_vcard": {},
                 "mod_carbons": {}, "mod_blocking": {}},
        extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http"}])
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    cache = node_clients_dir("browser")
    source = Path(os.environ["PARLEY_SOURCE_DIR"]) / "tests" / "integration" / "node" / "browser" / "converse_ws.mjs"
    runnable = cache / "converse_ws.mjs"
    runnable.write_text(source.read_text())
    proc = subprocess.Popen(["node", str(runnable), f"ws://127.0.0.1:{http_port}/xmpp-websocket", "localhost",
                             "bob", PASSWORD], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "ONLINE bob@localhost/converse", line + proc.stdout.read()
        alice = raw_factory(server.c2s_port)
        # Available: Converse answers the bare JID, as a chat box does.
        alice.login("alice", PASSWORD, resource="tcp", presence=True)
        alice.message("bob@localhost/converse", "hello converse")
        assert proc.stdout.readline().strip() == "GOT alice@localhost/tcp hello converse"
        assert expect_browser_echo(alice, proc, "echo: hello converse").get("from") == "bob@localhost/converse"
        rest = proc.stdout.read()
        assert proc.wait(timeout=30) == 0, rest
        assert "SENT" in rest and "STOPPED" in rest, rest
    finally:
        stop_child(proc)


# -- stream management across WebSocket connections ------------------------------

def test_stream_management_resumes_a_websocket_session_from_a_websocket_on_the_other_loop(
        server_factory, tmp_path, raw_factory, ws_factory):
    """XEP-0198 over WebSocket: the new connection migrates to the session's
    loop with its HTTP transport (wslay state and framing) as a TCP one does."""
    import struct

    from test_mod_stream_mgmt import enable, loop_of, resume, wait_sm_counter
    from test_modules import module_dir
    from test_session_seams import bound, where

    http_port = free_port()
    server = server_factory(
        module_paths=[module_dir(tmp_path, "mod_test_stream")],
        modules={"mod_disco": {}, "mod_ping": {}, "mod_test_stream": {}, "mod_stream_mgmt": {}},
        extra_listeners=[{"port": http_port, "ip": "127.0.0.1", "module": "http"}], workers=2)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    bob = bound(server, raw_factory, "bob", "b")
    alice = ws_factory(http_port)
    alice_jid = alice.login("alice", PASSWORD, resource="web")
    sm_id = enable(alice, resume=True).get("id")
    for i in range(1, 4):
        bob.message(alice_jid, f"m{i}")
    for i in range(1, 4):
        alice.expect_message(f"m{i}")
    # Gone without <close/> nor a close frame: a reset.
    alice.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    alice.ws.sock.close()
    wait_sm_counter(server, "detached", 1)
    bob.message(alice_jid, "m4")
    bob.sync()

    for _ in range(64):
        new = ws_factory(http_port)
        new.open()
        assert new.auth_scram("alice", PASSWORD).tag == q(NS_SASL, "success")
        new.open()
        if where(new)[1] != loop_of(sm_id):
            break
        new.close()
    else:
        raise AssertionError("no WebSocket landed on the other loop in 64 tries")
    resumed = resume(new, sm_id, 0)
    assert resumed.tag == "{urn:xmpp:sm:3}resumed", ET.tostring(resumed, "unicode")
    for i in range(1, 5):
        assert new.expect_message(f"m{i}").get("to") == alice_jid
    new.message(bob.jid, "back over websocket")
    assert bob.expect_message("back over websocket").get("from") == alice_jid
