"""Hostile XML: malformed input, restricted XML (DOCTYPE, entities, billion
laughs, external entities), a 10 MiB stanza and 10,000-deep nesting.

Each attack is made by mallory over a raw socket, before authentication (on
the plaintext stream) and after it (a bound session), while the witness pair
(two gloox clients) keeps exchanging messages on the same server. Every case
must end in the RFC 6120 stream error named below, after a stream header of
the server's own, followed by </stream:stream> and the TCP close (4.9.1.1).
"""

import socket
import threading
import time

import pytest

from conftest import PASSWORD
from hostile import assert_stream_error_and_close, blast, rss_kib, stream_header
from rawxmpp import NS_CLIENT, NS_SASL, NS_STREAM, NS_TLS, q

BOB = "bob@localhost"

# -- malformed XML (RFC 6120 4.9.3.13 not-well-formed, 4.9.3.22 unsupported-encoding,
# 4.9.3.2 bad-namespace-prefix, 4.9.3.1 bad-format) -------------------------------------

MALFORMED = [
    # (name, bytes sent once the stream is open, expected condition(s))
    ("mismatched-end-tag", b"<message to='bob@localhost'><body>x</bdy></message>", "not-well-formed"),
    ("wrong-stream-end-tag", b"</stream:streams>", "not-well-formed"),
    ("unclosed-then-stream-end", b"<message to='bob@localhost'><body>x</stream:stream>",
     "not-well-formed"),
    ("unquoted-attribute", b"<message to=bob@localhost><body>x</body></message>", "not-well-formed"),
    ("duplicate-attribute", b"<message to='a@localhost' to='b@localhost'/>", "not-well-formed"),
    ("bad-name-start", b"<1message/>", "not-well-formed"),
    ("lone-ampersand", b"<message><body>fish & chips</body></message>", "not-well-formed"),
    ("lt-in-attribute", b"<message to='a<b'/>", "not-well-formed"),
    ("nul-byte", b"<message><body>a\x00b</body></message>", "not-well-formed"),
    ("control-char", b"<message><body>a\x01b</body></message>", "not-well-formed"),
    ("bad-char-reference", b"<message><body>&#0;</body></message>", "not-well-formed"),
    ("misplaced-xml-declaration", b"<?xml version='1.0'?>", ("not-well-formed", "restricted-xml")),
    ("utf8-invalid-bytes", b"<message><body>\xff\xfe</body></message>", "unsupported-encoding"),
    ("utf8-overlong-lt", b"<message><body>\xc0\xbc</body></message>", "unsupported-encoding"),
    ("utf8-surrogate", b"<message><body>\xed\xa0\x80</body></message>", "unsupported-encoding"),
    ("utf8-truncated", b"<message><body>\xe2\x82</body></message>", "unsupported-encoding"),
    ("utf8-above-u10ffff", b"<message><body>\xf4\x90\x80\x80</body></message>",
     "unsupported-encoding"),
    ("unbound-prefix", b"<foo:message/>", "bad-namespace-prefix"),
    ("unbound-attribute-prefix", b"<message foo:bar='x'/>", "bad-namespace-prefix"),
    ("text-between-stanzas", b"this is not a stanza", "bad-format"),
    ("binary-junk", bytes(range(0x02, 0x20)) * 4, "not-well-formed"),
]

# Sent instead of a stream header: the server must answer with a header of its
# own and the error.
BEFORE_HEADER = [
    ("http-request", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "not-well-formed"),
    ("tls-record-in-clear", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 32,
     "not-well-formed"),
    ("latin1-declaration",
     ("<?xml version='1.0' encoding='ISO-8859-1'?>" + stream_header().split("?>", 1)[1]).encode(),
     "unsupported-encoding"),
    ("utf16-bom", "\ufeff<stream:stream to='localhost' version='1.0'>".encode("utf-16-le"),
     ("unsupported-encoding", "not-well-formed")),
    ("stream-then-junk", stream_header().encode() + b"\xff\xff\xff", "unsupported-encoding"),
]

# -- restricted XML (RFC 6120 11.1 and 4.9.3.18 restricted-xml) -------------------------

LAUGHS = ("<!DOCTYPE stream:stream [<!ENTITY lol 'lol'>"
          + "".join(f"<!ENTITY lol{i} '{('&lol' + str(i - 1) + ';') * 10 if i > 1 else '&lol;' * 10}'>"
                    for i in range(1, 10))
          + "]>")

