"""Shared by the mod_roster suites (test_mod_roster.py, test_mod_roster_subscriptions.py):
a raw-client peer that speaks RFC 6121's roster protocol, and the servers they start.
"""
import os
import sqlite3
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, q, stanza_error_condition

NS = "jabber:iq:roster"
IQ = q(NS_CLIENT, "iq")
PRESENCE = q(NS_CLIENT, "presence")
QUERY = q(NS, "query")
ITEM = q(NS, "item")
GROUP = q(NS, "group")
WITH_PRESENCE = os.environ.get("PARLEY_ROSTER_WITH_PRESENCE") == "1"
# How long a wait for a stanza that must come may take before the test fails: a
# safety net, not an expectation (a roster get was answered after 5.17 s on a CI
# machine loaded by a TSan build; a wait returns as soon as its stanza arrives).
SAFETY_TIMEOUT = 30.0


# -- helpers -----------------------------------------------------------------------

def wait_in_inbox(client, inbox, pred, timeout, what, who):
    """The first element matching `pred`: from `inbox` (what arrived earlier and
    matched nothing then) or, read from `client`, the next that matches; what
    does not match is kept in `inbox`, so that nothing arriving early is lost."""
    for i, e in enumerate(inbox):
        if pred(e):
            return inbox.pop(i)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            got = "\n".join(ET.tostring(e, "unicode") for e in inbox)
            raise AssertionError(f"{who}: no {what} within {timeout}s; unmatched:\n{got}")
        try:
            e = client.next_element(remaining)
        except TimeoutError:
            continue
        if pred(e):
            return e
        inbox.append(e)


class Peer:
    """A logged-in raw client that keeps what it did not wait for yet, so
    that stanzas arriving in an unexpected order are not lost."""

    _ids = 0

    def __init__(self, client, user, domain):
        self.c = client
        self.user = user
        self.bare = f"{user}@{domain}"
        self.jid = client.jid
        self.inbox = []

    def send(self, xml):
        self.c.send(xml)

    def wait(self, pred, timeout=SAFETY_TIMEOUT, what="a stanza"):
        return wait_in_inbox(self.c, self.inbox, pred, timeout, what, self.jid)

    def quiet(self, pred, via=()):
        """Nothing matching pred came (or is waiting), proved by a round trip:
        a roster get. mod_roster runs a user's roster work (sets, gets,
        subscription stanzas either way) one piece at a time, in the order it
        came, whatever the loop: the get's result comes after any push or
        presence that work delivered here. `via`: peers whose get goes first,
        for work that reaches this user through another user's (a request
        goes through the sender's work, then the contact's, perhaps back).
        Pending requests delivered when a resource becomes available come
        from a storage read outside that order, begun before the get's own
        read (two reader threads: in order, not strictly). The get makes
        this resource interested in pushes from then on."""
        for peer in (*via, self):
            reply = peer.get()
            assert reply.get("type") == "result", ET.tostring(reply, "unicode")
        bad = [e for e in self.inbox if pred(e)]
        assert not bad, f"{self.jid}: unexpected " + "\n".join(ET.tostring(e, "unicode") for e in bad)

    def iq(self, type_, child="", to=None, timeout=None):
        Peer._ids += 1
        sid = f"r{Peer._ids}"
        to_attr = f" to='{to}'" if to else ""
        self.send(f"<iq type='{type_}' id='{sid}'{to_attr}>{child}</iq>")
        if timeout is None:
            return self.wait(lambda e: e.tag == IQ and e.get("id") == sid, what=f"iq reply {sid}")
        return self.wait(lambda e: e.tag == IQ and e.get("id") == sid, timeout=timeout, what=f"iq reply {sid}")

    # roster
    def get(self, ver=None, timeout=None):
        ver_attr = "" if ver is None else f" ver='{ver}'"
        return self.iq("get", f"<query xmlns='{NS}'{ver_attr}/>", timeout=timeout)

    def set(self, jid, name=None, groups=(), extra=""):
        name_attr = "" if name is None else f" name='{name}'"
        body = "".join(f"<group>{g}</group>" for g in groups)
        return self.iq("set", f"<query xmlns='{NS}'><item jid='{jid}'{name_attr}{extra}>{body}</item></query>")

    def remove(self, jid):
        return self.iq("set", f"<query xmlns='{NS}'><item jid='{jid}' subscription='remove'/></query>")

    def push(self, jid=None, timeout=SAFETY_TIMEOUT):
        """The next roster push (for jid); checks its form and returns (item, ver)."""
        def is_push(e):
            if e.tag != IQ or e.get("type") != "set":
                return False
            item = e.find(f"{QUERY}/{ITEM}")
            return item is not None and (jid is None or item.get("jid") == jid)
        e = self.wait(is_push, timeout, what=f"roster push for {jid}")
        # RFC 6121 2.1.6: from the user's bare JID (or none), to this resource.
        assert e.get("from") in (None, self.bare), ET.tostring(e, "unicode")
        assert e.get("to") == self.jid
        query = e.find(QUERY)
        assert len(query.findall(ITEM)) == 1
        self.send(f"<iq type='result' id='{e.get('id')}'/>")
        return query.find(ITEM), query.get("ver")

    def no_push(self, via=()):
        self.quiet(lambda e: e.tag == IQ and e.get("type") == "set" and e.find(QUERY) is not None, via)

    def presence(self, type_=None, frm=None, timeout=SAFETY_TIMEOUT):
        def match(e):
            return (e.tag == PRESENCE and e.get("type") == type_
                    and (frm is None or e.get("from") == frm))
        return self.wait(match, timeout, what=f"presence type={type_} from={frm}")

    def no_presence(self, type_=None, via=()):
        self.quiet(lambda e: e.tag == PRESENCE and (type_ is None or e.get("type") == type_), via)

    def roster(self, timeout=None):
        """{jid: item} from a full roster get."""
        reply = self.get(timeout=timeout)
        assert reply.get("type") == "result", ET.tostring(reply, "unicode")
        return {i.get("jid"): i for i in reply.find(QUERY).findall(ITEM)}


