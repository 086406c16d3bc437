"""Slow attacks: slowloris streams that never authenticate (cut at
limits.auth_timeout) and TLS handshakes that never finish (cut at
limits.tls_handshake_timeout), while the witness pair keeps talking.

The variants of one kind run at once, each on its own connection, so the
test costs one timeout, not one per variant.
"""

import concurrent.futures
import select
import socket
import time

from conftest import PASSWORD
from hostile import poll_socket, stream_header, tls_client_hello
from rawxmpp import NS_SASL, NS_TLS, RawClient, q

AUTH_TIMEOUT = 4
TLS_TIMEOUT = 2
SLACK = 2.0  # a loaded 2-core CI machine running an ASan build
LIMITS = {"auth_timeout": AUTH_TIMEOUT, "tls_handshake_timeout": TLS_TIMEOUT}


def run_concurrently(variants):
    """{name: fn} -> {name: result or exception}, all started together."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(variants)) as pool:
        futures = {name: pool.submit(fn) for name, fn in variants.items()}
        results = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=60)
            except Exception as e:  # noqa: BLE001 - reported with the variant's name
                results[name] = e
    return results


def witness_mid_attack(w, after):
    """While the attacks run: everything the witness sent so far arrives."""
    time.sleep(after)
    w.flowing()
    return None


def dribble_until_closed(client, data, step, started, limit=30.0):
    """Sends `data` one byte every `step` seconds (then spaces, forever) until
    the server ends the connection; returns seconds since `started`."""
    i = 0
    sock = client.sock
    while time.monotonic() - started < limit:
        byte = data[i:i + 1] if i < len(data) else b" "
        i += 1
        try:
            client.send(byte)
        except OSError:
            break
        readable, _ = poll_socket(sock, step)
        if readable or (hasattr(sock, "pending") and sock.pending()):
            client._fill(time.monotonic() + 0.05)
            if client.eof or client.closed_by_peer:
                break
    client.wait_eof(5)
    return time.monotonic() - started


def cut_at_auth_timeout(elapsed, client, name):
    assert client.eof, f"{name}: still connected after {elapsed:.1f}s"
    assert AUTH_TIMEOUT - 0.5 <= elapsed <= AUTH_TIMEOUT + SLACK, (
        f"{name}: cut after {elapsed:.1f}s, expected about auth_timeout = {AUTH_TIMEOUT}s")
    condition = client.stream_error_received()
    # RFC 6120 4.9.3.4 connection-timeout (policy-violation would do as well).
    assert condition in ("connection-timeout", "policy-violation"), (
        f"{name}: stream error {condition}, expected <connection-timeout/>")
    assert client.closed_by_peer, f"{name}: no </stream:stream> before the close"


def many_header_dribblers(port, n=200):
    """n connections from one address, each dribbling its stream header; all
    must be cut at auth_timeout. Returns a list of problems."""
    header = stream_header().encode()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    by_fd = {s.fileno(): i for i, s in enumerate(socks)}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    started = time.monotonic()
    closed_at = {}
    i = 0
    try:
        while len(closed_at) < n and time.monotonic() - started < AUTH_TIMEOUT + SLACK + 3:
            for k, s in enumerate(socks):
                if k in closed_at:
                    continue
                try:
                    s.send(header[i:i + 1] if i < len(header) else b" ")
                except OSError:
                    closed_at[k] = time.monotonic() - started
                    poller.unregister(s.fileno())
            i += 1
            for fd, _ in poller.poll(250):
                k = by_fd[fd]
                try:
                    data = socks[k].recv(65536)
                except OSError:
                    data = b""
                if not data and k not in closed_at:
                    closed_at[k] = time.monotonic() - started
                    poller.unregister(fd)
    finally:
        for s in socks:
            s.close()
    problems = []
    if len(closed_at) < n:
        problems.append(f"{n - len(closed_at)} of {n} slowloris connections still open after "
                        f"{time.monotonic() - started:.1f}s")
    early = sorted(t for t in closed_at.values() if t < AUTH_TIMEOUT - 0.5)
    late = sorted(t for t in closed_at.values() if t > AUTH_TIMEOUT + SLACK)
    if early or late:
        problems.append(f"cut times outside [{AUTH_TIMEOUT - 0.5}, {AUTH_TIMEOUT + SLACK}]s: "
                        f"{len(early)} early {early[:3]}, {len(late)} late {late[-3:]}")
    return problems


def test_slowloris_never_authenticating(hostile_server, raw_factory, witness):
    server = hostile_server(limits=LIMITS)
    w = witness(server)
    port = server.c2s_port

    def header_dribble():
        c = raw_factory(port)
        started = time.monotonic()
        return c, dribble_until_closed(c, stream_header().encode(), 0.2, started)

    def whitespace_after_features():
        c = raw_factory(port)
        started = time.monotonic()
        c.start()
        return c, dribble_until_closed(c, b"", 0.2, started)

    def partial_stanza_dribble():
        c = raw_factory(port)
        started = time.monotonic()
        c.start()
        return c, dribble_until_closed(c, b"<iq type='get' id='slow'><query xmlns='jabber:iq:"
                                       + b"x" * 200, 0.2, started)

    def inside_tls():
        c = raw_factory(port)
        started = time.monotonic()
        c.start()
        c.starttls()
        return c, dribble_until_closed(c, b"", 0.2, started)

    def stalled_sasl():
        c = raw_factory(port)
        started = time.monotonic()
        c.start()
        c.starttls()
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-1'>"
               "biwsbj1tYWxsb3J5LHI9c2xvd2xvcmlzc2xvd2xvcmlz</auth>")
        c.expect(q(NS_SASL, "challenge"))
        return c, dribble_until_closed(c, b"", 0.2, started)

    def authenticated_never_bound():
        c = raw_factory(port)
        started = time.monotonic()
        c.start()
        c.starttls()
        assert c.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")
        c.start()
        return c, dribble_until_closed(c, b"", 0.2, started)

    variants = {
        "header one byte at a time": header_dribble,
        "whitespace after the features": whitespace_after_features,
        "a stanza one byte at a time": partial_stanza_dribble,
        "whitespace inside TLS": inside_tls,
        "SASL started, never finished": stalled_sasl,
        "authenticated, never bound": authenticated_never_bound,
        "200 connections dribbling headers": lambda: many_header_dribblers(port),
        "the witness, mid-attack": lambda: witness_mid_attack(w, AUTH_TIMEOUT / 2),
    }
    results = run_concurrently(variants)
    w.flowing()
    failures = []
    for name, result in results.items():
        if isinstance(result, Exception):
            failures.append(f"{name}: {type(result).__name__}: {result}")
            continue
        if result is None:
            continue
        if isinstance(result, list):
            failures.extend(f"{name}: {p}" for p in result)
            continue
        client, elapsed = result
        try:
            cut_at_auth_timeout(elapsed, client, name)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)
    w.verify()


def test_late_starttls_does_not_extend_the_auth_timeout(hostile_server, raw_factory, witness):
    # conf/parley.yml: auth_timeout is the "seconds an unauthenticated
    # connection may stay". A slowloris that idles almost that long, then does
    # STARTTLS, must not get a fresh auth_timeout inside TLS.
    server = hostile_server(limits=LIMITS)
    w = witness(server)
    c = raw_factory(server.c2s_port)
    started = time.monotonic()
    c.start()
    while time.monotonic() - started < AUTH_TIMEOUT - 0.7:
        c.send(" ")
        time.sleep(0.2)
    c.starttls()
    elapsed = dribble_until_closed(c, b"", 0.2, started)
    w.flowing()
    assert c.eof, f"still connected after {elapsed:.1f}s"
    assert elapsed <= AUTH_TIMEOUT + SLACK, (
        f"an unauthenticated connection stayed {elapsed:.1f}s (auth_timeout = {AUTH_TIMEOUT}s):"
        f" the timer restarted after the TLS handshake")
    w.verify()


# -- TLS handshakes that never finish ---------------------------------------------------

def silent_until_closed(sock, started, limit=20.0):
    """Reads (never answers) until EOF; returns (seconds since started, bytes)."""
    got = b""
    sock.settimeout(0.5)
    while time.monotonic() - started < limit:
        try:
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except OSError:
            break
        if not data:
            break
        got += data
    else:
        return None, got
    return time.monotonic() - started, got


def test_tls_handshake_that_never_finishes(hostile_server, witness):
    server = hostile_server(limits=LIMITS)
    w = witness(server)
    hello = tls_client_hello()
    assert hello[:1] == b"\x16", "not a TLS handshake record"

    def direct(payload, dribble=False):
        def run():
            sock = socket.create_connection(("127.0.0.1", server.tls_port), timeout=5)
            started = time.monotonic()
            if dribble:
                for byte in payload:
                    try:
                        sock.send(bytes([byte]))
                    except OSError:
                        break
                    time.sleep(0.3)
                    if time.monotonic() - started > TLS_TIMEOUT + SLACK + 2:
                        break
            elif payload:
                sock.sendall(payload)
            elapsed, got = silent_until_closed(sock, started)
            sock.close()
            return elapsed, got, None
        return run

    def starttls(payload):
        def run():
            c = RawClient(server.c2s_port)
            c.start()
            c.send(f"<starttls xmlns='{NS_TLS}'/>")
            c.expect(q(NS_TLS, "proceed"))
            started = time.monotonic()
            if payload:
                c.sock.sendall(payload)
            elapsed, got = silent_until_closed(c.sock, started)
            c.abort()
            return elapsed, got, "starttls"
        return run

    variants = {
        "the witness, mid-attack": lambda: witness_mid_attack(w, TLS_TIMEOUT / 2),
        "direct TLS, TCP connect then silence": direct(b""),
        "direct TLS, half a ClientHello": direct(hello[:len(hello) // 2]),
        "direct TLS, ClientHello then silence": direct(hello),
        "direct TLS, ClientHello one byte every 0.3s": direct(hello, dribble=True),
        "STARTTLS <proceed/> then silence": starttls(b""),
        "STARTTLS <proceed/>, ClientHello then silence": starttls(hello),
        "STARTTLS <proceed/>, a few bytes then silence": starttls(hello[:5]),
    }
    results = run_concurrently(variants)
    w.flowing()
    failures = []
    for name, result in results.items():
        if isinstance(result, Exception):
            failures.append(f"{name}: {type(result).__name__}: {result}")
            continue
        if result is None:
            continue
        elapsed, got, kind = result
        if elapsed is None:
            failures.append(f"{name}: still connected after 20s")
            continue
        if not (TLS_TIMEOUT - 0.5 <= elapsed <= TLS_TIMEOUT + SLACK):
            failures.append(f"{name}: cut after {elapsed:.1f}s, expected about "
                            f"tls_handshake_timeout = {TLS_TIMEOUT}s")
        # Nothing in clear once TLS began: at most the server's TLS records.
        if got and got[:1] not in (b"\x15", b"\x16"):
            failures.append(f"{name}: the server sent non-TLS bytes: {got[:80]!r}")
    assert not failures, "\n".join(failures)
    w.verify()