RESTRICTED_PROLOG = [
    # (name, text put between the XML declaration and the stream header)
    ("billion-laughs", LAUGHS),
    ("external-entity", "<!DOCTYPE stream:stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>"),
    ("external-dtd", "<!DOCTYPE stream:stream SYSTEM 'http://127.0.0.1:{port}/evil.dtd'>"),
    ("parameter-entity",
     "<!DOCTYPE stream:stream [<!ENTITY % pe SYSTEM 'http://127.0.0.1:{port}/pe.dtd'> %pe;]>"),
    ("empty-doctype", "<!DOCTYPE stream:stream>"),
]

RESTRICTED_IN_STREAM = [
    # (name, bytes sent once the stream is open)
    ("doctype-in-content", b"<!DOCTYPE message [<!ENTITY a 'b'>]><message/>"),
    ("laughs-in-content", LAUGHS.encode() + b"<message><body>&lol9;</body></message>"),
    ("undefined-entity", b"<message to='bob@localhost'><body>&lol9;</body></message>"),
    ("entity-in-attribute", b"<message to='&xxe;'><body>x</body></message>"),
    ("comment", b"<!-- nothing to see -->"),
    ("comment-in-stanza", b"<message to='bob@localhost'><!-- x --><body>x</body></message>"),
    ("processing-instruction", b"<?evil payload?>"),
    ("pi-in-stanza", b"<message to='bob@localhost'><?evil payload?><body>x</body></message>"),
]


