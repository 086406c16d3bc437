"""Helpers of the hostile suite: the well-behaved witness pair, stream-error
assertions, raw sockets from chosen 127.0.0.x addresses, and a sender that
pushes megabytes while still reading what the server says."""

import select
import socket
import ssl
import threading
import time

from rawxmpp import (NS_CLIENT, NS_STREAM, RawClient, StreamClosed,
                     tls_client_context)


# -- the witness -------------------------------------------------------------------

class Witness:
    """alice/RES and bob/RES, both gloox, send each other numbered chat
    messages every `interval` seconds from a background thread. verify()
    stops the thread and asserts that each side received exactly what the
    other sent, in order, from the other's real full JID, with no stray
    message and no disconnection."""

    def __init__(self, server, gloox_factory, interval=0.05, tag="w", extra_args=()):
        self.server = server
        self.domain = server.domain
        self.interval = interval
        self.tag = tag
        self.alice_jid = f"alice@{self.domain}/{tag}"
        self.bob_jid = f"bob@{self.domain}/{tag}"
        self.alice = gloox_factory(server, "alice", tag, *extra_args)
        self.bob = gloox_factory(server, "bob", tag, *extra_args)
        self.sent = {"a": 0, "b": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self.send_errors = []

    def start(self, timeout=30.0):
        self.alice.connected(timeout)
        self.bob.connected(timeout)
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"witness-{self.tag}")
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                try:
                    self.alice.cmd(f"send {self.bob_jid} {self.tag}-a-{self.sent['a']}")
                    self.sent["a"] += 1
                    self.bob.cmd(f"send {self.alice_jid} {self.tag}-b-{self.sent['b']}")
                    self.sent["b"] += 1
                except (BrokenPipeError, OSError) as e:
                    self.send_errors.append(repr(e))
                    return
            self._stop.wait(self.interval)

    def stop_sending(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _received(self, client, side):
        """Bodies of the witness messages `client` got from the other side,
        and every message that is not one of them."""
        prefix = f"{self.tag}-{side}-"
        sender = self.alice_jid if side == "a" else self.bob_jid
        ours, strays = [], []
        for m in client.messages():
            if m.get("body", "").startswith(prefix) and m.get("from") == sender \
                    and m.get("type") == "chat":
                ours.append(m["body"])
            else:
                strays.append(m)
        return ours, strays

    def _expected(self, side, count):
        return [f"{self.tag}-{side}-{i}" for i in range(count)]

    def _alive_problems(self):
        problems = []
        for name, client in (("alice", self.alice), ("bob", self.bob)):
            if client.proc.poll() is not None:
                problems.append(f"witness {name} exited with {client.proc.returncode}")
            if any(line.startswith("DISCONNECTED") for line in client.lines):
                problems.append(f"witness {name} was disconnected")
        if self.send_errors:
            problems.append(f"writing to a witness failed: {self.send_errors}")
        if not self.server.alive():
            problems.append(f"parleyd is not running (exit {self.server.proc.poll()})")
        return problems

    def flowing(self, timeout=10.0):
        """Waits until everything sent so far has arrived, without stopping:
        proof that the pair is served *during* an attack. Returns the counts."""
        with self._lock:
            want = dict(self.sent)
        deadline = time.monotonic() + timeout
        while True:
            got_b, _ = self._received(self.bob, "a")
            got_a, _ = self._received(self.alice, "b")
            if len(got_b) >= want["a"] and len(got_a) >= want["b"]:
                break
            problems = self._alive_problems()
            if problems or time.monotonic() > deadline:
                raise AssertionError(
                    f"witness stalled: bob has {len(got_b)}/{want['a']}, alice has "
                    f"{len(got_a)}/{want['b']} after {timeout}s; {problems}\n"
                    f"alice:\n{self.alice.transcript()[-3000:]}\nbob:\n{self.bob.transcript()[-3000:]}")
            time.sleep(0.05)
        return want

    def verify(self, min_sent=5, allow_strays=False, timeout=15.0):
        """Stops sending, waits for the tail, and asserts: sent == received, in
        order, from the real sender, both clients still connected.
        Returns the stray messages (not the witness's) each side received."""
        deadline = time.monotonic() + timeout
        # A quick attack is over in milliseconds: let the pair talk a little
        # longer, so that there is something to lose.
        while min(self.sent.values()) < min_sent and time.monotonic() < deadline \
                and self._thread.is_alive():
            time.sleep(self.interval)
        self.stop_sending()
        sent = dict(self.sent)
        while True:
            got_b, strays_b = self._received(self.bob, "a")
            got_a, strays_a = self._received(self.alice, "b")
            if (len(got_b) >= sent["a"] and len(got_a) >= sent["b"]) or time.monotonic() > deadline:
                break
            if self._alive_problems():
                break
            time.sleep(0.05)
        problems = self._alive_problems()
        assert sent["a"] >= min_sent and sent["b"] >= min_sent, (
            f"the witness sent only {sent} messages during the attack")
        assert got_b == self._expected("a", sent["a"]), (
            f"bob received {len(got_b)} of alice's {sent['a']} messages"
            f" (first differences: {_first_difference(got_b, self._expected('a', sent['a']))}); "
            f"{problems}\nbob:\n{self.bob.transcript()[-3000:]}")
        assert got_a == self._expected("b", sent["b"]), (
            f"alice received {len(got_a)} of bob's {sent['b']} messages"
            f" (first differences: {_first_difference(got_a, self._expected('b', sent['b']))}); "
            f"{problems}\nalice:\n{self.alice.transcript()[-3000:]}")
        if not allow_strays:
            assert not strays_a and not strays_b, (
                f"the witness received messages it did not expect: alice {strays_a}, bob {strays_b}")
        assert not problems, "; ".join(problems)
        return {"alice": strays_a, "bob": strays_b}


def _first_difference(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"at {i}: got {g!r}, want {w!r}"
    if len(got) != len(want):
        return f"lengths {len(got)} vs {len(want)}"
    return "none"


# -- stream errors -------------------------------------------------------------------

def assert_stream_error_and_close(client, expected, timeout=10.0):
    """<stream:error><EXPECTED/></stream:error>, after a stream header of the
    server's own, then </stream:stream> and the TCP connection closed.
    `expected` may be a tuple of acceptable conditions."""
    accepted = expected if isinstance(expected, tuple) else (expected,)
    try:
        condition = client.expect_stream_error(timeout)
    except StreamClosed:
        raise AssertionError(f"connection closed without a stream error (expected {accepted});"
                             f" received {[e.tag for e in client.received]}")
    assert condition in accepted, f"stream error <{condition}/>, expected {accepted}"
    assert not client.missing_header, "stream error sent without a stream header first"
    assert client.wait_closed(timeout), "stream not closed after the stream error"
    assert client.closed_by_peer, "no </stream:stream> after the stream error"
    assert client.wait_eof(timeout), "TCP connection left open after </stream:stream>"
    return condition


# -- sockets -------------------------------------------------------------------------

def connect_from(source_ip, port, host="127.0.0.1", timeout=10.0):
    """A TCP connection to host:port from the loopback address source_ip."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source_ip, 0))
    sock.connect((host, port))
    return sock


_create_lock = threading.Lock()


def raw_from(source_ip, port, **kwargs):
    """A RawClient whose TCP connection comes from source_ip (RawClient itself
    always lets the kernel choose: socket.create_connection is given the
    source address for the duration of the constructor)."""
    real = socket.create_connection

    def create(address, timeout=None, source_address=None):
        return real(address, timeout=timeout, source_address=(source_ip, 0))

    with _create_lock:
        socket.create_connection = create
        try:
            return RawClient(port, **kwargs)
        finally:
            socket.create_connection = real


def stream_header(domain="localhost"):
    return (f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
            f"xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}'>")


def poll_socket(sock, timeout, write=False):
    """(readable, writable) within timeout seconds; poll(), so that any file
    descriptor number works (select() stops at 1024)."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | (select.POLLOUT if write else 0))
    events = poller.poll(int(timeout * 1000))
    mask = events[0][1] if events else 0
    readable = bool(mask & (select.POLLIN | select.POLLHUP | select.POLLERR))
    writable = bool(mask & select.POLLOUT)
    return readable, writable


def blast(client, data, chunk=16384, timeout=30.0):
    """Sends `data` (bytes) while reading whatever the server answers, so that
    a stream error sent mid-upload is seen. Stops at the first send error or
    once the server has closed. Returns the number of bytes the kernel took."""
    sock = client.sock
    sent = 0
    deadline = time.monotonic() + timeout
    while sent < len(data) and time.monotonic() < deadline:
        if client.closed_by_peer or client.eof:
            break
        pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        readable, writable = poll_socket(sock, 0.5, write=True)
        if readable or pending:
            client._fill(time.monotonic() + 0.05)
            continue
        if writable:
            sock.settimeout(5)
            try:
                sent += sock.send(data[sent:sent + chunk])
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError, TimeoutError):
                break
    return sent


def tls_client_hello(domain="localhost"):
    """The bytes of a real TLS ClientHello, made with a memory BIO."""
    ctx = tls_client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=domain)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def rss_kib(pid):
    """Resident set size of a process, in KiB (from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
