"""Hot reload pauses every module entry point: sessions opening and closing,
pre-authentication iqs, iqs and completions keep coming while a module is
reloaded again and again, and none of them reaches the old code after its
save_state, none is lost, every iq is answered.

mod_test_reload (tests/modules/) counts each event it handles and carries its
counts and a generation through save_state/restore_state; an instance entered
after its save_state logs "ran after save_state" (and its count is lost)."""

import os
import shutil
import threading
import time
from pathlib import Path

from conftest import PASSWORD
from rawxmpp import RawClient, q

TEST_MODULES = Path(os.environ.get("PARLEY_TEST_MODULES", "/nonexistent"))
NS = "urn:parley:test:reload"
NS_PREAUTH = "urn:parley:test:reload:preauth"
RAN_AFTER_SAVE = "ran after save_state"
FIELDS = ("generation", "opened", "bound", "closed", "iqs", "preauth", "later")


def start_server(server_factory, tmp_path, save_delay_ms):
    folder = tmp_path / "mods"
    folder.mkdir(exist_ok=True)
    shutil.copy(TEST_MODULES / "mod_test_reload.so", folder / "mod_test_reload.so")
    server = server_factory(workers=2, module_paths=[folder],
                            modules={"mod_ping": {}, "mod_test_reload": {"save_delay_ms": save_delay_ms}})
    return server


def counts(client):
    """The module's counts (this query is counted in 'iqs')."""
    reply = client.iq("get", f"<query xmlns='{NS}'/>", to=client.domain)
    assert reply.get("type") == "result", reply
    query = reply.find(q(NS, "query"))
    return {name: int(query.find(q(NS, name)).text) for name in FIELDS}


def preauth(client, stanza_id):
    client.send(f"<iq type='get' id='{stanza_id}'><query xmlns='{NS_PREAUTH}'/></iq>")
    reply = client.expect(q("jabber:client", "iq"), timeout=30, match=lambda e: e.get("id") == stanza_id)
    assert reply.get("type") == "result", reply
    return int(reply.find(q(NS_PREAUTH, "query")).find(q(NS_PREAUTH, "generation")).text)


def secure_stream(port):
    client = RawClient(port, timeout=30)
    client.start()
    client.starttls()
    return client