def run_cases(cases, attempt):
    """Runs attempt(case) for every case; one failing case does not hide the
    others: all failures are reported together."""
    failures = []
    for case in cases:
        try:
            attempt(case)
        except Exception as e:  # noqa: BLE001 - reported below, with the case's name
            failures.append(f"{case[0]}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures)


class Attacker:
    """Opens mallory's connections in the phase under test."""

    def __init__(self, server, raw_factory, phase):
        self.server = server
        self.raw_factory = raw_factory
        self.phase = phase
        self.count = 0

    def connect(self):
        self.count += 1
        c = self.raw_factory(self.server.c2s_port)
        if self.phase == "pre-auth":
            c.start()  # plaintext, not authenticated: the widest door
        else:
            c.login("mallory", PASSWORD, resource=f"m{self.count}")
        return c


class NoFetch:
    """A listener that records whether anyone fetches the 'external' DTD."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.hits += 1
                conn.close()
            except (socket.timeout, TimeoutError, OSError):
                pass

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.mark.parametrize("phase", ["pre-auth", "online"])
def test_malformed_xml(hostile_server, raw_factory, witness, phase):
    server = hostile_server()
    w = witness(server)
    attacker = Attacker(server, raw_factory, phase)

    def attempt(case):
        name, payload, expected = case
        c = attacker.connect()
        c.send(payload)
        assert_stream_error_and_close(c, expected)

    run_cases(MALFORMED, attempt)
    w.flowing()
    w.verify()


def test_garbage_instead_of_a_stream_header(hostile_server, raw_factory, witness):
    server = hostile_server()
    w = witness(server)

    def attempt(case):
        name, payload, expected = case
        c = raw_factory(server.c2s_port)
        c.send(payload)
        assert_stream_error_and_close(c, expected)

    run_cases(BEFORE_HEADER, attempt)
    w.verify()


def test_unclosed_stanza_then_eof(hostile_server, raw_factory, witness):
    # A client that vanishes mid-stanza: the server drops its half of the
    # connection and nothing partial is routed to bob.
    server = hostile_server()
    w = witness(server)
    c = raw_factory(server.c2s_port)
    c.login("mallory", PASSWORD, resource="vanish")
    c.send(f"<message to='{w.bob_jid}' type='chat'><body>never finished")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.wait_eof(10), "server kept a half-closed connection open"
    w.verify()


@pytest.mark.parametrize("phase", ["pre-auth", "online"])
def test_restricted_xml_in_the_stream(hostile_server, raw_factory, witness, phase):
    server = hostile_server()
    w = witness(server)
    attacker = Attacker(server, raw_factory, phase)

    def attempt(case):
        name, payload = case
        c = attacker.connect()
        c.send(payload)
        assert_stream_error_and_close(c, "restricted-xml")

    run_cases(RESTRICTED_IN_STREAM, attempt)
    w.flowing()
    w.verify()


@pytest.mark.parametrize("where", ["first-stream", "after-starttls", "after-sasl"])
def test_doctype_entities_and_billion_laughs(hostile_server, raw_factory, witness, where):
    # A DTD may come before any stream header, including the ones that restart
    # the stream after STARTTLS and after SASL (new XML documents, RFC 6120
    # 5.4.3.3 and 6.4.6). Nothing may be expanded or fetched.
    server = hostile_server()
    w = witness(server)
    fetch = NoFetch()
    rss_before = rss_kib(server.proc.pid)
    try:
        def attempt(case):
            name, prolog = case
            prolog = prolog.replace("{port}", str(fetch.port))
            c = raw_factory(server.c2s_port)
            if where == "after-starttls":
                c.start()
                c.send(f"<starttls xmlns='{NS_TLS}'/>")
                c.expect(q(NS_TLS, "proceed"))
                c._wrap_tls()
            elif where == "after-sasl":
                c.start()
                c.starttls()
                assert c.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")
            started = time.monotonic()
            c.open_stream(prefix=prolog)
            assert_stream_error_and_close(c, "restricted-xml")
            elapsed = time.monotonic() - started
            assert elapsed < 5, f"refusing the DTD took {elapsed:.1f}s"
            leaked = b"".join(e.text.encode() if e.text else b"" for e in c.received)
            assert b"root:" not in leaked, "the content of /etc/passwd came back"

        run_cases(RESTRICTED_PROLOG, attempt)
    finally:
        time.sleep(0.2)
        fetch.close()
    assert fetch.hits == 0, f"the server fetched an external DTD/entity {fetch.hits} time(s)"
    grown = rss_kib(server.proc.pid) - rss_before
    assert grown < 200 * 1024, f"parleyd grew by {grown} KiB: were entities expanded?"
    w.flowing()
    w.verify()


# -- size and depth limits (RFC 6120 4.9.3.14 policy-violation) -----------------------------

TEN_MIB = 10 * 1024 * 1024


def oversize_cases(bob_jid):
    return [
        ("10MiB-body",
         f"<message to='{bob_jid}' type='chat'><body>".encode() + b"x" * TEN_MIB),
        ("10MiB-attribute", f"<message to='{bob_jid}' type='chat' id='".encode() + b"y" * TEN_MIB),
        ("10MiB-element-name", b"<" + b"z" * TEN_MIB),
        ("100k-attributes", b"<message " + b"".join(b"a%d='1' " % i for i in range(100_000))),
        ("20k-namespace-declarations", f"<message to='{bob_jid}' type='chat'".encode()
         + b"".join(b" xmlns:p%d='u:%d'" % (i, i) for i in range(20_000)) + b"><body>ns</body>"),
        ("200k-elements", f"<message to='{bob_jid}' type='chat'>".encode() + b"<a/>" * 200_000),
    ]


@pytest.mark.parametrize("phase", ["pre-auth", "online"])
def test_ten_mib_stanza_and_other_giants(hostile_server, raw_factory, witness, phase):
    # max_stanza_bytes, max_attribute_bytes, max_xml_attributes and
    # max_xml_elements; the stanza never reaches bob, not even in part.
    server = hostile_server(limits={"max_stanza_bytes": 65536, "max_attribute_bytes": 4096,
                                    "max_xml_attributes": 32, "max_xml_elements": 1000})
    w = witness(server)
    attacker = Attacker(server, raw_factory, phase)

    def attempt(case):
        name, payload = case
        c = attacker.connect()
        started = time.monotonic()
        blast(c, payload)
        assert_stream_error_and_close(c, "policy-violation", timeout=15)
        elapsed = time.monotonic() - started
        assert elapsed < 15, f"{name}: refused only after {elapsed:.1f}s"

    run_cases(oversize_cases(w.bob_jid), attempt)
    w.flowing()
    w.verify()


def test_giant_stream_header(hostile_server, raw_factory, witness):
    server = hostile_server(limits={"max_stanza_bytes": 65536})
    w = witness(server)
    c = raw_factory(server.c2s_port)
    head = (f"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
            f"xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' x='").encode()
    blast(c, head + b"h" * TEN_MIB)
    assert_stream_error_and_close(c, "policy-violation", timeout=15)
    w.verify()


@pytest.mark.parametrize("phase", ["pre-auth", "online"])
def test_ten_thousand_deep_nesting(hostile_server, raw_factory, witness, phase):
    server = hostile_server(limits={"max_xml_depth": 32})
    w = witness(server)
    attacker = Attacker(server, raw_factory, phase)
    cases = [
        ("10000-open", f"<message to='{w.bob_jid}'>".encode() + b"<a>" * 10_000),
        ("10000-balanced", f"<message to='{w.bob_jid}'>".encode() + b"<a>" * 10_000
         + b"</a>" * 10_000 + b"</message>"),
        ("10000-namespaced", b"<message>" + b"".join(b"<n%d:a xmlns:n%d='urn:x:%d'>" % (i, i, i)
                                                     for i in range(10_000))),
    ]

    def attempt(case):
        name, payload = case
        c = attacker.connect()
        blast(c, payload)
        assert_stream_error_and_close(c, "policy-violation")

    run_cases(cases, attempt)
    w.flowing()
    w.verify()
