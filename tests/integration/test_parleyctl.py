"""parleyctl against a running parleyd and against its database alone, and
what the account changes mean for logins (SCRAM credentials included)."""

import sqlite3

import pytest

from conftest import PASSWORD
from parley_harness import psql
from rawxmpp import NS_SASL, RawClient, q, sasl_failure_condition


def try_login(server, user, password, mechanism):
    """'success' or the SASL failure condition, over STARTTLS."""
    c = RawClient(server.c2s_port)
    try:
        c.start()
        c.starttls()
        if mechanism == "PLAIN":
            outcome = c.auth_plain(user, password)
        else:
            outcome = c.auth_scram(user, password, mechanism, gs2_flag="n")
        if outcome.tag == q(NS_SASL, "success"):
            return "success"
        return sasl_failure_condition(outcome)
    finally:
        c.close()


MECHANISMS = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]


@pytest.fixture
def backend_server(server_factory, storage_backend):
    """A started parleyd on each storage backend (the accounts on SQLite, or on PostgreSQL)."""
    return server_factory(storage=storage_backend)


def test_register_without_server_then_login(server_factory, storage_backend):
    server = server_factory(start=False, storage=storage_backend)
    server.register("alice", PASSWORD)
    listed = server.ctl("list-users", server.domain)
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout.split()
    server.start()
    for mech in MECHANISMS:
        assert try_login(server, "alice", PASSWORD, mech) == "success", mech


def test_register_with_server_running(server):
    server.register("bob", PASSWORD)
    for mech in MECHANISMS:
        assert try_login(server, "bob", PASSWORD, mech) == "success", mech


def test_register_twice_fails(server):
    server.register("alice", PASSWORD)
    again = server.ctl("register", "alice", server.domain, "other")
    assert again.returncode != 0
    assert try_login(server, "alice", PASSWORD, "PLAIN") == "success"


def test_register_on_unknown_host_fails(server):
    result = server.ctl("register", "alice", "not-served.example", PASSWORD)
    assert result.returncode != 0


def test_passwd_replaces_every_credential(backend_server):
    server = backend_server
    server.register("alice", PASSWORD)
    changed = server.ctl("passwd", "alice", server.domain, "new-password")
    assert changed.returncode == 0, changed.stderr
    for mech in MECHANISMS:
        assert try_login(server, "alice", PASSWORD, mech) == "not-authorized", mech
        assert try_login(server, "alice", "new-password", mech) == "success", mech


def test_unregister(backend_server):
    server = backend_server
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    removed = server.ctl("unregister", "bob", server.domain)
    assert removed.returncode == 0, removed.stderr
    assert try_login(server, "bob", PASSWORD, "PLAIN") == "not-authorized"
    listed = server.ctl("list-users", server.domain)
    assert listed.returncode == 0
    users = listed.stdout.split()
    assert "alice" in users and "bob" not in users


def test_ban_and_unban_account(server_factory, storage_backend):
    """ban-account (XEP-0133 disable-user from the CLI) on each backend: the flag
    set without a server (the database alone), then with one running (the
    account's session ends); a banned account's right password is told
    account-disabled (RFC 6120 6.5.1) by PLAIN and SCRAM alike, a wrong one
    not-authorized as always; unban-account lets it in again."""
    server = server_factory(start=False, storage=storage_backend)
    server.register("alice", PASSWORD)
    server.register("bob", PASSWORD)
    banned = server.ctl("ban-account", "alice", server.domain)
    assert banned.returncode == 0, banned.stdout + banned.stderr
    server.start()
    for mech in MECHANISMS:
        assert try_login(server, "alice", PASSWORD, mech) == "account-disabled", mech
        assert try_login(server, "alice", "wrong", mech) == "not-authorized", mech
    bob = RawClient(server.c2s_port)
    bob.login("bob", PASSWORD)
    banned = server.ctl("ban-account", "bob", server.domain)
    assert banned.returncode == 0, banned.stdout + banned.stderr
    assert bob.expect_stream_error() == "not-authorized"
    bob.abort()
    assert try_login(server, "bob", PASSWORD, "PLAIN") == "account-disabled"
    assert server.ctl("ban-account", "nobody", server.domain).returncode == 1
    unbanned = server.ctl("unban-account", "alice", server.domain)
    assert unbanned.returncode == 0, unbanned.stdout + unbanned.stderr
    for mech in MECHANISMS:
        assert try_login(server, "alice", PASSWORD, mech) == "success", mech
    assert "alice" in server.ctl("list-users", server.domain).stdout.split()  # an account all along


