"""The module platform against a running parleyd: loading from module_paths,
the ABI checks, faults inside modules, hot reload with clients connected, and
the third-party path (a module built out of tree against the installed SDK)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD
from gloox_driver import EXIT_OK
from parley_harness import psql
from rawxmpp import NS_SASL, q, stanza_error_condition, xml_escape

TEST_MODULES = Path(os.environ.get("PARLEY_TEST_MODULES", "/nonexistent"))
COUNTER_IQ = "<iq type='get' to='localhost' id='{id}'><query xmlns='urn:parley:test:counter'/></iq>"


def module_dir(tmp_path, *names):
    """A module_paths folder holding copies of the named test modules."""
    folder = tmp_path / "mods"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(TEST_MODULES / f"{name}.so", folder / f"{name}.so")
    return folder


def start_failure(server_factory, **kwargs):
    """Starts a server that must refuse to start; returns its log."""
    server = server_factory(start=False, **kwargs)
    server.expected_exit = 1  # parleyd's exit status for "cannot start"
    with pytest.raises(RuntimeError):
        server.start(timeout=15)
    return server.log()


def counter_value(client, id_):
    client.send(COUNTER_IQ.format(id=id_))
    reply = client.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == id_)
    query = reply.find(q("urn:parley:test:counter", "query"))
    assert query is not None, f"no counter in {reply}"
    version = query.find(q("urn:parley:test:counter", "version"))
    return int(query.find(q("urn:parley:test:counter", "count")).text), (version.text if version is not None else "1")


def test_default_modules_are_listed(server):
    listing = server.ctl("module", "list")
    assert listing.returncode == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    assert names == ["mod_disco", "mod_ping"]


def test_without_modules_ping_and_disco_are_unavailable(server_factory, raw_factory):
    # The core answers nothing itself: ping and disco are modules.
    server = server_factory(modules={})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    reply = c.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
    assert reply.get("type") == "error"
    assert stanza_error_condition(reply)[1] == "service-unavailable"


def test_module_answers_and_declares_its_feature(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_echo")
    server = server_factory(module_paths=[folder],
                            modules={"mod_disco": {}, "mod_ping": {}, "mod_test_echo": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    reply = c.iq("get", "<echo xmlns='urn:parley:test:echo'><word>hello</word></echo>", to=server.domain)
    assert reply.get("type") == "result"
    assert "hello" in "".join(reply.itertext())
    info = c.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=server.domain)
    features = {f.get("var") for f in info.iter(q("http://jabber.org/protocol/disco#info", "feature"))}
    assert {"urn:parley:test:echo", "urn:xmpp:ping", "http://jabber.org/protocol/disco#info"} <= features


def test_module_stream_features_before_and_after_authentication(server_factory, tmp_path, raw_factory):
    echo = "urn:parley:test:echo"
    folder = module_dir(tmp_path, "mod_test_echo")
    server = server_factory(module_paths=[folder], modules={"mod_test_echo": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    plain = c.start()
    # STARTTLS is required: nothing but STARTTLS before it.
    assert plain.find(q(echo, "echo-before")) is None
    secure = c.starttls()
    assert secure.find(q(echo, "echo-before")) is not None
    assert secure.find(q(echo, "echo-after")) is None
    assert c.auth_plain("alice", PASSWORD).tag == q(NS_SASL, "success")
    bound = c.start()
    assert bound.find(q(echo, "echo-after")) is not None
    assert bound.find(q(echo, "echo-before")) is None


def test_the_shipped_configuration_starts_every_module_it_enables(server_factory, raw_factory):
    import yaml
    shipped = yaml.safe_load((Path(os.environ["PARLEY_SOURCE_DIR"]) / "conf" / "parley.yml").read_text())
    modules = {name: options or {} for name, options in shipped["modules"].items()}
    assert {"mod_roster", "mod_presence", "mod_offline", "mod_register", "mod_blocking", "mod_last",
            "mod_csi", "mod_carbons", "mod_stream_mgmt", "mod_mam", "mod_time"} <= set(modules)
    server = server_factory(modules=modules)
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD, presence=True)
    info = c.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=server.domain)
    features = {f.get("var") for f in info.iter(q("http://jabber.org/protocol/disco#info", "feature"))}
    assert {"urn:xmpp:blocking", "jabber:iq:last", "msgoffline", "urn:xmpp:ping", "urn:xmpp:carbons:2",
            "urn:xmpp:time"} <= features, features


def test_missing_module_refuses_start_by_name(server_factory):
    log = start_failure(server_factory, modules={"mod_does_not_exist": {}})
    assert "mod_does_not_exist" in log and "not found" in log


def test_newer_abi_major_is_refused_with_both_versions(server_factory, tmp_path):
    folder = module_dir(tmp_path, "mod_test_new_major")
    log = start_failure(server_factory, module_paths=[folder], modules={"mod_test_new_major": {}})
    assert "mod_test_new_major" in log
    assert "ABI 2.0" in log and "ABI 1." in log


def test_not_a_module_is_refused_by_name(server_factory, tmp_path):
    folder = module_dir(tmp_path, "mod_test_not_a_module")
    log = start_failure(server_factory, module_paths=[folder], modules={"mod_test_not_a_module": {}})
    assert "mod_test_not_a_module" in log and "not a Parley module" in log


def test_unknown_and_missing_options_are_refused(server_factory, tmp_path):
    folder = module_dir(tmp_path, "mod_test_bad_option", "mod_test_echo")
    log = start_failure(server_factory, module_paths=[folder], modules={"mod_test_bad_option": {}})
    assert "mod_test_bad_option" in log and "secret" in log
    log = start_failure(server_factory, name="second", module_paths=[folder],
                        modules={"mod_test_echo": {"colour": "red"}})
    assert "mod_test_echo" in log and "unknown option 'colour'" in log


def test_older_minor_module_loads(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_old_minor")
    server = server_factory(module_paths=[folder], modules={"mod_test_old_minor": {}})
    listing = server.ctl("module", "list")
    assert "mod_test_old_minor" in listing.stdout


def test_a_throwing_module_costs_one_stanza_not_the_server(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_throws")
    server = server_factory(module_paths=[folder], modules={"mod_test_throws": {}, "mod_ping": {}})
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="b", presence=True)
    reply = alice.iq("get", "<boom xmlns='urn:parley:test:throws'/>", to=server.domain)
    assert stanza_error_condition(reply)[1] == "internal-server-error"
    alice.message(bob.jid, "throw")
    error = alice.expect(q("jabber:client", "message"), match=lambda e: e.get("type") == "error")
    assert stanza_error_condition(error)[1] == "internal-server-error"
    # Everything else still works, for the same client and for others.
    alice.message(bob.jid, "still here")
    bob.expect_message("still here")
    assert alice.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain).get("type") == "result"
    assert "mod_test_throws" in server.log()


def test_hot_reload_keeps_clients_and_state(server_factory, tmp_path, raw_factory, gloox_factory):
    folder = module_dir(tmp_path, "mod_test_counter")
    server = server_factory(module_paths=[folder],
                            modules={"mod_disco": {}, "mod_ping": {}, "mod_test_counter": {}})
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    raw = raw_factory(server.c2s_port)
    raw.login("alice", PASSWORD, resource="raw")
    gloox = gloox_factory(server, "bob", "reload")
    gloox.connected()

    assert counter_value(raw, "c1") == (1, "1")
    gloox.cmd("raw " + COUNTER_IQ.format(id="g1"))
    gloox.cmd("expect-in <count>2</count> 10")
    assert "<count>2</count>" in gloox.wait_line("IN ")

    # A rebuilt module replaces the file in module_paths; the reload swaps it in.
    shutil.copy(TEST_MODULES / "v2" / "mod_test_counter.so", folder / "mod_test_counter.so")
    reloaded = server.ctl("module", "reload", "mod_test_counter")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert "reloaded" in reloaded.stdout

    # Both clients are still connected, see the new code, and the count went on.
    assert counter_value(raw, "c2") == (3, "2")
    gloox.cmd("raw " + COUNTER_IQ.format(id="g2"))
    gloox.cmd("expect-in <version>2</version> 10")
    line = gloox.wait_line("IN ")
    assert "<count>4</count>" in line
    gloox.cmd("ping")
    assert gloox.wait_for("PING")["result"] == "pong"
    assert not any(l.startswith("DISCONNECTED") for l in gloox.lines), gloox.transcript()
    assert gloox.quit() == EXIT_OK


def test_unload_and_load_at_run_time(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_echo")
    server = server_factory(module_paths=[folder], modules={"mod_ping": {}, "mod_test_echo": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    echo = "<echo xmlns='urn:parley:test:echo'/>"
    assert c.iq("get", echo, to=server.domain).get("type") == "result"
    assert server.ctl("module", "unload", "mod_test_echo").returncode == 0
    assert stanza_error_condition(c.iq("get", echo, to=server.domain))[1] == "service-unavailable"
    assert server.ctl("module", "load", "mod_test_echo").returncode == 0
    assert c.iq("get", echo, to=server.domain).get("type") == "result"
    missing = server.ctl("module", "load", "mod_nope")
    assert missing.returncode != 0 and "mod_nope" in (missing.stdout + missing.stderr)


def test_out_of_tree_module_from_the_installed_sdk(server_factory, tmp_path, raw_factory):
    build = os.environ["PARLEY_BUILD_DIR"]
    source = os.environ["PARLEY_SOURCE_DIR"]
    folder = tmp_path / "third-party"
    built = subprocess.run(
        [f"{source}/tests/modules/out_of_tree_test.sh", build, f"{source}/tests/modules/out_of_tree", str(folder)],
        capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    server = server_factory(module_paths=[folder],
                            modules={"mod_disco": {}, "mod_hello": {"greeting": "hi there"}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    reply = c.iq("get", "<hello xmlns='urn:example:hello'/>", to=server.domain)
    assert reply.get("type") == "result"
    assert "hi there" in "".join(reply.itertext())
    # Its metrics counter shows in parleyctl status.
    status = server.ctl("status")
    assert f"mod_hello.{server.domain}.greetings: 1" in status.stdout, status.stdout


def counters(server, module="mod_test_events"):
    status = server.ctl("status")
    assert status.returncode == 0, status.stderr
    prefix = f"{module}.{server.domain}."
    out = {}
    for line in status.stdout.splitlines():
        if line.startswith(prefix):
            name, _, value = line[len(prefix):].partition(": ")
            out[name] = int(value)
    return out


def wait_counter(server, name, expected, timeout=10):
    import time
    deadline = time.monotonic() + timeout
    while True:
        got = counters(server).get(name, 0)
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_events_reach_a_module_written_in_c(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_events")
    server = server_factory(module_paths=[folder],
                            modules={"mod_disco": {}, "mod_ping": {}, "mod_test_events": {}})
    server.register("bob", PASSWORD)  # through the running server: modules hear of it
    assert wait_counter(server, "user_registered", 1) == 1

    alice_reg = server.ctl("register", "alice", server.domain, PASSWORD)
    assert alice_reg.returncode == 0
    assert wait_counter(server, "user_registered", 2) == 2

    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a", presence=True)
    assert wait_counter(server, "session_bound", 1) == 1
    assert counters(server)["session_opened"] >= 1
    assert counters(server)["presence_broadcast"] == 1

    # bob is offline: "keep" is taken by the module (no error), anything else bounces.
    alice.message(f"bob@{server.domain}", "keep")
    alice.message(f"bob@{server.domain}", "drop")
    error = alice.expect(q("jabber:client", "message"), match=lambda e: e.get("type") == "error")
    assert "drop" in "".join(error.itertext())
    assert stanza_error_condition(error)[1] == "service-unavailable"
    assert alice.nothing_before_sync() == [], "the message the module took was bounced too"
    assert counters(server)["offline_message"] == 2
    assert counters(server)["stanza_in"] >= 3
    # The fold: mod_disco's answer carries what this module's hook added.
    info = alice.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=server.domain)
    disco = "http://jabber.org/protocol/disco#info"
    assert "urn:parley:test:fold" in {f.get("var") for f in info.iter(q(disco, "feature"))}
    assert ("automation", "parley-test") in {(i.get("category"), i.get("type")) for i in info.iter(q(disco, "identity"))}
    # Per-session data: the module counted this session's stanzas in its slot.
    assert counters(server)["third_stanza_of_a_session"] == 1

    # Removing the account tells the modules and closes its sessions.
    removed = server.ctl("unregister", "alice", server.domain)
    assert removed.returncode == 0
    assert alice.expect_stream_error() == "not-authorized"
    assert wait_counter(server, "user_removed", 1) == 1
    assert wait_counter(server, "session_closed", counters(server)["session_opened"]) == counters(server)["session_opened"]
    assert wait_counter(server, "slot_freed", 1) == 1  # the core freed the session's slot


def test_unload_frees_session_data_first(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_events")
    server = server_factory(module_paths=[folder], modules={"mod_ping": {}, "mod_test_events": {}})
    server.register("alice", PASSWORD)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a")
    assert wait_counter(server, "session_bound", 1) == 1
    before = counters(server)
    assert before.get("slot_freed", 0) == 0
    # The slot's free function is module code: it runs before the .so is unmapped.
    assert server.ctl("module", "unload", "mod_test_events").returncode == 0
    # The module is gone (its counters with it); the session lives on.
    assert alice.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain).get("type") == "result"
    assert "slot_freed" not in counters(server)
    assert "mod_test_events" in server.log()


def test_host_config_enables_a_module_on_one_host(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_echo")
    server = server_factory(hosts=("localhost", "example.test"), module_paths=[folder],
                            modules={"mod_disco": {}, "mod_ping": {}},
                            host_config={"example.test": {"modules": {"mod_test_echo": {}}}})
    server.register("alice", PASSWORD)
    server.register("alice", PASSWORD, host="example.test")
    echo = "<echo xmlns='urn:parley:test:echo'/>"
    here = raw_factory(server.c2s_port, domain="example.test")
    here.login("alice", PASSWORD)
    assert here.iq("get", echo, to="example.test").get("type") == "result"
    there = raw_factory(server.c2s_port)
    there.login("alice", PASSWORD)
    assert stanza_error_condition(there.iq("get", echo, to="localhost"))[1] == "service-unavailable"
    # Both hosts still have the global modules.
    assert here.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="example.test").get("type") == "result"


def test_host_config_for_an_unknown_host_is_refused(server_factory):
    server = server_factory(start=False, host_config={"nowhere.test": {"modules": {"mod_ping": {}}}})
    server.expected_exit = 2  # configuration errors
    with pytest.raises(RuntimeError):
        server.start(timeout=15)
    assert "host_config" in server.log() and "nowhere.test" in server.log()


NOTES = "urn:parley:test:notes"


def test_module_storage_survives_a_restart_and_is_fenced(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_notes")
    server = server_factory(module_paths=[folder], modules={"mod_test_notes": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    for text in ("first", "second"):
        assert c.iq("set", f"<note xmlns='{NOTES}'>{text}</note>", to=server.domain).get("type") == "result"
    notes = c.iq("get", f"<notes xmlns='{NOTES}'/>", to=server.domain)
    assert [n.text for n in notes.iter(q(NOTES, "note"))] == ["first", "second"]
    # Another component's table is refused by the host, with a reason.
    sneak = c.iq("get", f"<sneak xmlns='{NOTES}'/>", to=server.domain)
    errors = [e.text for e in sneak.iter(q(NOTES, "error"))]
    assert errors and "does not belong to this module" in errors[0], errors
    # The schema ran once; the rows are in the server's database.
    server.restart()
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    notes = c.iq("get", f"<notes xmlns='{NOTES}'/>", to=server.domain)
    # What stop() wrote at the shutdown was committed too.
    assert [n.text for n in notes.iter(q(NOTES, "note"))] == ["first", "second", "stopped"]


def test_storage_written_by_stop_completes_before_the_code_is_unmapped(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_notes")
    server = server_factory(module_paths=[folder], modules={"mod_test_notes": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    for _ in range(3):
        reloaded = server.ctl("module", "reload", "mod_test_notes")
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    unloaded = server.ctl("module", "unload", "mod_test_notes")
    assert unloaded.returncode == 0, unloaded.stdout + unloaded.stderr
    loaded = server.ctl("module", "load", "mod_test_notes")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    notes = c.iq("get", f"<notes xmlns='{NOTES}'/>", to=server.domain)
    assert [n.text for n in notes.iter(q(NOTES, "note"))] == ["stopped"] * 4
    # The server is still whole (the sanitizer builds check the unmapping).
    assert c.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain) is not None


READER = "urn:parley:test:reader"


def test_a_module_reads_but_cannot_write_the_tables_of_its_dependency(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_notes", "mod_test_reader")
    server = server_factory(module_paths=[folder], modules={"mod_test_notes": {}, "mod_test_reader": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    assert c.iq("set", f"<note xmlns='{NOTES}'>mine</note>", to=server.domain).get("type") == "result"
    read = c.iq("get", f"<read xmlns='{READER}'/>", to=server.domain)
    assert [n.text for n in read.iter(q(READER, "note"))] == ["mine"]
    assert not list(read.iter(q(READER, "error")))
    write = c.iq("set", f"<write xmlns='{READER}'/>", to=server.domain)
    errors = [e.text for e in write.iter(q(READER, "error"))]
    assert errors and "does not belong to this module" in errors[0], errors
    notes = c.iq("get", f"<notes xmlns='{NOTES}'/>", to=server.domain)
    assert [n.text for n in notes.iter(q(NOTES, "note"))] == ["mine"]
    # The dependency cannot read its dependant's tables (none here, but the users table stays fenced too).
    sneak = c.iq("get", f"<sneak xmlns='{NOTES}'/>", to=server.domain)
    assert [e.text for e in sneak.iter(q(NOTES, "error"))]


def test_reload_is_refused_while_a_timer_is_pending(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_notes")
    server = server_factory(module_paths=[folder], modules={"mod_test_notes": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    assert c.iq("set", f"<timer xmlns='{NOTES}'/>", to=server.domain).get("type") == "result"
    refused = server.ctl("module", "reload", "mod_test_notes")
    assert refused.returncode != 0 and "timers" in refused.stdout + refused.stderr
    refused = server.ctl("module", "unload", "mod_test_notes")
    assert refused.returncode != 0
    assert c.iq("set", f"<cancel xmlns='{NOTES}'/>", to=server.domain).get("type") == "result"
    import time
    deadline = time.monotonic() + 10
    while True:
        reloaded = server.ctl("module", "reload", "mod_test_notes")
        if reloaded.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr


def test_dependencies_order_start_and_guard_unload(server_factory, tmp_path):
    folder = module_dir(tmp_path, "mod_test_echo", "mod_test_needs_echo")
    log = start_failure(server_factory, module_paths=[folder], modules={"mod_test_needs_echo": {}})
    assert "mod_test_needs_echo depends on mod_test_echo, which is not enabled" in log
    # Listed before its dependency: still started after it.
    server = server_factory(name="ordered", module_paths=[folder],
                            modules={"mod_test_needs_echo": {}, "mod_test_echo": {}})
    names = [line.split()[0] for line in server.ctl("module", "list").stdout.splitlines()]
    assert names == ["mod_test_echo", "mod_test_needs_echo"]
    refused = server.ctl("module", "unload", "mod_test_echo")
    assert refused.returncode != 0 and "needed by mod_test_needs_echo" in refused.stdout + refused.stderr


def test_stanzas_sent_during_a_reload_are_all_answered(server_factory, tmp_path, raw_factory):
    import threading
    folder = module_dir(tmp_path, "mod_test_counter")
    server = server_factory(module_paths=[folder], modules={"mod_test_counter": {}})
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    results = {}
    reloads = threading.Thread(target=lambda: results.setdefault(
        "reload", [server.ctl("module", "reload", "mod_test_counter").returncode for _ in range(3)]))
    reloads.start()
    total = 300
    for i in range(total):
        c.send(COUNTER_IQ.format(id=f"r{i}"))
    answered = set()
    while len(answered) < total:
        reply = c.expect(q("jabber:client", "iq"), timeout=30)
        assert reply.get("type") == "result", f"iq {reply.get('id')} got {reply.get('type')} during a reload"
        answered.add(reply.get("id"))
    reloads.join(60)
    assert results["reload"] == [0, 0, 0]
    # Every request was counted once, across the swaps: state carried, none lost.
    assert counter_value(c, "last")[0] == total + 1


def test_a_module_lists_a_users_sessions(server_factory, tmp_path, raw_factory):
    folder = module_dir(tmp_path, "mod_test_events")
    server = server_factory(module_paths=[folder], modules={"mod_test_events": {}})
    server.register("alice", PASSWORD)
    phone = raw_factory(server.c2s_port)
    phone.login("alice", PASSWORD, resource="phone")
    phone.send("<presence><priority>5</priority></presence>")
    phone.expect(q("jabber:client", "presence"))  # reflected: it is available now
    laptop = raw_factory(server.c2s_port)
    laptop.login("alice", PASSWORD, resource="laptop")
    reply = laptop.iq("get", "<sessions xmlns='urn:parley:test:sessions'/>", to=server.domain)
    sessions = {s.get("jid"): (s.get("available"), s.get("priority"))
                for s in reply.iter(q("urn:parley:test:sessions", "session"))}
    assert sessions == {f"alice@{server.domain}/phone": ("1", "5"),
                        f"alice@{server.domain}/laptop": ("0", "0")}
    assert reply.find(q("urn:parley:test:sessions", "sessions")).get("count") == "2"
    # Asked with a JID that is not prepared: the same sessions (the host prepares it when
    # the text as given is not in its table); a user with none, and a malformed JID: none.
    for jid, count in ((f"ALICE@{server.domain.upper()}", "2"), (f"bob@{server.domain}", "0"), ("@@", "0")):
        reply = laptop.iq("get", f"<sessions xmlns='urn:parley:test:sessions' jid='{jid}'/>", to=server.domain)
        answer = reply.find(q("urn:parley:test:sessions", "sessions"))
        assert answer.get("count") == count, jid
        assert len(list(answer.iter(q("urn:parley:test:sessions", "session")))) == int(count), jid


# -- ABI 1.7: a third-party module's own SQL per backend (mod_test_dialect) --------------

DIALECT = "urn:parley:test:dialect"


def dialect_notes(c, server):
    reply = c.iq("get", f"<notes xmlns='{DIALECT}'/>", to=server.domain)
    notes = reply.find(q(DIALECT, "notes"))
    assert notes is not None, reply
    return notes.get("backend"), [n.text for n in notes.iter(q(DIALECT, "note"))]


def dialect_raw(c, server, sql, type_="get"):
    """Runs `sql` as the module (get: a read, set: a write): (error text or None, rows)."""
    reply = c.iq(type_, f"<raw xmlns='{DIALECT}'>{xml_escape(sql)}</raw>", to=server.domain)
    raw = reply.find(q(DIALECT, "raw"))
    assert raw is not None, reply
    error = raw.find(q(DIALECT, "error"))
    rows = [[v.text or "" for v in row.iter(q(DIALECT, "v"))] for row in raw.iter(q(DIALECT, "row"))]
    return (error.text if error is not None else None), rows


def dialect_server(server_factory, raw_factory, tmp_path, storage):
    folder = module_dir(tmp_path, "mod_test_dialect")
    server = server_factory(module_paths=[folder], modules={"mod_test_dialect": {}}, storage=storage)
    server.register("alice", PASSWORD)
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    return server, c


def test_module_sql_runs_in_the_dialect_of_its_backend_and_survives_a_restart(server_factory, raw_factory, tmp_path,
                                                                               storage_backend):
    """A module declaring its schema for SQLite and for PostgreSQL: on SQLite as before (the
    main file, the authorizer's fence); on PostgreSQL its tables in a schema named after it
    (steps versioned as component module:NAME), its statements in PostgreSQL's dialect, a
    statement reaching the server's tables refused; the rows survive a restart."""
    on_pg = bool(storage_backend)
    server, c = dialect_server(server_factory, raw_factory, tmp_path, storage_backend)
    for text in ("first", "second"):
        assert c.iq("set", f"<note xmlns='{DIALECT}'>{text}</note>", to=server.domain).get("type") == "result"
    assert dialect_notes(c, server) == ("postgresql" if on_pg else "sqlite", ["first", "second"])
    if on_pg:
        url = storage_backend["url"]
        assert psql(url, "SELECT table_schema FROM information_schema.tables "
                         "WHERE table_name = 'mod_test_dialect_notes'").split() == ["mod_test_dialect"]
        assert psql(url, "SELECT version FROM parley_schema WHERE component = 'module:mod_test_dialect'").strip() == "2"
        assert psql(url, "SELECT text FROM mod_test_dialect.mod_test_dialect_notes ORDER BY id").split() == \
            ["first", "second"]
        # The server's tables: not on the module's path, and refused by any name.
        error, _ = dialect_raw(c, server, "SELECT username FROM users")
        assert error and "does not exist" in error, error
        for sql, type_ in (("SELECT username FROM public.users", "get"),
                           ("DELETE FROM public.users", "set"),
                           ("WITH x AS (DELETE FROM public.scram_credentials RETURNING 1) SELECT count(*) FROM x",
                            "set")):
            error, _ = dialect_raw(c, server, sql, type_)
            assert error and "does not belong to this module" in error, (sql, error)
        error, _ = dialect_raw(c, server, "DROP TABLE mod_test_dialect_notes", "set")
        assert error and "not allowed" in error, error
        error, rows = dialect_raw(c, server, "SELECT count(*) FROM mod_test_dialect_notes WHERE text LIKE 'fir%'")
        assert error is None and rows == [["1"]], (error, rows)
        assert psql(url, "SELECT username FROM users").split() == ["alice"]
    else:
        error, _ = dialect_raw(c, server, "SELECT username FROM users")
        assert error and "does not belong to this module" in error, error
        error, rows = dialect_raw(c, server, "SELECT count(*) FROM mod_test_dialect_notes")
        assert error is None and rows == [["2"]], (error, rows)
    server.restart()
    c = raw_factory(server.c2s_port)
    c.login("alice", PASSWORD)
    assert dialect_notes(c, server)[1] == ["first", "second"]


def test_module_sql_postgresql_stopped_mid_run_stores_the_writes_once_back(server_factory, raw_factory, tmp_path,
                                                                           postgres, pg_storage):
    """PostgreSQL stopped under a running parleyd: the module's writes wait in the queue
    (counted in parleyctl status), none answered as stored meanwhile, a read fails at once;
    once PostgreSQL is back every write is stored and answered, without a restart."""
    server, c = dialect_server(server_factory, raw_factory, tmp_path, pg_storage)
    assert c.iq("set", f"<note xmlns='{DIALECT}'>before</note>", to=server.domain).get("type") == "result"
    postgres.stop()
    try:
        sets = [f"during{i}" for i in range(5)]
        for text in sets:
            c.send(f"<iq type='set' id='{text}' to='{server.domain}'><note xmlns='{DIALECT}'>{text}</note></iq>")
        get_id = c.new_id()
        c.send(f"<iq type='get' id='{get_id}' to='{server.domain}'><notes xmlns='{DIALECT}'/></iq>")
        # The get's answer is the round trip: the writes were queued before it.
        before, reply = c.expect_nothing_until_reply(get_id)
        assert [e for e in before if e.get("id") in sets] == [], before
        assert stanza_error_condition(reply)[1] == "internal-server-error", reply
        status = server.ctl("status")
        assert "module_sql_queue: 5" in status.stdout, status.stdout
    finally:
        postgres.start()
    for text in sets:
        answer = c.expect(q("jabber:client", "iq"), timeout=30, match=lambda e, t=text: e.get("id") == t)
        assert answer.get("type") == "result", answer
    assert dialect_notes(c, server)[1] == ["before"] + sets
    assert "module SQL database reconnected" in server.log()
