"""A hostile external component (XEP-0114): stanzas whose 'from' is outside
its own domain (another domain, a local user it would impersonate, a
subdomain of its own, no JID at all) end its stream with <invalid-from/>
(RFC 6120 4.9.3.9, as ejabberd and Prosody answer) and reach nobody; a
stanza without 'to' or 'from' is refused with <bad-request/>; oversized
stanzas and secret guessing get the c2s limits. The witness pair chats
throughout."""

import pytest

from component_client import NS_COMPONENT, RawComponent, handshake_digest
from conftest import PASSWORD
from hostile import assert_stream_error_and_close
from parley_harness import free_port
from rawxmpp import RawClient, q

SECRET = "evil-secret"

SPOOFED = [
    ("other-domain", "evil.example"),
    ("local-user", "alice@localhost/r"),
    ("server-itself", "localhost"),
    ("subdomain", "x.evil.localhost"),
    ("parent-domain", "localhost.evil"),
    ("malformed", "a@b@evil.localhost"),
]


@pytest.fixture
def setup(hostile_server, witness):
    port = free_port()
    server = hostile_server(limits={"max_stanza_bytes": 20000, "max_auth_failures_per_ip": 3},
                            extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                                              "hosts": {"evil.localhost": {"password": SECRET}}}])
    server.component_port = port
    w = witness(server)
    alice = RawClient(server.c2s_port)
    alice.login("alice", PASSWORD, resource="r", presence=True)
    yield server, w, alice
    alice.abort()


def test_from_outside_its_domain_is_refused(setup):
    server, w, alice = setup
    bob = RawClient(server.c2s_port)
    bob.login("bob", PASSWORD, resource="m")
    try:
        for name, spoofed in SPOOFED:
            comp = RawComponent(server.component_port, "evil.localhost")
            try:
                comp.connect_as(SECRET)
                comp.send(f"<message from='{spoofed}' to='{alice.jid}' type='chat'><body>spoofed</body></message>")
                assert_stream_error_and_close(comp, "invalid-from")
            finally:
                comp.abort()
            # Nothing reached alice: bob's marker comes first.
            assert alice.nothing_before_marker(bob) == [], name
        # The domain is free again: the component reconnects and speaks for itself.
        again = RawComponent(server.component_port, "evil.localhost")
        try:
            again.connect_as(SECRET)
            again.send(f"<message from='bot@evil.localhost' to='{alice.jid}' type='chat'><body>honest</body></message>")
            assert alice.expect_message("honest").get("from") == "bot@evil.localhost"
        finally:
            again.close()
    finally:
        bob.abort()
    w.verify()


def test_oversized_stanza_and_missing_addresses(setup):
    server, w, alice = setup
    comp = RawComponent(server.component_port, "evil.localhost")
    try:
        comp.connect_as(SECRET)
        comp.send("<message from='evil.localhost'><body>no to</body></message>")
        err = comp.expect(q(NS_COMPONENT, "message"))
        assert err.get("type") == "error"
        assert err.find(f"{{{NS_COMPONENT}}}error/{{urn:ietf:params:xml:ns:xmpp-stanzas}}bad-request") is not None
        comp.send(f"<message from='evil.localhost' to='{alice.jid}'><body>{'x' * 30000}</body></message>")
        assert_stream_error_and_close(comp, "policy-violation")
    finally:
        comp.abort()
    w.verify()


def try_handshake(server, secret, source):
    c = RawComponent(server.component_port, "evil.localhost", source=source)
    header = c.open_component_stream()
    c.send(f"<handshake>{handshake_digest(header['id'], secret)}</handshake>")
    return c


def test_handshake_guessing_is_limited_per_address(setup):
    server, w, alice = setup
    # limits.max_auth_failures_per_ip (3 here) wrong secrets from one address...
    for i in range(3):
        c = try_handshake(server, f"guess-{i}", "127.0.0.2")
        try:
            assert_stream_error_and_close(c, "not-authorized")
        finally:
            c.abort()
    # ...then even the right one is refused from there, within the window.
    c = try_handshake(server, SECRET, "127.0.0.2")
    try:
        assert_stream_error_and_close(c, "policy-violation")
    finally:
        c.abort()
    # Another address is not affected.
    ok = try_handshake(server, SECRET, "127.0.0.3")
    try:
        assert ok.next_element().tag == q(NS_COMPONENT, "handshake")
    finally:
        ok.close()
    w.verify()