def test_accounts_survive_a_restart(backend_server):
    server = backend_server
    server.register("carol", PASSWORD)
    server.restart()
    for mech in MECHANISMS:
        assert try_login(server, "carol", PASSWORD, mech) == "success", mech


def test_accounts_are_on_postgresql_not_in_the_sqlite_file(server_factory, pg_storage):
    server = server_factory(storage=pg_storage)
    server.register("dave", PASSWORD)
    assert psql(pg_storage["url"], "SELECT username FROM users").split() == ["dave"]
    assert psql(pg_storage["url"], "SELECT COUNT(*) FROM scram_credentials WHERE username = 'dave'").strip() == "2"
    db = sqlite3.connect(f"file:{server.data_dir / 'parley.db'}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
    finally:
        db.close()
    assert try_login(server, "dave", PASSWORD, "SCRAM-SHA-256") == "success"
    assert try_login(server, "nobody", PASSWORD, "SCRAM-SHA-256") == "not-authorized"


def test_status(server):
    assert server.ctl("status").returncode == 0
    code, killed = server.stop()
    assert code == 0 and not killed
    assert server.ctl("status").returncode == 3


@pytest.mark.parametrize("args", [["register", "alice"], ["no-such-command"], []])
def test_usage_errors(server, args):
    result = server.ctl(*args)
    assert result.returncode != 0


# -- issue 17: the operator's verbs against a live server ----------------------------

import json  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from rawxmpp import NS_CLIENT, NS_STREAM_ERRORS, StreamErrorReceived  # noqa: E402


def ctl_ok(server, *args):
    result = server.ctl(*args)
    assert result.returncode == 0, f"parleyctl {args} -> {result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


def ctl_json(server, *args):
    return json.loads(ctl_ok(server, *args))


def test_connected_users_info_and_user_sessions(server, raw_login):
    alice = raw_login("alice", resource="desk")
    alice.send("<presence><priority>5</priority></presence>")
    alice.sync()
    bob = raw_login("bob", resource="phone")
    bob.sync()
    lines = ctl_ok(server, "connected-users-info").splitlines()
    assert len(lines) == 2, lines
    fields = lines[0].split("\t")
    assert fields[0] == "alice@localhost/desk"
    assert fields[1:4] == ["127.0.0.1", "tcp", "TLSv1.3"]
    assert fields[6] == "priority=5" and fields[7] == "available"
    assert lines[1].split("\t")[0] == "bob@localhost/phone"
    assert lines[1].split("\t")[7] == "unavailable"

    info = ctl_json(server, "connected-users-info", "--json")
    assert [s["jid"] for s in info] == ["alice@localhost/desk", "bob@localhost/phone"]
    a = info[0]
    assert (a["ip"], a["transport"], a["tls"], a["state"], a["priority"], a["available"]) == \
        ("127.0.0.1", "tcp", "TLSv1.3", "bound", 5, True)
    since = datetime.strptime(a["connected_since"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    age = (datetime.now(timezone.utc) - since).total_seconds()
    assert -2 <= age <= 60, a
    assert 0 <= a["idle_seconds"] <= age + 2, a

    mine = ctl_json(server, "user-sessions", "alice", "localhost", "--json")
    assert [s["jid"] for s in mine] == ["alice@localhost/desk"]
    assert ctl_ok(server, "user-sessions", "bob", "localhost").startswith("bob@localhost/phone\t")
    assert ctl_json(server, "user-sessions", "carol", "localhost", "--json") == []
    unknown = server.ctl("user-sessions", "alice", "elsewhere.example")
    assert unknown.returncode == 1 and "Unknown host" in unknown.stderr


def test_idle_counts_from_the_last_bytes_read(server, raw_login):
    alice = raw_login("alice", resource="idle")
    alice.sync()
    deadline = time.monotonic() + 10
    while True:  # whole seconds of the loop's clock: wait until two have passed
        (s,) = ctl_json(server, "user-sessions", "alice", "localhost", "--json")
        if s["idle_seconds"] >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert s["idle_seconds"] >= 2
    alice.sync()  # bytes read: idle starts again (at most a second boundary since)
    (s,) = ctl_json(server, "user-sessions", "alice", "localhost", "--json")
    assert s["idle_seconds"] <= 1, s


def test_kick_one_resource_then_all(server, raw_login):
    one = raw_login("alice", resource="one")
    two = raw_login("alice", resource="two")
    kicked = ctl_ok(server, "kick", "alice", "localhost", "one")
    assert kicked.strip() == "kicked alice@localhost/one"
    assert one.expect_stream_error() == "policy-violation"
    two.sync()  # the other resource stays
    assert ctl_ok(server, "connected-users").split() == ["alice@localhost/two"]
    kicked = ctl_ok(server, "kick", "alice", "localhost")
    assert kicked.strip() == "kicked alice@localhost/two"
    assert two.expect_stream_error() == "policy-violation"
    again = server.ctl("kick", "alice", "localhost")
    assert again.returncode == 1 and "No session of alice@localhost" in again.stderr
    assert server.ctl("kick", "alice").returncode != 0


def test_stats(server, accounts, raw_login):
    raw_login("alice", resource="a").sync()
    raw_login("alice", resource="b").sync()
    raw_login("bob").sync()
    stats = ctl_json(server, "stats", "--json")
    assert stats["registered_users"] == 3
    assert stats["online_users"] == 2
    assert stats["sessions"] == 3
    assert stats["hosts"] == {"localhost": {"registered_users": 3, "online_users": 2, "sessions": 3}}
    assert stats["uptime_seconds"] >= 0
    text = ctl_ok(server, "stats")
    assert "registered_users: 3\n" in text and "online_users: 2\n" in text
    assert "localhost.sessions: 3\n" in text


def test_send_message(server, raw_login):
    bob = raw_login("bob", resource="r", presence=True)
    ctl_ok(server, "send-message", "alice@localhost", "bob@localhost/r", "hello from the admin")
    msg = bob.expect_message("hello from the admin")
    assert msg.get("from") == "alice@localhost"
    assert msg.get("type") == "chat"
    refused = server.ctl("send-message", "someone@remote.example", "bob@localhost", "spoofed")
    assert refused.returncode == 1
    bad = server.ctl("send-message", "alice@localhost", "not a jid@@", "x")
    assert bad.returncode == 1
    # Nothing else reached bob: the next message through the same path is the marker.
    ctl_ok(server, "send-message", "alice@localhost", "bob@localhost/r", "marker")
    assert bob.expect(f"{{{NS_CLIENT}}}message").find(f"{{{NS_CLIENT}}}body").text == "marker"


def test_set_loglevel(server, raw_login):
    alice = raw_login("alice")
    ctl_ok(server, "set-loglevel", "warn")
    alice.send("<message to='alice@localhost' id='quiet-marker-1'><body>x</body></message>")
    alice.sync()
    assert "quiet-marker-1" not in server.log()
    ctl_ok(server, "set-loglevel", "debug")  # the harness's level: every stanza's start tag
    alice.send("<message to='alice@localhost' id='loud-marker-2'><body>x</body></message>")
    alice.sync()
    assert "loud-marker-2" in server.log()
    bad = server.ctl("set-loglevel", "loud")
    assert bad.returncode == 1 and "usage" in bad.stderr


def test_check_password_is_an_exit_code(server):
    server.register("alice", PASSWORD)
    right = server.ctl("check-password", "alice", "localhost", PASSWORD)
    assert (right.returncode, right.stdout, right.stderr) == (0, "", "")
    for args in [("alice", "localhost", "wrong"), ("nobody", "localhost", PASSWORD),
                 ("alice", "elsewhere.example", PASSWORD)]:
        wrong = server.ctl("check-password", *args)
        assert (wrong.returncode, wrong.stdout, wrong.stderr) == (1, "", ""), args
    # The same without a server (on the database).
    server.stop()
    assert server.ctl("check-password", "alice", "localhost", PASSWORD).returncode == 0
    assert server.ctl("check-password", "alice", "localhost", "wrong").returncode == 1


def test_json_output_of_the_read_verbs(server, raw_login):
    raw_login("alice", resource="j").sync()
    status = ctl_json(server, "status", "--json")
    assert status["running"] is True
    assert status["sessions"] == 1 and status["workers"] == 2 and "uptime_seconds" in status
    # --json before the verb too.
    assert "storage_write_queue" in json.loads(server.ctl("--json", "status").stdout)
    assert ctl_json(server, "connected-users", "--json") == ["alice@localhost/j"]
    assert ctl_json(server, "list-users", "localhost", "--json") == ["alice", "bob", "carol"]
    modules = ctl_json(server, "module", "list", "--json")
    assert {m["name"] for m in modules} == {"mod_disco", "mod_ping"}
    assert all(m["path"].endswith(m["name"] + ".so") and m["abi"] for m in modules)
    server.stop()
    assert json.loads(server.ctl("list-users", "localhost", "--json").stdout) == ["alice", "bob", "carol"]
    stopped = server.ctl("status", "--json")
    assert stopped.returncode == 3 and json.loads(stopped.stdout) == {"running": False}


def test_a_trailing_json_of_a_write_verb_is_its_argument(server):
    # "--json" is a password here, not the option.
    ctl_ok(server, "register", "dave", "localhost", "--json")
    assert server.ctl("check-password", "dave", "localhost", "--json").returncode == 0


def test_reload_config_applies_what_it_can(server, raw_factory):
    server.register("alice", PASSWORD)
    server.config["loglevel"] = "info"
    server.config["modules"] = {"mod_disco": {}, "mod_version": {}}  # mod_ping out, mod_version in
    server.write_config()
    report = ctl_ok(server, "reload-config")
    assert "log level: info" in report
    assert "module mod_ping unloaded" in report and "module mod_version loaded" in report
    names = {m["name"] for m in ctl_json(server, "module", "list", "--json")}
    assert names == {"mod_disco", "mod_version"}
    client = raw_factory(server.c2s_port)
    client.login("alice", PASSWORD)
    version = client.iq("get", "<query xmlns='jabber:iq:version'/>", to="localhost")
    assert version.get("type") == "result"
    ping = client.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost")
    assert ping.get("type") == "error"  # mod_ping is gone


def test_reload_config_sets_the_level_the_stanza_log_follows(server, raw_login):
    # Quieted by hand, then back to debug by a reload: every stanza is logged again
    # (the stanza path reads a copy of the level, which the reload must set too).
    alice = raw_login("alice")
    ctl_ok(server, "set-loglevel", "warn")
    alice.send("<message to='alice@localhost' id='reload-quiet-marker'><body>x</body></message>")
    alice.sync()
    server.config["loglevel"] = "debug"
    server.write_config()
    assert "log level: debug" in ctl_ok(server, "reload-config")
    alice.send("<message to='alice@localhost' id='reload-loud-marker'><body>x</body></message>")
    alice.sync()
    log = server.log()
    assert "reload-quiet-marker" not in log and "reload-loud-marker" in log


def test_reload_config_names_and_refuses_what_needs_a_restart(server):
    before = ctl_ok(server, "module", "list")
    server.config["limits"]["max_stanza_bytes"] = 100000
    server.config["listen"][0]["port"] = server.c2s_port + 1
    server.config["modules"]["mod_version"] = {}  # would be applied, but the reload is refused whole
    server.config["modules"]["mod_disco"] = {"extra_features": []}
    server.write_config()
    refused = server.ctl("reload-config")
    assert refused.returncode == 1
    assert "limits" in refused.stderr and "listen" in refused.stderr
    assert "mod_disco" in refused.stderr and "nothing was changed" in refused.stderr
    assert ctl_ok(server, "module", "list") == before
    server.config_path.write_text("hosts: [localhost\n")
    broken = server.ctl("reload-config")
    assert broken.returncode == 1 and "parley.yml:" in broken.stderr
    server.write_config()  # parleyctl itself reads the file to find the control socket
    assert ctl_ok(server, "module", "list") == before


def test_reload_config_certificates_and_a_host_module(server, tmp_path, raw_factory):
    from test_certificates import made_certificate, served_certificate
    pem, new_der = made_certificate(tmp_path, "new", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    assert served_certificate(server) != new_der
    server.register("alice", PASSWORD)

    server.config["certfiles"] = [str(pem)]
    server.config["host_config"] = {"localhost": {"modules": {"mod_version": {}}}}
    server.write_config()
    report = ctl_ok(server, "reload-config")
    assert "certificates loaded from the new certfiles" in report
    assert "module mod_version loaded" in report
    assert served_certificate(server) == new_der
    client = raw_factory(server.c2s_port)
    client.login("alice", PASSWORD)
    assert client.iq("get", "<query xmlns='jabber:iq:version'/>", to="localhost").get("type") == "result"

    # A certificate list that cannot be loaded: refused, the served one stays.
    server.config["certfiles"] = [str(tmp_path / "missing.pem")]
    server.write_config()
    refused = server.ctl("reload-config")
    assert refused.returncode == 1 and "certificates" in refused.stderr
    assert served_certificate(server) == new_der
    # The host's module removed again.
    server.config["certfiles"] = [str(pem)]
    del server.config["host_config"]
    server.write_config()
    assert "module mod_version unloaded" in ctl_ok(server, "reload-config")


def test_a_detached_session_is_listed_and_kicked(server_factory, tmp_path, raw_factory):
    """A session kept for XEP-0198 resumption has no connection: listed as
    detached, and kick ends it (a resume then finds nothing)."""
    from test_mod_stream_mgmt import detached_alice, failed_condition, resume, sm_server
    from test_session_seams import authenticated
    server = sm_server(server_factory, tmp_path)
    jid, sm_id, h, _ = detached_alice(server, raw_factory)
    (s,) = ctl_json(server, "user-sessions", "alice", "localhost", "--json")
    assert (s["jid"], s["state"], s["transport"], s["connected_since"], s["idle_seconds"]) == \
        (jid, "detached", "-", None, None)
    assert ctl_ok(server, "connected-users-info").rstrip("\n").endswith("\tdetached")
    assert ctl_ok(server, "kick", "alice", "localhost").strip() == f"kicked {jid}"
    assert ctl_json(server, "user-sessions", "alice", "localhost", "--json") == []
    stream = authenticated(server, raw_factory, "alice")
    assert failed_condition(resume(stream, sm_id, h)) == "item-not-found"


def test_websocket_sessions_are_listed_with_their_transport(server_factory):
    from parley_harness import free_port
    from wsxmpp import WsClient
    ws_port, wss_port = free_port(), free_port()
    server = server_factory(extra_listeners=[
        {"port": ws_port, "ip": "127.0.0.1", "module": "http"},
        {"port": wss_port, "ip": "127.0.0.1", "module": "http", "tls": True}])
    server.register("alice", PASSWORD)
    plain, secure = WsClient(ws_port), WsClient(wss_port, tls=True)
    try:
        plain.login("alice", PASSWORD, resource="ws")
        secure.login("alice", PASSWORD, resource="wss")
        plain.sync()
        secure.sync()
        by_jid = {s["jid"]: s for s in ctl_json(server, "user-sessions", "alice", "localhost", "--json")}
        assert (by_jid["alice@localhost/ws"]["transport"], by_jid["alice@localhost/ws"]["tls"]) == ("websocket", "none")
        assert by_jid["alice@localhost/wss"]["transport"] == "websocket"
        assert by_jid["alice@localhost/wss"]["tls"].startswith("TLSv1.")
    finally:
        plain.close()
        secure.close()


def wait_log(server, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{server.log()[-3000:]}"
        time.sleep(0.05)


def test_sighup_reloads_as_reload_config_does_and_falls_back_to_certificates_and_level(server):
    import signal
    server.config["modules"]["mod_version"] = {}
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)  # systemctl reload parley
    wait_log(server, "SIGHUP: configuration reloaded")
    assert "mod_version" in {m["name"] for m in ctl_json(server, "module", "list", "--json")}
    # A change that needs a restart: the modules stay, the log level still follows the file.
    server.config["limits"]["max_stanza_bytes"] = 100000
    server.config["modules"]["mod_last"] = {}
    server.config["loglevel"] = "info"
    server.write_config()
    server.proc.send_signal(signal.SIGHUP)
    wait_log(server, "reloading the certificates and the log level only")
    wait_log(server, "log level is now info")
    assert "limits" in server.log()
    assert "mod_last" not in {m["name"] for m in ctl_json(server, "module", "list", "--json")}


def test_a_module_that_fails_to_load_is_tried_again_by_the_next_reload(server):
    server.config["modules"]["mod_no_such_module"] = {}
    server.write_config()
    for _ in range(2):  # not recorded as loaded: the second reload tries it again
        failed = server.ctl("reload-config")
        assert failed.returncode == 1 and "mod_no_such_module" in failed.stderr, failed.stderr
        assert "reload stopped here" in failed.stderr
    del server.config["modules"]["mod_no_such_module"]
    server.config["modules"]["mod_version"] = {}
    server.write_config()
    assert "module mod_version loaded" in ctl_ok(server, "reload-config")
