"""A contact on an external component (XEP-0114, `c.localhost`), for the
roster and presence suites that look at what alice's server sends a contact
and does with what a contact sends: the component receives exactly what the
server routes there, and what it sends is processed by alice's server alone
(test_mod_roster_state_table.py, test_mod_presence_remote.py)."""

import sqlite3
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from component_client import RawComponent
from parley_harness import ParleyServer, free_port
from rawxmpp import RawClient, q
from roster_peer import IQ, ITEM, PRESENCE, QUERY, SAFETY_TIMEOUT, Peer, keyval_db, wait_in_inbox

COMPONENT = "c.localhost"
SECRET = "contact-secret"
NS_COMPONENT = "jabber:component:accept"
CPRESENCE = q(NS_COMPONENT, "presence")
CMESSAGE = q(NS_COMPONENT, "message")
CIQ = q(NS_COMPONENT, "iq")
SUB_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")

# The states of A.1: (subscription, Pending Out, Pending In).
STATES = {
    "None": ("none", False, False),
    "None + Pending Out": ("none", True, False),
    "None + Pending In": ("none", False, True),
    "None + Pending Out+In": ("none", True, True),
    "To": ("to", False, False),
    "To + Pending In": ("to", False, True),
    "From": ("from", False, False),
    "From + Pending Out": ("from", True, False),
    "Both": ("both", False, False),
}


class Contact:
    """The component's side: an inbox, so that nothing arriving early is lost."""

    _pings = 0

    def __init__(self, comp):
        self.c = comp
        self.inbox = []

    def wait(self, pred, what):
        return wait_in_inbox(self.c, self.inbox, pred, SAFETY_TIMEOUT, what, "component")

    def ping(self):
        """A round trip to the server over the component's stream."""
        Contact._pings += 1
        sid = f"cping{Contact._pings}"
        self.c.send(f"<iq type='get' id='{sid}' from='{COMPONENT}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        r = self.wait(lambda e: e.tag == CIQ and e.get("id") == sid, "ping answer")
        assert r.get("type") == "result", ET.tostring(r, "unicode")

    def presence(self, frm, to, type_):
        return self.wait(lambda e: e.tag == CPRESENCE and e.get("type") == type_ and e.get("to") == to
                         and e.get("from") == frm, f"presence {type_} {frm} -> {to}")

    def available(self, frm, to):
        """Waits for available presence from `frm` to `to` (a probe's answer
        comes after a storage read: wait for it rather than for a round trip)."""
        return self.wait(lambda e: e.tag == CPRESENCE and e.get("type") is None and e.get("from") == frm
                         and e.get("to") == to, f"available presence {frm} -> {to}")

    def to_contact(self, contact):
        """(type, from) of the presences for `contact` in the inbox, in the
        order they came, taken out of it."""
        found = [e for e in self.inbox if e.tag == CPRESENCE and e.get("to") == contact]
        self.inbox = [e for e in self.inbox if e not in found]
        return [(e.get("type"), e.get("from")) for e in found]

    def send(self, frm, to, type_):
        self.c.send(f"<presence from='{frm}' to='{to}' type='{type_}'/>")

    def sub_stanzas(self, contact):
        """Subscription stanzas for `contact` in the inbox, taken out of it."""
        found = [e for e in self.inbox if e.tag == CPRESENCE and e.get("to") == contact
                 and e.get("type") in SUB_TYPES]
        self.inbox = [e for e in self.inbox if e not in found]
        return found


def start_world(base_dir, binaries, modules):
    """A server with `modules`, the component connected and alice logged in,
    interested in her roster and available: (server, alice, contact side)."""
    port = free_port()
    server = ParleyServer(
        base_dir, binaries["parleyd"], binaries["parleyctl"], modules=modules,
        extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                          "hosts": {COMPONENT: {"password": SECRET}}}])
    server.start()
    server.register("alice", PASSWORD)
    raw = RawClient(server.c2s_port)
    raw.login("alice", PASSWORD, resource="table")
    alice = Peer(raw, "alice", server.domain)
    assert alice.get().get("type") == "result"  # interested
    alice.send("<presence/>")                     # and available
    alice.wait(lambda e: e.tag == PRESENCE and e.get("from") == alice.jid and e.get("type") is None,
               what="own presence")
    comp = RawComponent(port, COMPONENT)
    comp.connect_as(SECRET)
    return server, alice, Contact(comp)


