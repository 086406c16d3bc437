"""What the mod_muc suites (test_mod_muc_*.py) share: the module-scoped
server (one per suite, two worker loops), logins, and helpers for joins,
status codes, forms and the admin and MAM queries. Each suite imports it
whole (`from muc_support import *`), fixtures included."""


import itertools
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from parley_harness import ParleyServer, required_binary
from rawxmpp import NS_CLIENT, NS_DISCO_INFO, RawClient, q, stanza_error_condition

NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = "http://jabber.org/protocol/muc#user"
NS_ADMIN = "http://jabber.org/protocol/muc#admin"
NS_OWNER = "http://jabber.org/protocol/muc#owner"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
NS_XDATA = "jabber:x:data"
NS_DELAY = "urn:xmpp:delay"
NS_OID = "urn:xmpp:occupant-id:0"
NS_PING = "urn:xmpp:ping"
PRESENCE = q(NS_CLIENT, "presence")
MESSAGE = q(NS_CLIENT, "message")
IQ = q(NS_CLIENT, "iq")
USERS = ("alice", "bob", "carol", "dave")
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {},
           "mod_muc": {"history_size": 5}}
room_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def muc_server(tmp_path_factory):
    server = ParleyServer(tmp_path_factory.mktemp("muc"), required_binary("PARLEYD"),
                          required_binary("PARLEYCTL"), modules=MODULES)
    for user in USERS:
        server.register(user, PASSWORD)
    server.start()
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


@pytest.fixture
def login(muc_server):
    clients = []

    def make(user, resource="r"):
        c = RawClient(muc_server.c2s_port)
        c.login(user, PASSWORD, resource=resource, presence=True)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.abort()


def cond(stanza):
    """The error condition of an error reply."""
    return stanza_error_condition(stanza)[1]


def error_type(stanza):
    return stanza_error_condition(stanza)[0]


def service(server):
    return f"conference.{server.domain}"


def new_room(server):
    return f"room{next(room_numbers)}@{service(server)}"


def codes(stanza):
    x = stanza.find(q(NS_USER, "x"))
    return set() if x is None else {s.get("code") for s in x.findall(q(NS_USER, "status"))}


def item(stanza):
    return stanza.find(q(NS_USER, "x")).find(q(NS_USER, "item"))


def oid(stanza):
    e = stanza.find(q(NS_OID, "occupant-id"))
    return None if e is None else e.get("id")


def until(client, pred, timeout=10):
    """Every element up to and including the first for which pred holds."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        e = client.next_element(max(0.01, deadline - time.monotonic()))
        got.append(e)
        if pred(e):
            return got


def is_subject(room):
    return lambda e: (e.tag == MESSAGE and e.get("from", "").split("/")[0] == room
                      and e.find(q(NS_CLIENT, "subject")) is not None and e.find(q(NS_CLIENT, "body")) is None)


def join(client, room, nick, x_children="", muc=True):
    """Joins; returns everything up to the subject (the join's last stanza)."""
    x = f"<x xmlns='{NS_MUC}'>{x_children}</x>" if muc else ""
    client.send(f"<presence to='{room}/{nick}'>{x}</presence>")
    return until(client, is_subject(room))


REFUSAL_TYPES = {"forbidden": "auth", "not-authorized": "auth", "registration-required": "auth",
                 "conflict": "cancel", "item-not-found": "cancel", "service-unavailable": "wait",
                 "not-allowed": "cancel", "resource-constraint": "wait"}


def join_refused(client, room, nick, x_children=""):
    client.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>{x_children}</x></presence>")
    err = client.expect(PRESENCE, match=lambda e: e.get("type") == "error" and e.get("from") == f"{room}/{nick}")
    assert err.find(q(NS_MUC, "x")) is not None  # §7.2: the error presence carries the MUC extension
    assert error_type(err) == REFUSAL_TYPES[cond(err)], ET.tostring(err, "unicode")
    return cond(err)


def self_presence(stanzas):
    return [e for e in stanzas if e.tag == PRESENCE and "110" in codes(e)][-1]


def create(client, room, nick="owner", form=""):
    """Creates a room (201) and accepts it as instant (empty submit) or with `form` fields."""
    got = join(client, room, nick)
    assert {"110", "201"} <= codes(self_presence(got))
    owner_set(client, room, form)
    return got


def owner_set(client, room, fields):
    r = client.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>"
                         f"<field var='FORM_TYPE'><value>{NS_OWNER.replace('owner', 'roomconfig')}</value></field>"
                         f"{fields}</x></query>", to=room)
    assert r.get("type") == "result", ET.tostring(r, "unicode")


def field(var, *values):
    return f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in values) + "</field>"


def groupchat(client, room, body):
    return client.message(room, body, type_="groupchat")


def expect_body(client, body, sender=None):
    return client.expect(MESSAGE, match=lambda e: e.findtext(q(NS_CLIENT, "body")) == body
                         and (sender is None or e.get("from") == sender))


def admin_set(client, room, items):
    return client.iq("set", f"<query xmlns='{NS_ADMIN}'>{items}</query>", to=room)


def marker(sender, receivers, room):
    """A groupchat marker through the room: whatever the room sent each
    receiver before it has arrived once the marker has; returns it all."""
    body = f"marker {sender.new_id()}"
    groupchat(sender, room, body)
    return [r.expect_nothing_until(lambda e: e.tag == MESSAGE and e.findtext(q(NS_CLIENT, "body")) == body)
            for r in receivers]


def admin_get(client, room, attr):
    r = client.iq("get", f"<query xmlns='{NS_ADMIN}'><item {attr}/></query>", to=room)
    assert r.get("type") == "result", ET.tostring(r, "unicode")
    return r.find(q(NS_ADMIN, "query")).findall(q(NS_ADMIN, "item"))


NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_SID = "urn:xmpp:sid:0"


def mam_page(client, room, rsm="", queryid="q1", form="", flip=False):
    """(results, fin) of a MAM query to the room."""
    sid = client.new_id()
    flip_page = f"<flip-page/>" if flip else ""
    client.send(f"<iq type='set' id='{sid}' to='{room}'><query xmlns='{NS_MAM}' queryid='{queryid}'>"
                f"{form}<set xmlns='{NS_RSM}'>{rsm}</set>{flip_page}</query></iq>")
    got = until(client, lambda e: e.tag == IQ and e.get("id") == sid)
    results = [e for e in got if e.tag == MESSAGE and e.find(q(NS_MAM, "result")) is not None]
    return results, got[-1]