class Tally:
    """What the clients did, as the module should have counted it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.values = dict.fromkeys(FIELDS[1:], 0)
        self.rounds = 0

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                self.values[k] += v


def client_loop(server, user, index, stop, tally, errors):
    """Sessions opening and closing (cleanly and abruptly), iqs answered at
    once and from completions, pre-auth iqs: until `stop`."""
    n = 0
    try:
        while not stop.is_set():
            kind = n % 3
            n += 1
            if kind == 0:
                c = RawClient(server.c2s_port, timeout=30)
                c.login(user, PASSWORD, resource=f"w{index}-{n}")
                tally.add(opened=1, bound=1)
                ids = []
                for i in range(6):
                    sid = f"w{index}-{n}-{i}"
                    child = f"<query xmlns='{NS}'/>" if i % 2 == 0 else f"<later xmlns='{NS}'/>"
                    c.send(f"<iq type='{'get' if i % 2 == 0 else 'set'}' id='{sid}' to='{server.domain}'>"
                           f"{child}</iq>")
                    ids.append(sid)
                waiting = set(ids)
                while waiting:  # the later ones come after the others
                    reply = c.expect(q("jabber:client", "iq"), timeout=30)
                    assert reply.get("id") in waiting and reply.get("type") == "result", reply.attrib
                    waiting.remove(reply.get("id"))
                tally.add(iqs=6, later=3)
                c.close(timeout=30)
                assert c.closed_by_peer or c.eof
                tally.add(closed=1)
            elif kind == 1:
                c = secure_stream(server.c2s_port)
                tally.add(opened=1)
                preauth(c, f"p{index}-{n}-a")
                preauth(c, f"p{index}-{n}-b")
                tally.add(preauth=2)
                c.close(timeout=30)
                tally.add(closed=1)
            else:
                # Bound, then the connection just drops: SESSION_CLOSED all the same.
                c = RawClient(server.c2s_port, timeout=30)
                c.login(user, PASSWORD, resource=f"w{index}-{n}")
                tally.add(opened=1, bound=1)
                c.abort()
                tally.add(closed=1)
            with tally.lock:
                tally.rounds += 1
    except Exception as e:  # reported by the test, not lost in a thread
        errors.append(f"client {index}: {e!r}")


def test_a_reload_storm_loses_nothing_and_never_runs_the_old_code(server_factory, tmp_path):
    server = start_server(server_factory, tmp_path, save_delay_ms=20)
    users = [f"user{i}" for i in range(4)]
    for user in users:
        server.register(user, PASSWORD)
    stop = threading.Event()
    tally = Tally()
    errors = []
    threads = [threading.Thread(target=client_loop, args=(server, users[i], i, stop, tally, errors))
               for i in range(len(users))]
    for t in threads:
        t.start()
    reloads, refusals = 0, []
    deadline = time.monotonic() + 240
    try:
        while reloads < 20 and not errors:
            # Each reload while the clients are mid-flight: wait for some rounds to end first.
            with tally.lock:
                seen = tally.rounds
            while not errors and time.monotonic() < deadline:
                with tally.lock:
                    if tally.rounds >= seen + 2:
                        break
                time.sleep(0.005)
            assert time.monotonic() < deadline, f"storm too slow: {reloads} reloads, {refusals}"
            result = server.ctl("module", "reload", "mod_test_reload")
            if result.returncode == 0:
                reloads += 1
            else:
                refusals.append((result.stdout + result.stderr).strip())
    finally:
        stop.set()
        for t in threads:
            t.join(120)
    assert not errors, errors
    assert reloads == 20, refusals

    # The final round trips: one more session asks until the dropped
    # connections' closes are counted (they end asynchronously), then compares.
    final = RawClient(server.c2s_port, timeout=30)
    final.login(users[0], PASSWORD, resource="final")
    expected = dict(tally.values)
    expected["opened"] += 1
    expected["bound"] += 1
    polls = 0
    deadline = time.monotonic() + 60
    while True:
        got = counts(final)
        polls += 1
        if got["closed"] >= expected["closed"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    expected["iqs"] += polls
    expected["generation"] = 1 + reloads
    assert got == expected
    assert RAN_AFTER_SAVE not in server.log()
    final.close()


def wait_for_log(server, text, timeout=30):
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"'{text}' never logged"
        time.sleep(0.01)


def test_events_during_a_slow_save_reach_the_new_code(server_factory, tmp_path):
    """While the old code saves its state (slowly), a session closes, another
    sends a message and closes its stream right after, another opens and binds,
    a pre-auth iq and an iq come: each is handled by the new code once it is in
    place, in order, none by the old one, none is lost."""
    server = start_server(server_factory, tmp_path, save_delay_ms=2000)
    server.register("alice", PASSWORD)
    clients = {}
    for name in ("dropping", "leaving", "watcher"):
        clients[name] = RawClient(server.c2s_port, timeout=30)
        clients[name].login("alice", PASSWORD, resource=name)
    result = {}
    reload = threading.Thread(target=lambda: result.setdefault(
        "reload", server.ctl("module", "reload", "mod_test_reload")))
    reload.start()
    wait_for_log(server, "mod_test_reload: saving state")
    clients["dropping"].close(timeout=30)     # SESSION_CLOSED while the old code saves
    leaving = clients["leaving"]              # a message, then the end of its stream
    leaving.send(f"<message to='alice@{server.domain}/watcher' type='chat'><body>bye</body></message>"
                 "</stream:stream>")
    early = secure_stream(server.c2s_port)    # SESSION_OPENED, then a pre-auth iq
    early.send(f"<iq type='get' id='pre'><query xmlns='{NS_PREAUTH}'/></iq>")
    joining = RawClient(server.c2s_port, timeout=30)
    joining.login("alice", PASSWORD, resource="joining")  # OPENED and BOUND
    joining.send(f"<iq type='get' id='during' to='{server.domain}'><query xmlns='{NS}'/></iq>")
    reload.join(60)
    assert result["reload"].returncode == 0, result["reload"].stdout + result["reload"].stderr
    reply = early.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "pre")
    assert reply.find(q(NS_PREAUTH, "query")).find(q(NS_PREAUTH, "generation")).text == "2"
    during = joining.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "during")
    assert during.find(q(NS, "query")).find(q(NS, "generation")).text == "2"
    # The message went before the stream's end, as it was sent.
    assert clients["watcher"].expect_message("bye") is not None
    assert leaving.wait_closed(30)
    early.close()
    polls = 0
    deadline = time.monotonic() + 30
    while True:  # each close is counted on its own loop: ask until they are
        got = counts(joining)
        polls += 1
        if got["closed"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert got == {"generation": 2, "opened": 5, "bound": 4, "closed": 3, "iqs": 1 + polls, "preauth": 1,
                   "later": 0}
    assert RAN_AFTER_SAVE not in server.log()


def test_a_reload_waits_for_a_timer_and_a_task_of_the_old_code(server_factory, tmp_path):
    """A posted task and then a 300 ms timer of the old code are in flight when
    the reload comes: it waits for them (they run the old code, before its
    save) instead of refusing, and their answer is not lost."""
    server = start_server(server_factory, tmp_path, save_delay_ms=0)
    server.register("alice", PASSWORD)
    c = RawClient(server.c2s_port, timeout=30)
    c.login("alice", PASSWORD)
    c.send(f"<iq type='set' id='slow' to='{server.domain}'><later xmlns='{NS}' ms='300'/></iq>")
    c.sync()  # the handler ran: its task (then its timer) is in flight
    reloaded = server.ctl("module", "reload", "mod_test_reload")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert c.expect(q("jabber:client", "iq"), match=lambda e: e.get("id") == "slow").get("type") == "result"
    got = counts(c)
    assert (got["generation"], got["later"], got["iqs"]) == (2, 1, 2)
    assert RAN_AFTER_SAVE not in server.log()
