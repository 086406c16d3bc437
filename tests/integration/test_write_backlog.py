"""Write backlogs of clients that do not read (issue 9, items 3 and 5): a
session cut as a slow reader loses none of the stanzas it accepted (they are
routed again: another resource, offline storage or an error), and the
backlogs of all sessions together stay within limits.max_write_backlog_total
(each worker loop keeps its share), so the server's memory stays bounded."""

import re
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, StreamClosed, q

MESSAGE = q(NS_CLIENT, "message")


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB$", f.read(), re.M).group(1))


def sanitized(pid):
    """Whether parleyd runs under ASan or TSan: their allocators keep freed
    memory resident (ASan's quarantine alone is 256 MB), so RSS says nothing
    about the server's own bounds there."""
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    return "libasan" in maps or "libtsan" in maps


def body(message):
    b = message.find(q(NS_CLIENT, "body"))
    return None if b is None else b.text


def drain(client):
    """Every message the socket of a session the server closed still delivers,
    to EOF. (Nothing is sent to it: data to a closed socket is answered with
    a reset, which discards what the client's kernel held.)"""
    got = []
    while True:
        try:
            elem = client.next_element(30)
        except StreamClosed:
            return got
        if elem.tag == MESSAGE:
            got.append(body(elem))


def test_non_reading_resources_fed_through_the_bare_jid(server_factory, raw_factory):
    total_budget = 1 << 20
    server = server_factory(
        modules={"mod_disco": {}, "mod_ping": {}, "mod_offline": {"max_messages": 10000, "max_per_sender": 10000}},
        limits={"max_write_backlog": 4 << 20, "max_write_backlog_total": total_budget}, loglevel="info")
    server.register("alice", PASSWORD)
    bob_jid = server.register("bob", PASSWORD)
    # Equal priorities: a chat message to the bare JID goes to every one.
    resources = []
    for i in range(10):
        c = raw_factory(server.c2s_port)
        c.login("bob", PASSWORD, resource=f"r{i}", presence=True)
        resources.append(c)
    alice = raw_factory(server.c2s_port)
    alice.login("alice", PASSWORD, resource="a", presence=True)
    pid = server.proc.pid
    rss_before = status_kib(pid, "VmRSS")
    # 6.4 MB, 64 MB fanned out: more than the kernel's socket buffers take
    # (a few MB each), so the rest waits in the write backlogs.
    n = 800
    texts = [f"{i:04d} " + "z" * 8000 for i in range(n)]
    peak = rss_before
    for start in range(0, n, 20):
        for text in texts[start:start + 20]:
            alice.message(bob_jid, text)
        alice.sync()
        peak = max(peak, status_kib(pid, "VmRSS"))
    # Bounded: the budget (1 MiB), plus the stanzas held for rerouting and on
    # their way to offline storage (at most the 6.4 MB sent), SQLite's caches,
    # the TLS and parser buffers and what the allocator keeps; not 10 backlogs
    # of up to 4 MB each. Measured on the 2-core machine: 7-12 MiB idle, 14.9 MiB
    # once in CI (the ASan build compiling beside it delays the store thread);
    # with the total budget lifted (1 GiB) 33-37 MiB. The bound sits between.
    growth_mib = (peak - rss_before) / 1024
    print(f"RSS growth {growth_mib:.1f} MiB")
    if not sanitized(pid):
        assert growth_mib < 22, f"RSS grew by {growth_mib:.1f} MiB"
    assert "max_write_backlog_total" in server.log()
    # Nothing came back to alice as an error, and every message reached a
    # resource's socket or offline storage.
    assert not [e for e in alice.received if e.tag == MESSAGE]
    # Every resource is cut (none reads): only alice is left, once the other
    # loop has handled what alice's loop passed it.
    deadline = time.monotonic() + 30
    while not re.search(r"^sessions: 1$", server.ctl("status").stdout, re.M):
        assert time.monotonic() < deadline, server.ctl("status").stdout
        time.sleep(0.05)
    seen = set()
    for c in resources:
        seen.update(drain(c))
    # The rest was stored: a new login gets it. Its delivery starts from the
    # initial presence and completes on the store thread, so it may come before
    # or after the answer to the ping login() ends with: login() skips what
    # arrives before that answer, and `received` keeps it (CI once reported all
    # 304 stored messages lost when they had all come before the answer).
    late = raw_factory(server.c2s_port)
    late.login("bob", PASSWORD, resource="late", presence=True)
    seen.update(body(e) for e in late.received if e.tag == MESSAGE)
    deadline = time.monotonic() + 60
    while any(t not in seen for t in texts) and time.monotonic() < deadline:
        try:
            elem = late.next_element(max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if elem.tag == MESSAGE:
            seen.add(body(elem))
    missing = [t[:4] for t in texts if t not in seen]
    # Said with the failure: whether any came back to alice later (an error),
    # and what mod_offline counted.
    bounced = [ET.tostring(e, "unicode")[:300] for e in alice.nothing_before_sync() + alice.received
               if e.tag == MESSAGE]
    counters = [line for line in server.ctl("status").stdout.splitlines() if "mod_offline" in line]
    assert not missing, f"{len(missing)} lost: {missing[:20]}; bounced to alice: {bounced[:3]}; {counters}"
