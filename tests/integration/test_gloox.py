"""A real client library against parleyd: gloox 1.0.24 (GnuTLS) through
parley_gloox_client.

gloox facts these tests rely on (observed, and read from gloox's source):
- gloox 1.0.24 built with GnuTLS disables TLS 1.3, so STARTTLS runs TLS 1.2 and
  its SCRAM-SHA-1-PLUS uses tls-unique channel binding.
- Restricted to SCRAM-SHA-1 over STARTTLS, gloox sends the gs2 flag 'y'
  ("I support channel binding, you don't seem to"). A server that offers
  SCRAM-SHA-1-PLUS must refuse that (RFC 5802 section 6: downgrade attack).
- Over direct TLS gloox cannot bind the channel, so it uses SCRAM-SHA-1 with
  the gs2 flag 'n', which must succeed.
The routing tests log in with PLAIN (gloox_factory's default) so that they do
not depend on channel binding; the SASL tests pick their mechanism.
"""

import pytest

from conftest import PASSWORD
from gloox_driver import (EXIT_AUTH, EXIT_CONNECTION, EXIT_LOST, EXIT_NO_MECHANISM, EXIT_OK,
                          EXIT_TIMEOUT, parse_event)


def test_scram_sha1_plus_over_starttls(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "plus", mech="scram-sha-1-plus", commands=["quit"])
    online = c.connected()
    assert online["mech"] == "SCRAM-SHA-1-PLUS"
    assert online["tls"].startswith("TLS")
    assert online["jid"] == f"alice@{server.domain}/plus"
    assert c.wait_exit() == EXIT_OK


def test_default_choice_is_scram_sha1_plus(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "default", mech=None, commands=["quit"])
    assert c.connected()["mech"] == "SCRAM-SHA-1-PLUS"
    assert c.wait_exit() == EXIT_OK


def test_scram_sha1_over_direct_tls(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "direct", "--direct-tls", port=server.tls_port, mech=None,
                      commands=["ping", "quit"])
    online = c.connected()
    assert online["mech"] == "SCRAM-SHA-1"
    assert online["tls"].startswith("TLS")
    assert c.wait_for("PING")["result"] == "pong"
    assert c.wait_exit() == EXIT_OK


def test_scram_sha1_with_downgrade_flag_is_refused(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "y", mech="scram-sha-1", commands=["quit"])
    event = c.wait_for("DISCONNECTED")
    assert event["reason"] == "authentication-failed"
    assert c.wait_exit() == EXIT_AUTH
    assert not any(l.startswith("CONNECTED") for l in c.lines)


def test_plain_over_starttls(server, accounts, gloox_factory):
    c = gloox_factory(server, "bob", "plain", mech="plain", commands=["quit"])
    assert c.connected()["mech"] == "PLAIN"
    assert c.wait_exit() == EXIT_OK


@pytest.mark.parametrize("user,password", [("alice", "wrong-password"), ("nobody", PASSWORD)])
def test_bad_credentials(server, accounts, gloox_factory, user, password):
    c = gloox_factory(server, user, "bad", mech="scram-sha-1-plus", password=password)
    event = c.wait_for("DISCONNECTED")
    assert event["reason"] == "authentication-failed"
    assert event["auth-error"] == "not-authorized"
    assert c.wait_exit() == EXIT_AUTH


def test_no_login_without_tls(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "clear", "--tls", "disabled", mech="plain")
    c.wait_for("DISCONNECTED")
    assert c.wait_exit() in (EXIT_CONNECTION, EXIT_AUTH, EXIT_NO_MECHANISM)
    assert not any(l.startswith("CONNECTED") for l in c.lines)


def test_messages_to_full_and_bare_jids(server, accounts, gloox_factory):
    alice = gloox_factory(server, "alice", "laptop")
    bob = gloox_factory(server, "bob", "phone")
    alice.connected()
    bob.connected()
    alice.cmd(f"send bob@{server.domain}/phone to the full jid")
    bob.cmd("expect-msg to the full jid 10")
    bob.wait_for("OK expect-msg")
    bob.cmd(f"send alice@{server.domain} to the bare jid")
    alice.cmd("expect-msg to the bare jid 10")
    alice.wait_for("OK expect-msg")
    got = [m for m in bob.messages() if m["body"] == "to the full jid"][0]
    assert got["from"] == f"alice@{server.domain}/laptop"
    assert got["type"] == "chat"
    got = [m for m in alice.messages() if m["body"] == "to the bare jid"][0]
    assert got["from"] == f"bob@{server.domain}/phone"
    assert alice.quit() == EXIT_OK
    assert bob.quit() == EXIT_OK