def start(server_factory, users=("alice", "bob"), storage=None, **options):
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_roster": options}
    if WITH_PRESENCE:
        modules["mod_presence"] = {}
    server = server_factory(modules=modules, storage=storage)
    for user in users:
        server.register(user, PASSWORD)
    return server


def login(server, raw_factory, user, resource="r", roster=True, presence=False):
    c = raw_factory(server.c2s_port)
    c.login(user, PASSWORD, resource=resource)
    peer = Peer(c, user, server.domain)
    if roster:
        reply = peer.get()
        assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    if presence:
        peer.send("<presence/>")
        # the server reflects initial presence to the resource itself
        peer.wait(lambda e: e.tag == PRESENCE and e.get("type") is None and e.get("from") == peer.jid,
                  what="own presence")
    return peer


def keyval_db(server):
    """The SQLite keyval/map store's file, where mod_roster keeps its maps."""
    return str(server.data_dir / "parley-keyval.db")


def wait_pending(server, user, count, timeout=20.0):
    """Until `count` requests wait for `user` in the map store (the inbound
    side of a request is written after the sender's side, which is all the
    sender can observe). SQLite only."""
    deadline = time.monotonic() + timeout
    while True:
        db = sqlite3.connect(keyval_db(server), timeout=5)
        try:
            n = db.execute("SELECT COUNT(*) FROM map_items WHERE scope = ? AND owner = ? AND key LIKE 'p/%'",
                           (f"mod_roster/{server.domain}", user)).fetchone()[0]
        finally:
            db.close()
        if n >= count:
            return n
        assert time.monotonic() < deadline, f"{n} of {count} requests stored for {user}"
        time.sleep(0.05)


def ping(peer, server):
    """A round trip that keeps whatever arrives before its answer."""
    reply = peer.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")


def error_of(reply):
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    return stanza_error_condition(reply)


def groups_of(item):
    return sorted(g.text for g in item.findall(GROUP))


def subscribed_pair(server, raw_factory):
    """alice subscribed to bob and approved: alice 'to', bob 'from'. Both
    online, interested and available."""
    alice = login(server, raw_factory, "alice", presence=True)
    bob = login(server, raw_factory, "bob", presence=True)
    alice.send(f"<presence to='{bob.bare}' type='subscribe'/>")
    alice.push(bob.bare)
    bob.presence("subscribe", alice.bare)
    bob.send(f"<presence to='{alice.bare}' type='subscribed'/>")
    item, _ = bob.push(alice.bare)
    assert item.get("subscription") == "from"
    alice.presence("subscribed", bob.bare)
    item, _ = alice.push(bob.bare)
    assert item.get("subscription") == "to"
    return alice, bob
