"""What parleyd's log says: stream errors with their condition at info, and
every stanza in and out with its session id at debug (the start tag) and
trace (the whole stanza), credentials never."""

import base64
import re
import time

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, q

MESSAGE = q(NS_CLIENT, "message")


def wait_for_log(server, pattern, timeout=10):
    """The first log line matching `pattern` (a regex), once parleyd wrote it."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        for line in server.log().splitlines():
            if regex.search(line):
                return line
        assert time.monotonic() < deadline, f"no log line matches {pattern!r}:\n{server.log()[-5000:]}"
        time.sleep(0.02)


def session_id(server, full_jid):
    line = wait_for_log(server, rf"c2s \d+: bound {re.escape(full_jid)}$")
    return int(re.search(r"c2s (\d+): bound", line).group(1))


def login(server, raw_factory, user, resource):
    client = raw_factory(server.c2s_port)
    client.login(user, PASSWORD, resource=resource, presence=True)
    return client


def exchange(server, raw_factory, body):
    """alice sends bob a message; returns (alice, bob, message id)."""
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    stanza_id = alice.message(bob.jid, body)
    bob.expect_message(body)
    return alice, bob, stanza_id


def test_trace_logs_whole_stanzas_in_and_out_with_the_session_id(server_factory, raw_factory):
    server = server_factory(loglevel="trace")
    alice, bob, stanza_id = exchange(server, raw_factory, "traced body")
    alice_id, bob_id = session_id(server, alice.jid), session_id(server, bob.jid)
    assert alice_id != bob_id
    line_in = wait_for_log(server, rf"trace c2s {alice_id}: in <message .*id='{stanza_id}'")
    assert "<body>traced body</body>" in line_in
    line_out = wait_for_log(server, rf"trace c2s {bob_id}: out <message .*id='{stanza_id}'")
    assert "<body>traced body</body>" in line_out and f"from='{alice.jid}'" in line_out
    # An answer the session itself writes (here: to a ping) is logged too.
    alice.sync()
    wait_for_log(server, rf"trace c2s {alice_id}: out <iq type='result'")
    # Credentials stay out of the log, at any level.
    log = server.log()
    plain = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
    assert plain not in log and PASSWORD not in log
    assert re.search(rf"c2s {alice_id}: in <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                     r"mechanism='PLAIN'>$", log, re.M), "the SASL element is not summarised"


def test_debug_logs_the_start_tag_of_every_stanza(server_factory, raw_factory):
    server = server_factory(loglevel="debug")
    alice, bob, stanza_id = exchange(server, raw_factory, "summarised body")
    alice_id, bob_id = session_id(server, alice.jid), session_id(server, bob.jid)
    line_in = wait_for_log(server, rf"debug c2s {alice_id}: in <message .*id='{stanza_id}'")
    assert line_in.endswith("> {jabber:client}body")
    wait_for_log(server, rf"debug c2s {bob_id}: out <message .*id='{stanza_id}'")
    assert "summarised body" not in server.log()


def test_info_logs_no_stanzas(server_factory, raw_factory):
    server = server_factory(loglevel="info")
    exchange(server, raw_factory, "unlogged body")
    # The server has processed the exchange (bob got the message): any
    # stanza line would be in the log by now.
    assert not re.search(r"c2s \d+: (in|out) <", server.log())


def test_stream_errors_are_logged_with_their_condition_at_info(server_factory, raw_factory):
    server = server_factory(loglevel="info")
    bad_ns = raw_factory(server.c2s_port)
    bad_ns.open_stream(ns="urn:example:not-xmpp")
    assert bad_ns.expect_stream_error() == "invalid-namespace"
    wait_for_log(server, r" info c2s \d+: stream error invalid-namespace to 127\.0\.0\.1$")
    version = raw_factory(server.c2s_port)
    version.open_stream(version="2.0")
    assert version.expect_stream_error() == "unsupported-version"
    wait_for_log(server, r" info c2s \d+: stream error unsupported-version to 127\.0\.0\.1$")
    garbage = raw_factory(server.c2s_port)
    garbage.open_stream()
    garbage.read_header()
    garbage.send("<message><unclosed></message>")
    assert garbage.expect_stream_error() == "not-well-formed"
    # The parser's detail goes to the log, not to the peer.
    wait_for_log(server, r" info c2s \d+: stream error not-well-formed to 127\.0\.0\.1 \(.+\)$")
