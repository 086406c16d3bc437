"""mod_ping's server-to-client pings (XEP-0199 section 4.2) with ejabberd's
options, at a short interval: an idle client is pinged at its full JID; one that
answers (a result, or an error) stays; one that does not answer is cut as a lost
connection with timeout_action kill (no stream error: with stream management
the session is kept detached), and only pinged again with none; a client that
keeps talking is not pinged; bad options refuse to start."""

import time

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, NS_PING, q
from test_modules import module_dir, start_failure

IQ = q(NS_CLIENT, "iq")
NS_TEST = "urn:parley:test:stream"


def ping_server(server_factory, tmp_path=None, stream_module=False, **options):
    mod_ping = {"send_pings": True, "ping_interval": 1, "ping_ack_timeout": 1, "timeout_action": "kill"}
    mod_ping.update(options)
    modules = {"mod_disco": {}, "mod_ping": mod_ping}
    kwargs = {}
    if stream_module:
        modules["mod_test_stream"] = {}
        kwargs["module_paths"] = [module_dir(tmp_path, "mod_test_stream")]
    server = server_factory(modules=modules, workers=2, **kwargs)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    return server


def is_server_ping(client):
    return lambda e: (e.tag == IQ and e.get("type") == "get" and e.find(q(NS_PING, "ping")) is not None
                      and e.get("from") == client.domain)


def expect_ping(client, timeout=15):
    ping = client.expect(IQ, timeout, match=is_server_ping(client))
    assert ping.get("to") == client.jid
    assert ping.get("id")
    assert [c.tag for c in ping] == [q(NS_PING, "ping")]
    return ping


def test_an_idle_client_that_does_not_answer_is_cut_as_lost(server_factory, raw_factory):
    server = ping_server(server_factory)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="idle", presence=True)
    expect_ping(alice)
    # Not answered: the connection ends, without a stream error or </stream:stream>.
    assert alice.wait_eof(15)
    assert alice.stream_error_received() is None
    assert not alice.closed_by_peer
    assert "alice@localhost/idle did not answer a ping in 1 s: connection cut" in server.log()


def test_a_client_that_answers_stays(server_factory, raw_factory):
    server = ping_server(server_factory)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="awake", presence=True)
    for _ in range(3):
        ping = expect_ping(alice)
        alice.send(f"<iq type='result' id='{ping.get('id')}' to='{server.domain}'/>")
    alice.sync()  # still there
    assert not alice.eof


def test_an_error_answer_shows_the_client_alive(server_factory, raw_factory):
    server = ping_server(server_factory)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="noping", presence=True)
    for _ in range(2):
        ping = expect_ping(alice)
        alice.send(f"<iq type='error' id='{ping.get('id')}' to='{server.domain}'><ping xmlns='{NS_PING}'/>"
                   "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                   "</error></iq>")
    alice.sync()
    assert not alice.eof


def test_timeout_action_none_pings_again_and_keeps_the_connection(server_factory, raw_factory):
    server = ping_server(server_factory, timeout_action="none")
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="deaf", presence=True)
    first = expect_ping(alice)
    second = expect_ping(alice)  # after the first timed out and another interval passed
    assert second.get("id") != first.get("id")
    alice.sync()
    assert not alice.eof
    assert "alice@localhost/deaf did not answer a ping in 1 s" in server.log()


def test_a_client_that_keeps_talking_is_not_pinged(server_factory, raw_factory):
    server = ping_server(server_factory, ping_interval=3)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="chatty", presence=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        # Each round trip is activity; the answer ends the check of what came before it.
        assert not [e for e in alice.nothing_before_sync() if is_server_ping(alice)(e)]
        time.sleep(0.2)
    # Silent now: pinged after the interval.
    expect_ping(alice)


def test_a_cut_connection_is_lost_so_stream_management_keeps_the_session(server_factory, tmp_path, raw_factory):
    server = ping_server(server_factory, tmp_path, stream_module=True)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="phone", presence=True)
    alice.send(f"<enable xmlns='{NS_TEST}'/>")  # mod_test_stream: resumable
    alice.expect(q(NS_TEST, "enabled"))
    expect_ping(alice)
    assert alice.wait_eof(15)
    assert alice.stream_error_received() is None
    # SESSION_CLOSING was asked and kept the session: detached, not closed.
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="b")
    deadline = time.monotonic() + 10
    while True:
        reply = bob.iq("get", f"<query xmlns='{NS_TEST}'/>", to=server.domain)
        counters = reply.find(q(NS_TEST, "query"))
        if int(counters.get("detached")) >= 1:
            break
        assert time.monotonic() < deadline, reply
        time.sleep(0.05)
    assert int(counters.get("kept")) == 1 and int(counters.get("closing")) == 1


def test_bad_options_refuse_to_start(server_factory):
    log = start_failure(server_factory, modules={"mod_disco": {}, "mod_ping": {"timeout_action": "bogus"}})
    assert "timeout_action must be none or kill" in log
    log = start_failure(server_factory, modules={"mod_disco": {}, "mod_ping": {"ping_interval": 0}})
    assert "ping_interval must be 1 to 86400 seconds" in log