def stop_world(world):
    server, alice, comp = world
    comp.c.close(timeout=2)
    alice.c.close(timeout=2)
    code, killed = server.stop()
    assert not killed and code == 0, server.log()[-20000:]
    assert not server.sanitizer_reports(), server.sanitizer_reports()[:20]


def pending_stored(server, contact):
    db = sqlite3.connect(keyval_db(server), timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM map_items WHERE scope = ? AND owner = ? AND key = ?",
                          (f"mod_roster/{server.domain}", "alice", f"p/{contact}")).fetchone()[0] == 1
    finally:
        db.close()


def visible(state):
    sub, out, _ = STATES[state]
    return sub, "subscribe" if out else None


def item_of(alice, contact):
    return alice.roster().get(contact)


def round_trip(alice, contact_side):
    """Everything alice's and the contact's earlier stanzas caused has been
    done: the contact's ping is answered once its stanzas went through the
    hooks; alice's roster get is answered after every earlier piece of her
    roster work (deliveries and pushes to her come first); her marker
    message reaches the component after whatever that work routed there."""
    contact_side.ping()
    assert alice.get().get("type") == "result"
    body = f"marker-{id(alice)}-{Peer._ids}"
    alice.send(f"<message to='{COMPONENT}' type='chat'><body>{body}</body></message>")
    contact_side.wait(lambda e: e.tag == CMESSAGE and e.findtext(q("jabber:component:accept", "body")) == body,
                      "marker")


def reach(world, contact, state):
    """Puts alice's item for `contact` in `state` by the protocol itself."""
    server, alice, comp = world
    me = alice.bare
    assert alice.set(contact).get("type") == "result"
    alice.push(contact)
    sub, out, pin = STATES[state]
    if sub in ("to", "both"):
        alice.send(f"<presence to='{contact}' type='subscribe'/>")
        comp.presence(me, contact, "subscribe")
        alice.push(contact)
        comp.send(contact, me, "subscribed")
        alice.presence("subscribed", contact)
        alice.push(contact)
    if sub in ("from", "both"):
        comp.send(contact, me, "subscribe")
        alice.presence("subscribe", contact)
        alice.send(f"<presence to='{contact}' type='subscribed'/>")
        comp.presence(me, contact, "subscribed")
        comp.available(alice.jid, contact)  # 3.1.5: alice's current presence follows
        alice.push(contact)
    if out:
        alice.send(f"<presence to='{contact}' type='subscribe'/>")
        comp.presence(me, contact, "subscribe")
        alice.push(contact)
    if pin:
        comp.send(contact, me, "subscribe")
        alice.presence("subscribe", contact)
    round_trip(alice, comp)
    item = item_of(alice, contact)
    assert (item.get("subscription"), item.get("ask")) == visible(state), ET.tostring(item, "unicode")
    assert pending_stored(server, contact) == pin
    alice.inbox.clear()
    comp.inbox.clear()


def pushes_for(alice, contact):
    """The roster pushes for `contact` alice has, taken out of her inbox and acknowledged."""
    found = [e for e in alice.inbox if e.tag == IQ and e.get("type") == "set"
             and e.find(f"{QUERY}/{ITEM}") is not None and e.find(f"{QUERY}/{ITEM}").get("jid") == contact]
    alice.inbox = [e for e in alice.inbox if e not in found]
    for e in found:
        alice.send(f"<iq type='result' id='{e.get('id')}'/>")
    return found
