"""Abuse by authenticated or merely connected clients: spoofed 'from'
addresses, too many connections from one address, and message floods, each
while the witness pair keeps exchanging messages on the same server."""

import select
import socket
import time

from conftest import PASSWORD
from hostile import assert_stream_error_and_close, blast, connect_from, raw_from, stream_header
from rawxmpp import NS_BIND, NS_CLIENT, NS_PING, NS_SASL, q, stanza_error_condition


# -- spoofed 'from' (RFC 6120 8.1.2.1) ------------------------------------------------------

def test_spoofed_from_is_overwritten(hostile_server, raw_factory, witness):
    # RFC 6120 8.1.2.1: for a stanza from a connected client the server MUST
    # add or override 'from' with the client's full JID. Parley stamps (rather
    # than closing with <invalid-from/>); the recipient must see the real
    # sender whatever mallory wrote.
    server = hostile_server()
    w = witness(server)
    mallory = raw_factory(server.c2s_port)
    real = mallory.login("mallory", PASSWORD, resource="spoofer")
    spoofs = [
        w.alice_jid,                   # another user, full JID
        "alice@localhost",             # another user, bare JID
        w.bob_jid,                     # the recipient itself
        "localhost",                   # the server
        "admin@evil.example/x",        # another domain
        "evil.example",
        "mallory@localhost/other",     # own account, another resource
        "",                            # empty
        "@@@not a jid@@@",             # not even a JID
    ]
    for i, spoof in enumerate(spoofs):
        mallory.send(f"<message from='{spoof}' to='{w.bob_jid}' type='chat' id='s{i}'>"
                     f"<body>spoof-{i}</body></message>")
        mallory.send(f"<presence from='{spoof}' to='{w.bob_jid}'><status>spoof-{i}</status>"
                     "</presence>")
    # An iq to bob's client: gloox answers a ping, and the answer must come
    # back to mallory (the real sender), not to alice.
    mallory.send(f"<iq from='{w.alice_jid}' to='{w.bob_jid}' type='get' id='spoof-ping'>"
                 f"<ping xmlns='{NS_PING}'/></iq>")
    pong = mallory.expect(q(NS_CLIENT, "iq"), match=lambda e: e.get("id") == "spoof-ping")
    assert pong.get("type") == "result" and pong.get("from") == w.bob_jid
    # A stanza error about a spoofed stanza also goes to the real sender.
    mallory.send(f"<iq from='{w.alice_jid}' to='nobody@localhost/x' type='get' id='spoof-err'>"
                 f"<ping xmlns='{NS_PING}'/></iq>")
    err = mallory.expect(q(NS_CLIENT, "iq"), match=lambda e: e.get("id") == "spoof-err")
    assert err.get("type") == "error"

    for i in range(len(spoofs)):
        w.bob.wait_for("MSG", body=f"spoof-{i}", timeout=10)
    strays = w.verify(allow_strays=True)
    got = {m["body"]: m for m in strays["bob"]}
    wrong = {body: m["from"] for body, m in got.items() if m["from"] != real}
    assert not wrong, f"bob saw spoofed senders (real sender {real}): {wrong}"
    assert set(got) == {f"spoof-{i}" for i in range(len(spoofs))}, sorted(got)
    presences = [line for line in w.bob.lines
                 if line.startswith("PRESENCE") and "status=spoof-" in line]
    assert len(presences) == len(spoofs), presences
    bad = [line for line in presences if f"from={real} " not in line]
    assert not bad, f"directed presence with a spoofed sender: {bad}"
    assert strays["alice"] == [], f"alice received what mallory sent: {strays['alice']}"
    assert not any("spoof" in line for line in w.alice.lines), "alice saw mallory's stanzas"


# -- connections per IP (limits.max_connections_per_ip) ------------------------------------

def classify(socks, timeout=10.0):
    """Sends a stream header on every socket; returns (accepted, refused):
    accepted ones answer with a stream header, refused ones are closed
    without one."""
    header = stream_header().encode()
    pending = {}
    accepted, refused = [], []
    for s in socks:
        try:
            s.sendall(header)
            pending[s.fileno()] = (s, b"")
        except OSError:
            refused.append(s)
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            if fd not in pending:
                continue
            s = pending[fd][0]
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            sock, got = pending[fd]
            got += data
            if b"<stream:error" in got or not data:
                refused.append(sock)
                del pending[fd]
                poller.unregister(fd)
            elif b"<stream:features" in got:
                accepted.append(sock)
                del pending[fd]
                poller.unregister(fd)
            else:
                pending[fd] = (sock, got)
    assert not pending, f"{len(pending)} connections neither served nor refused in {timeout}s"
    return accepted, refused


def open_many(source_ip, port, n):
    socks = []
    for _ in range(n):
        socks.append(connect_from(source_ip, port, timeout=10))
    return socks


