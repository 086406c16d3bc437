"""What parleyd's log says: stream errors with their condition at info, and
every stanza in and out with its session id at debug (the start tag) and
trace (the whole stanza), credentials never; the operator's events as
`event=NAME key=value` lines, and as JSON objects with `log_format: json`."""

import base64
import json
import re
import sqlite3
import time

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, q, sasl_failure_condition

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
    wait_for_log(server, r" info event=stream_error session=\d+ condition=invalid-namespace ip=127\.0\.0\.1$")
    version = raw_factory(server.c2s_port)
    version.open_stream(version="2.0")
    assert version.expect_stream_error() == "unsupported-version"
    wait_for_log(server, r" info event=stream_error session=\d+ condition=unsupported-version ip=127\.0\.0\.1$")
    garbage = raw_factory(server.c2s_port)
    garbage.open_stream()
    garbage.read_header()
    garbage.send("<message><unclosed></message>")
    assert garbage.expect_stream_error() == "not-well-formed"
    # The parser's detail goes to the log, not to the peer.
    wait_for_log(server, r" info event=stream_error session=\d+ condition=not-well-formed ip=127\.0\.0\.1 detail=.+$")


# ---- operator events (issue 17) -------------------------------------------------

def wrong_password(server, raw_factory, user):
    client = raw_factory(server.c2s_port)
    client.start()
    client.starttls()
    outcome = client.auth_plain(user, "not-the-password")
    assert outcome.tag.endswith("failure")
    return client


def test_operator_events_are_greppable_lines(server_factory, raw_factory):
    server = server_factory(loglevel="info")
    server.register("alice", PASSWORD)
    wait_for_log(server, r" info event=start workers=2 hosts=localhost$")
    wait_for_log(server, rf" info event=listener_up kind=c2s address=127\.0\.0\.1:{server.c2s_port} tls=starttls$")
    wait_for_log(server, rf" info event=listener_up kind=c2s address=127\.0\.0\.1:{server.tls_port} tls=direct$")
    wait_for_log(server, r" info event=module_loaded module=mod_disco version=\S+ path=\S+mod_disco\.so$")
    wrong_password(server, raw_factory, "alice")
    wait_for_log(server, r" info event=auth_failure session=\d+ ip=127\.0\.0\.1 mechanism=PLAIN user=alice "
                         r"condition=not-authorized$")
    # A SCRAM exchange's account comes from its client-first message (the
    # stream keeps no copy of its own: per-session memory, session_size_test).
    scram = raw_factory(server.c2s_port)
    scram.start()
    scram.starttls()
    assert scram.auth_scram("alice", "not-the-password").tag.endswith("failure")
    wait_for_log(server, r" info event=auth_failure session=\d+ ip=127\.0\.0\.1 mechanism=SCRAM-SHA-1 user=alice "
                         r"condition=not-authorized$")
    unloaded = server.ctl("module", "unload", "mod_ping")
    assert unloaded.returncode == 0, unloaded.stdout + unloaded.stderr
    wait_for_log(server, r" info event=module_unloaded module=mod_ping$")
    code, killed = server.stop()
    assert code == 0 and not killed
    assert re.search(r" info event=stop$", server.log(), re.M)


def test_storage_error_is_a_greppable_line(server_factory, raw_factory):
    """A storage error provoked deterministically: the credentials table goes
    away under the running server (as in a damaged or hand-edited file), so a
    login's credentials read fails at once, is logged with what failed, and the
    client is told temporary-auth-failure (RFC 6120 6.5.13)."""
    server = server_factory(loglevel="info")
    server.register("alice", PASSWORD)
    db = sqlite3.connect(server.config["storage"]["path"], timeout=30)
    try:
        db.execute("ALTER TABLE scram_credentials RENAME TO scram_credentials_gone")
        db.commit()
    finally:
        db.close()
    for mechanism in ("PLAIN", "SCRAM-SHA-1"):
        client = raw_factory(server.c2s_port)
        client.start()
        client.starttls()
        outcome = client.auth_plain("alice", PASSWORD) if mechanism == "PLAIN" else client.auth_scram("alice", PASSWORD)
        assert sasl_failure_condition(outcome) == "temporary-auth-failure", mechanism
    # One line per failed read, PLAIN's and SCRAM's (the log may lag the answers).
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in server.log().splitlines() if "event=storage_error what=credentials" in line]
        if len(lines) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(lines) == 2, server.log()[-3000:]
    for line in lines:
        assert re.search(r" error event=storage_error what=credentials user=alice@localhost error=.*no such table", line)


def test_log_format_json(server_factory, raw_factory):
    server = server_factory(start=False, loglevel="info")
    server.config["log_format"] = "json"
    server.start()
    server.register("alice", PASSWORD)
    wrong_password(server, raw_factory, "alice")
    bad_ns = raw_factory(server.c2s_port)
    bad_ns.open_stream(ns="urn:example:not-xmpp")
    assert bad_ns.expect_stream_error() == "invalid-namespace"

    def events(name):
        found = []
        for line in server.log().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == name:
                    found.append(record)
        return found

    deadline = time.monotonic() + 10
    while not (events("auth_failure") and events("stream_error")):
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.02)
    failure = events("auth_failure")[0]
    assert (failure["ip"], failure["user"], failure["mechanism"], failure["condition"]) == \
        ("127.0.0.1", "alice", "PLAIN", "not-authorized")
    assert failure["level"] == "info" and failure["msg"].startswith("event=auth_failure ")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", failure["time"])
    assert events("stream_error")[0]["condition"] == "invalid-namespace"
    assert {e["address"] for e in events("listener_up")} == {f"127.0.0.1:{server.c2s_port}",
                                                              f"127.0.0.1:{server.tls_port}"}
    assert events("start")[0]["hosts"] == "localhost"
    code, killed = server.stop()
    assert code == 0 and not killed
    # Every line parleyd wrote is one JSON object (spdlog's own lines included).
    for line in server.log().splitlines():
        json.loads(line)
    assert events("stop")


def test_log_format_is_checked(server_factory):
    server = server_factory(start=False)
    server.config["log_format"] = "xml"
    server.write_config()
    import subprocess
    result = subprocess.run([server.parleyd, "--config", str(server.config_path), "--check-config"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert re.search(r"parley\.yml:\d+:\d+: .*unknown log format 'xml'", result.stderr), result.stderr