def test_message_types_are_kept(server, accounts, gloox_factory):
    alice = gloox_factory(server, "alice", "a")
    bob = gloox_factory(server, "bob", "b")
    alice.connected()
    bob.connected()
    for kind in ("normal", "headline", "chat"):
        alice.cmd(f"send-type {kind} bob@{server.domain}/b kind {kind}")
        bob.wait_for("MSG", type=kind, body=f"kind {kind}")


def test_ping(server, accounts, gloox_factory):
    alice = gloox_factory(server, "alice", "a")
    bob = gloox_factory(server, "bob", "b")
    alice.connected()
    bob.connected()
    alice.cmd(f"ping {server.domain}")
    assert alice.wait_for("PING", jid=server.domain)["result"] == "pong"
    alice.cmd(f"ping bob@{server.domain}/b")  # answered by gloox on bob's side
    assert alice.wait_for("PING", jid=f"bob@{server.domain}/b")["result"] == "pong"


def test_disco_info_on_the_server(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "disco", commands=[f"disco {server.domain}", "quit"])
    end = c.wait_for("DISCO-END")
    assert end["result"] == "ok"
    features = [parse_event(l)[1]["var"] for l in c.lines if l.startswith("DISCO-FEATURE ")]
    assert "urn:xmpp:ping" in features
    assert "http://jabber.org/protocol/disco#info" in features
    assert any("category=server" in l and "type=im" in l
               for l in c.lines if l.startswith("DISCO-IDENTITY"))
    assert c.wait_exit() == EXIT_OK


def test_bare_jid_goes_to_the_higher_priority(server, accounts, gloox_factory):
    high = gloox_factory(server, "bob", "high", "--priority", "10")
    low = gloox_factory(server, "bob", "low", "--priority", "2")
    high.connected()
    low.connected()
    # The initial presences are processed once each client has seen its own.
    high.wait_for("PRESENCE", **{"from": f"bob@{server.domain}/high"})
    low.wait_for("PRESENCE", **{"from": f"bob@{server.domain}/low"})
    # Then a marker to the low resource: routed after the first message, on
    # alice's loop, so anything that went to low comes before it.
    alice = gloox_factory(server, "alice", "a",
                          commands=[f"send bob@{server.domain} for the top",
                                    f"send bob@{server.domain}/low marker for low", "ping", "quit"])
    assert alice.wait_exit() == EXIT_OK
    high.cmd("expect-msg for the top 10")
    high.wait_for("OK expect-msg")
    low.cmd("expect-msg marker for low 10")
    low.wait_for("OK expect-msg")
    assert not [m for m in low.messages() if m["body"] == "for the top"]


def test_ring_of_clients(server, gloox_factory):
    # Enough sessions that, with two workers, routing crosses loops.
    n = 12
    for i in range(n):
        server.register(f"u{i}", PASSWORD)
    clients = [gloox_factory(server, f"u{i}", "ring") for i in range(n)]
    for c in clients:
        c.connected()
    for i, c in enumerate(clients):
        c.cmd(f"send u{(i + 1) % n}@{server.domain}/ring hop from {i}")
    for i, c in enumerate(clients):
        c.cmd(f"expect-msg hop from {(i - 1) % n} 15")
    for c in clients:
        c.wait_for("OK expect-msg", timeout=20)
    for c in clients:
        assert c.quit() == EXIT_OK


def test_resource_conflict(server, accounts, gloox_factory):
    first = gloox_factory(server, "carol", "same")
    first.connected()
    second = gloox_factory(server, "carol", "same")
    second.connected()
    event = first.wait_for("DISCONNECTED")
    assert event.get("stream-error") == "conflict"
    assert first.wait_exit() == EXIT_LOST
    second.cmd(f"ping {server.domain}")
    assert second.wait_for("PING")["result"] == "pong"
    assert second.quit() == EXIT_OK


def test_expect_timeout_exit_code(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "waits", commands=["expect-msg never sent 1"])
    c.wait_for("TIMEOUT expect-msg")
    assert c.wait_exit() == EXIT_TIMEOUT


def test_server_shutdown_disconnects_clients(server, accounts, gloox_factory):
    c = gloox_factory(server, "alice", "shutdown")
    c.connected()
    code, killed = server.stop()
    assert not killed and code == 0
    event = c.wait_for("DISCONNECTED")
    assert event["reason"] in ("stream-closed", "stream-error", "io-error")
    if event["reason"] == "stream-error":
        assert event["stream-error"] == "system-shutdown"
    assert c.wait_exit() == EXIT_LOST