def test_connections_per_ip(hostile_server, witness):
    limit = 50
    server = hostile_server(limits={"max_connections_per_ip": limit})
    w = witness(server)  # two of the 50 connections from 127.0.0.1
    port = server.c2s_port
    socks = []
    try:
        flood = open_many("127.0.0.1", port, 1000)
        socks += flood
        accepted, refused = classify(flood)
        w.flowing()
        assert len(accepted) == limit - 2, (
            f"{len(accepted)} of 1000 connections from 127.0.0.1 were served with the witness's two"
            f" open; max_connections_per_ip is {limit}")
        assert len(refused) == 1000 - (limit - 2)

        # Other addresses have budgets of their own.
        for ip in ("127.0.0.2", "127.0.0.3"):
            others = open_many(ip, port, limit)
            socks += others
            served, turned_away = classify(others)
            assert len(served) == limit and not turned_away, (
                f"from {ip}: {len(served)} served, {len(turned_away)} refused")
        eve = raw_from("127.0.0.4", port)
        eve.login("eve", PASSWORD, resource="elsewhere")
        eve.sync()
        eve.close()

        # Closing connections gives the budget back.
        for s in accepted[:10]:
            s.close()
        deadline = time.monotonic() + 10
        while True:
            again = open_many("127.0.0.1", port, 11)
            socks += again
            served, turned_away = classify(again)
            if len(served) == 10 or time.monotonic() > deadline:
                break
            for s in again:
                s.close()
            time.sleep(0.2)
        assert len(served) == 10 and len(turned_away) == 1, (
            f"after closing 10: {len(served)} of 11 new connections served")
        w.flowing()
    finally:
        for s in socks:
            s.close()
    w.verify()


# -- floods (limits.max_bytes_per_second) ----------------------------------------------------

RATE = 4000  # bytes per second and connection; the witness sends ~1.3 KB/s each way


def collect_bodies(elements, prefix):
    """Bodies of the messages starting with `prefix` among `elements` (what a
    client got before a round trip's answer)."""
    bodies = []
    for elem in elements:
        body = elem.find(q(NS_CLIENT, "body"))
        if elem.tag == q(NS_CLIENT, "message") and body is not None and \
                (body.text or "").startswith(prefix):
            bodies.append(body.text)
    return bodies


def test_flood_is_slowed_then_cut(hostile_server, raw_factory, witness):
    server = hostile_server(limits={"max_bytes_per_second": RATE, "max_stanza_bytes": 65536})
    w = witness(server, interval=0.1)
    eve = raw_factory(server.c2s_port)
    eve.login("eve", PASSWORD, resource="sink")

    # 1. Twice the rate for two seconds: slowed down (reads wait until the
    # debt is paid), nothing lost, not cut off.
    slow = raw_factory(server.c2s_port)
    slow.login("mallory", PASSWORD, resource="burst")
    slow.quiet(1.2)  # the login's bytes leave the bucket
    pad = "p" * 940
    burst = [f"burst-{i:02d}-{pad}" for i in range(16)]  # 16 x ~1 KB, one every 1/8 s
    started = time.monotonic()
    for body in burst:
        slow.send(f"<message to='{eve.jid}' type='chat'><body>{body}</body></message>")
        time.sleep(0.125)
    # What one read brought in is handled at once, and the next read waits
    # until that debt is paid: the first ping may ride with the last messages,
    # the second one waits.
    for _ in range(2):
        reply = slow.iq("get", f"<ping xmlns='{NS_PING}'/>", to=server.domain, timeout=30)
        assert reply.get("type") == "result"
    elapsed = time.monotonic() - started
    # ~16.5 KB with a 4 KB bucket at 4 KB/s: about 3 s (2 s unthrottled).
    assert elapsed >= 2.6, f"no throttling: 16 KB at {RATE} B/s were handled in {elapsed:.2f}s"
    assert not slow.eof and not slow.closed_by_peer, "a short burst was cut off"
    # slow's marker takes the path of the burst after it.
    got = collect_bodies(eve.nothing_before_marker(slow, timeout=30), "burst-")
    assert got == burst, f"eve received {len(got)} of {len(burst)} burst messages, in order?"
    w.flowing()

    # 2. Keeps pushing regardless: cut with <policy-violation/>, and what got
    # through is bounded by the rate.
    flood = raw_factory(server.c2s_port)
    flood.login("mallory", PASSWORD, resource="flood")
    stanzas = [f"<message to='{eve.jid}' type='chat'><body>flood-{i}-{pad}</body></message>"
               for i in range(3000)]
    data = "".join(stanzas).encode()
    started = time.monotonic()
    sent = blast(flood, data, timeout=30)
    assert_stream_error_and_close(flood, "policy-violation", timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"the flood ran {elapsed:.1f}s before being cut"
    # Both ends: what flood's loop routed went to eve's before its stream
    # error came out; a round trip on eve's stream comes after it.
    got = collect_bodies(eve.nothing_before_sync(timeout=30), "flood-")
    delivered = len(got) * len(stanzas[0])
    bound = RATE * (elapsed + 1) + 5 * RATE + 65536
    assert delivered <= bound, (
        f"{delivered} bytes of the flood were routed in {elapsed:.1f}s (rate {RATE} B/s, bound {bound})")
    assert got == [f"flood-{i}-{pad}" for i in range(len(got))], "flood messages out of order"
    assert sent > bound, f"the flood sent only {sent} bytes: not a flood"
    # eve, who only received, is still served.
    eve.sync()
    w.flowing()
    w.verify()


# -- a client that never reads ---------------------------------------------------------------

def test_client_that_never_reads(hostile_server, raw_factory, witness):
    # Mallory sends herself 100 KB messages and reads nothing back: the server
    # must not queue without bound (it cuts a peer whose write backlog passes
    # 4 MiB), and must not stall its loop for the others meanwhile.
    server = hostile_server()
    w = witness(server)
    mallory = raw_factory(server.c2s_port)
    me = mallory.login("mallory", PASSWORD, resource="deaf")
    stanza = (f"<message to='{me}' type='chat'><body>" + "d" * 100_000 + "</body></message>").encode()
    sock = mallory.sock
    sock.settimeout(5)
    sent = 0
    started = time.monotonic()
    cut = False
    while sent < 200 * 1024 * 1024 and time.monotonic() - started < 20:
        try:
            sock.sendall(stanza)
            sent += len(stanza)
        except (OSError, TimeoutError):
            cut = True
            break
    # The server has stopped reading us; has it closed? Drain without parsing.
    sock.settimeout(1)
    deadline = time.monotonic() + 15
    while not cut and time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                cut = True
        except (socket.timeout, TimeoutError):
            continue
        except OSError:
            cut = True
    assert cut, f"still connected after sending {sent} bytes without reading"
    assert sent < 200 * 1024 * 1024, "the server kept taking input from a peer that never reads"
    w.flowing()
    w.verify()


def test_sessions_per_user(hostile_server, raw_factory, witness):
    # RFC 6120 7.6.2.1: too many resources for one account -> <resource-constraint/>.
    server = hostile_server(limits={"max_sessions_per_user": 3})
    w = witness(server)
    sessions = [raw_factory(server.c2s_port) for _ in range(3)]
    for i, s in enumerate(sessions):
        s.login("mallory", PASSWORD, resource=f"r{i}")
    extra = raw_factory(server.c2s_port)
    extra.start()
    extra.starttls()
    assert extra.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")
    extra.start()
    reply = extra.iq("set", f"<bind xmlns='{NS_BIND}'><resource>r3</resource></bind>")
    assert reply.get("type") == "error"
    assert stanza_error_condition(reply)[1] == "resource-constraint"
    sessions[0].close()
    deadline = time.monotonic() + 5
    while True:
        reply = extra.iq("set", f"<bind xmlns='{NS_BIND}'><resource>r3</resource></bind>")
        if reply.get("type") == "result" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert reply.get("type") == "result", "a freed session slot was not given back"
    w.verify()


# -- hostile addresses -------------------------------------------------------------------------

BAD_ADDRESSES = [
    "a" * 1024 + "@localhost",       # localpart over 1023 octets (RFC 7622 3.3)
    "bob@" + "d" * 1024,             # domainpart over 1023 octets (3.2)
    "bob@localhost/" + "r" * 1024,   # resourcepart over 1023 octets (3.4)
    "bob@@localhost",
    "@localhost",                    # empty localpart
    "bob@localhost/",                # empty resourcepart
    "bob@local host",
    "bob@[::1",
    "bob@.localhost",
]


def test_malformed_addresses_get_jid_malformed(hostile_server, raw_factory, witness):
    # RFC 6120 8.3.3.8: an address that violates RFC 7622 -> <jid-malformed/>
    # (modify), for each stanza, and the stream goes on.
    server = hostile_server()
    w = witness(server)
    c = raw_factory(server.c2s_port)
    c.login("mallory", PASSWORD, resource="addr")
    problems = []
    for i, to in enumerate(BAD_ADDRESSES):
        c.send(f"<message to='{to}' type='chat' id='j{i}'><body>x</body></message>")
        reply = c.expect(q(NS_CLIENT, "message"), match=lambda e, i=i: e.get("id") == f"j{i}")
        got = (reply.get("type"), stanza_error_condition(reply))
        if got != ("error", ("modify", "jid-malformed")):
            problems.append(f"{to[:40]!r}: {got}")
    c.sync()
    assert not problems, problems
    w.verify()
