"""mod_pubsub (XEP-0060 publish-subscribe service on pubsub.HOST) against a
running parleyd with two worker loops (nodes live on the loop their name
hashes to): the service's disco, node creation (named, instant, with a
configuration), the configuration form, publish with notifications to
subscribers, retract, purge and delete (with a redirect), subscribe and
unsubscribe with their errors, items with max_items, ids and RSM,
affiliations (publisher, publish-only, member, outcast) and the §4.1 rules,
the whitelist model, publish-options preconditions, the limits, slixmpp's
xep_0060, and everything surviving a restart (the last test).

One server serves the module (module-scoped: each test uses its own nodes).
A check that nothing arrives ends with a witness and a marker."""

import itertools
import os
import sqlite3
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD, old_tables_left
from parley_harness import ParleyServer, required_binary
from rawxmpp import RawClient, q
from old_schemas import recreate_old_tables
from slix_driver import SlixRunner

C = "jabber:client"
PUBSUB = "http://jabber.org/protocol/pubsub"
OWNER = "http://jabber.org/protocol/pubsub#owner"
EVENT = "http://jabber.org/protocol/pubsub#event"
ERRORS = "http://jabber.org/protocol/pubsub#errors"
DISCO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"
DATA = "jabber:x:data"
RSM = "http://jabber.org/protocol/rsm"
COMMANDS = "http://jabber.org/protocol/commands"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")  # frank: a server admin
MAX_ITEM_BYTES = 2000
MAX_SUBSCRIPTIONS = 3
MAX_NODES_PER_USER = 40
# Small: items leave memory and are read back all through this file's tests.
MAX_CACHE_BYTES = 3000
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {},
           "mod_pubsub": {"max_item_bytes": MAX_ITEM_BYTES, "max_subscriptions": MAX_SUBSCRIPTIONS,
                          "max_nodes_per_user": MAX_NODES_PER_USER, "max_items": 20,
                          "max_cache_bytes": MAX_CACHE_BYTES}}
_nodes = itertools.count(1)


def module_paths():
    build = os.environ.get("PARLEY_BUILD_DIR")
    return [os.path.join(build, "modules")] if build else None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ParleyServer(tmp_path_factory.mktemp("pubsub"), required_binary("PARLEYD"),
                          required_binary("PARLEYCTL"), modules=MODULES, module_paths=module_paths())
    server.config["admins"] = [f"frank@{server.domain}"]
    for user in USERS:
        server.register(user, PASSWORD)
    server.start()
    yield server
    code, killed = server.stop()
    assert not killed and code == 0, f"parleyd exited with {code}"
    assert not server.sanitizer_reports()


# One server for the module: each login gets a resource of its own, so that a
# previous test's session of the same full JID, still leaving, never meets
# the new one (its exit or unavailable presence reaching the new session).
_resources = (f"r{n}" for n in itertools.count(1))


@pytest.fixture
def login(server):
    clients = []

    def make(user, resource=None):
        resource = resource or next(_resources)
        c = RawClient(server.c2s_port)
        c.login(user, PASSWORD, resource=resource, presence=True)
        c.bare = f"{user}@{server.domain}"
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.abort()


def service(server):
    return f"pubsub.{server.domain}"


def new_node():
    return f"node{next(_nodes)}"


def errors_of(reply):
    """(type, condition, pubsub#errors child or None)."""
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    error = reply.find(q(C, "error"))
    cond = next(c.tag.split("}")[1] for c in error if c.tag.startswith("{" + STANZAS))
    app = next((c.tag.split("}")[1] for c in error if c.tag.startswith("{" + ERRORS)), None)
    return error.get("type"), cond, app


def ok(reply):
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return reply


def form(fields, form_type="node_config"):
    body = f"<field var='FORM_TYPE' type='hidden'><value>{PUBSUB}#{form_type}</value></field>"
    for var, value in fields.items():
        body += f"<field var='pubsub#{var}'><value>{value}</value></field>"
    return f"<x xmlns='{DATA}' type='submit'>{body}</x>"


class Service:
    """Requests of one client to the service."""

    def __init__(self, client, server):
        self.c = client
        self.to = service(server)

    def ps(self, type_, body):
        return self.c.iq(type_, f"<pubsub xmlns='{PUBSUB}'>{body}</pubsub>", to=self.to)

    def owner(self, type_, body):
        return self.c.iq(type_, f"<pubsub xmlns='{OWNER}'>{body}</pubsub>", to=self.to)

    def create(self, node, config=None):
        conf = f"<configure>{form(config)}</configure>" if config else ""
        return self.ps("set", f"<create node='{node}'/>{conf}")

    def publish(self, node, payload, item_id=None, options=None):
        id_attr = f" id='{item_id}'" if item_id else ""
        opts = f"<publish-options>{form(options, 'publish-options')}</publish-options>" if options else ""
        return self.ps("set", f"<publish node='{node}'><item{id_attr}>{payload}</item></publish>{opts}")

    def items(self, node, extra="", inner="", rsm=""):
        return self.ps("get", f"<items node='{node}'{extra}>{inner}</items>{rsm}")

    def subscribe(self, node, jid=None):
        return self.ps("set", f"<subscribe node='{node}' jid='{jid or self.c.jid}'/>")

    def unsubscribe(self, node, jid=None, subid=None):
        sub = f" subid='{subid}'" if subid else ""
        return self.ps("set", f"<unsubscribe node='{node}' jid='{jid or self.c.jid}'{sub}/>")

    def affiliate(self, node, **affs):
        body = "".join(f"<affiliation jid='{jid}' affiliation='{a}'/>" for jid, a in affs.items())
        return self.owner("set", f"<affiliations node='{node}'>{body}</affiliations>")


def sub_form(fields, form_type="subscribe_options"):
    return form(fields, form_type)


def fields_of(element):
    return {f.get("var"): f.findtext(q(DATA, "value")) for f in element.iter(q(DATA, "field"))}


def event_message(client, node, kind="items"):
    """The next message carrying a pubsub event of `kind` for `node`."""
    def match(e):
        ev = e.find(q(EVENT, "event"))
        return ev is not None and len(ev) > 0 and ev[0].get("node") == node and ev[0].tag == q(EVENT, kind)
    return client.expect(q(C, "message"), match=match)


def approval_form(client, node):
    """The next §8.6 approval form for `node` (its fields)."""
    def match(e):
        x = e.find(q(DATA, "x"))
        return x is not None and fields_of(x).get("pubsub#node") == node
    return fields_of(client.expect(q(C, "message"), match=match).find(q(DATA, "x")))


def entry(text, n=0):
    return f"<entry xmlns='http://www.w3.org/2005/Atom'><title>{text}</title><n>{n}</n></entry>"


def event_of(client, node, kind=None):
    """The next pubsub event for `node` (its first child's local name = kind, if given)."""
    def match(e):
        ev = e.find(q(EVENT, "event"))
        if ev is None or len(ev) == 0 or ev[0].get("node") != node:
            return False
        return kind is None or ev[0].tag == q(EVENT, kind)
    return client.expect(q(C, "message"), match=match).find(q(EVENT, "event"))[0]


def events_before_marker(client, sender, node):
    return [e for e in client.nothing_before_marker(sender)
            if e.find(q(EVENT, "event")) is not None and e.find(q(EVENT, "event"))[0].get("node") == node]


def test_service_disco(server, login):
    alice = login("alice")
    info = ok(alice.iq("get", f"<query xmlns='{DISCO}'/>", to=service(server)))
    identities = [(i.get("category"), i.get("type")) for i in info.iter(q(DISCO, "identity"))]
    assert identities == [("pubsub", "service")]
    features = {f.get("var") for f in info.iter(q(DISCO, "feature"))}
    expected = {PUBSUB + "#" + f for f in (
        "access-authorize", "access-open", "access-whitelist", "auto-create", "config-node", "create-and-configure", "create-nodes",
        "delete-nodes", "instant-nodes", "item-ids", "manage-subscriptions", "member-affiliation", "meta-data",
        "modify-affiliations", "outcast-affiliation", "persistent-items", "publish", "publish-only-affiliation",
        "publish-options", "publisher-affiliation", "purge-nodes", "retract-items", "retrieve-affiliations",
        "retrieve-default", "retrieve-default-sub", "retrieve-items", "retrieve-subscriptions", "rsm", "subscribe",
        "subscription-notifications", "subscription-options", "get-pending")}
    assert features == expected | {PUBSUB, DISCO, ITEMS}
    # The server lists the service among its items.
    items = ok(alice.iq("get", f"<query xmlns='{ITEMS}'/>", to=server.domain))
    assert service(server) in {i.get("jid") for i in items.iter(q(ITEMS, "item"))}
    # A node's info: leaf identity and the meta-data form; its disco#items: the item ids.
    s = Service(alice, server)
    node = new_node()
    ok(s.create(node, {"title": "News"}))
    ok(s.publish(node, entry("one"), item_id="i1"))
    info = ok(alice.iq("get", f"<query xmlns='{DISCO}' node='{node}'/>", to=service(server)))
    assert [(i.get("category"), i.get("type")) for i in info.iter(q(DISCO, "identity"))] == [("pubsub", "leaf")]
    meta = {f.get("var"): [v.text for v in f.findall(q(DATA, "value"))] for f in info.iter(q(DATA, "field"))}
    assert meta["FORM_TYPE"] == [PUBSUB + "#meta-data"]
    assert meta["pubsub#title"] == ["News"]
    assert meta["pubsub#owner"] == [alice.bare]
    assert meta["pubsub#access_model"] == ["open"]
    listed = ok(alice.iq("get", f"<query xmlns='{ITEMS}' node='{node}'/>", to=service(server)))
    assert [i.get("name") for i in listed.iter(q(ITEMS, "item"))] == ["i1"]
    nodes = ok(alice.iq("get", f"<query xmlns='{ITEMS}'/>", to=service(server)))
    assert (node, "News") in {(i.get("node"), i.get("name")) for i in nodes.iter(q(ITEMS, "item"))}
    assert errors_of(alice.iq("get", f"<query xmlns='{DISCO}' node='nope'/>", to=service(server)))[1] == \
        "item-not-found"


def test_create_publish_notify_retract_purge_delete(server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    a, b = Service(alice, server), Service(bob, server)
    node = new_node()
    created = ok(a.create(node))
    assert created.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}create").get("node") == node
    assert errors_of(a.create(node)) == ("cancel", "conflict", None)
    sub = ok(b.subscribe(node)).find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}subscription")
    assert (sub.get("node"), sub.get("jid"), sub.get("subscription")) == (node, bob.jid, "subscribed")
    assert sub.get("subid")
    # An item id the service makes up when the publisher gives none.
    reply = ok(a.publish(node, entry("hello")))
    item_id = reply.find(f".//{{{PUBSUB}}}item").get("id")
    assert item_id
    ev = event_of(bob, node, "items")
    assert ev[0].get("id") == item_id
    assert ev[0].find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}title").text == "hello"
    # carol is not subscribed: she gets nothing (bob, subscribed, is the witness).
    ok(a.publish(node, entry("second"), item_id="two"))
    assert event_of(bob, node, "items")[0].get("id") == "two"
    assert events_before_marker(carol, alice, node) == []
    # Retract with notify.
    ok(a.ps("set", f"<retract node='{node}' notify='true'><item id='two'/></retract>"))
    assert event_of(bob, node, "items").find(q(EVENT, "retract")).get("id") == "two"
    assert errors_of(a.ps("set", f"<retract node='{node}'><item id='two'/></retract>"))[1] == "item-not-found"
    assert errors_of(a.ps("set", f"<retract node='{node}'><item/></retract>")) == \
        ("modify", "bad-request", "item-required")
    # Purge: the items go, subscribers hear of it.
    ok(a.owner("set", f"<purge node='{node}'/>"))
    event_of(bob, node, "purge")
    assert list(ok(b.items(node)).iter(q(PUBSUB, "item"))) == []
    # Only the owner purges, configures and deletes.
    assert errors_of(b.owner("set", f"<purge node='{node}'/>"))[1] == "forbidden"
    assert errors_of(b.owner("set", f"<delete node='{node}'/>"))[1] == "forbidden"
    assert errors_of(b.owner("get", f"<configure node='{node}'/>"))[1] == "forbidden"
    # Delete with a redirect.
    uri = f"xmpp:{service(server)}?;node=elsewhere"
    ok(a.owner("set", f"<delete node='{node}'><redirect uri='{uri}'/></delete>"))
    deleted = event_of(bob, node, "delete")
    assert deleted.find(q(EVENT, "redirect")).get("uri") == uri
    assert errors_of(b.items(node))[1] == "item-not-found"
    assert errors_of(a.owner("set", f"<delete node='{node}'/>"))[1] == "item-not-found"
    # A request without a node.
    assert errors_of(a.ps("set", "<publish><item/></publish>")) == ("modify", "bad-request", "nodeid-required")


def test_instant_node_default_and_configure(server, login):
    alice, bob = login("alice"), login("bob")
    a = Service(alice, server)
    created = ok(a.ps("set", "<create/>"))
    node = created.find(f".//{{{PUBSUB}}}create").get("node")
    assert node
    default = ok(a.owner("get", "<default/>"))
    fields = {f.get("var"): f for f in default.iter(q(DATA, "field"))}
    assert [o.findtext(q(DATA, "value")) for o in fields["pubsub#access_model"].findall(q(DATA, "option"))] == \
        ["authorize", "open", "whitelist"]
    conf = ok(a.owner("get", f"<configure node='{node}'/>"))
    values = {f.get("var"): f.findtext(q(DATA, "value")) for f in conf.iter(q(DATA, "field"))}
    assert values["pubsub#max_items"] == "10" and values["pubsub#publish_model"] == "publishers"
    # A form applied whole or not at all; unknown fields and values are refused.
    assert errors_of(a.owner("set", f"<configure node='{node}'>{form({'access_model': 'presence'})}</configure>"))[1] \
        == "not-acceptable"
    assert errors_of(a.owner("set", f"<configure node='{node}'>{form({'title': 'T', 'bogus': '1'})}</configure>"))[1] \
        == "not-acceptable"
    ok(a.owner("set", f"<configure node='{node}'><x xmlns='{DATA}' type='cancel'/></configure>"))
    # notify_config: a subscriber hears of a change.
    b = Service(bob, server)
    ok(b.subscribe(node))
    ok(a.owner("set", f"<configure node='{node}'>{form({'title': 'Renamed', 'notify_config': '1'})}</configure>"))
    event_of(bob, node, "configuration")
    conf = ok(a.owner("get", f"<configure node='{node}'/>"))
    assert {f.get("var"): f.findtext(q(DATA, "value")) for f in conf.iter(q(DATA, "field"))}["pubsub#title"] == \
        "Renamed"
    # Create with a configuration that is refused (no roster on a service).
    assert errors_of(a.create(new_node(), {"access_model": "presence"}))[1] == "not-acceptable"


def test_subscriptions_and_their_errors(server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    a, b = Service(alice, server), Service(bob, server)
    n1, n2 = new_node(), new_node()
    ok(a.create(n1))
    ok(a.create(n2))
    # Someone else's JID.
    assert errors_of(b.subscribe(n1, jid=carol.jid)) == ("modify", "bad-request", "invalid-jid")
    assert errors_of(b.subscribe("nope")) == ("cancel", "item-not-found", None)
    s1 = ok(b.subscribe(n1)).find(f".//{{{PUBSUB}}}subscription").get("subid")
    ok(b.subscribe(n2, jid=bob.bare))
    # Subscribing again returns the same subscription.
    assert ok(b.subscribe(n1)).find(f".//{{{PUBSUB}}}subscription").get("subid") == s1
    # The entity's subscriptions, across nodes (and loops).
    mine = ok(b.ps("get", "<subscriptions/>"))
    got = {(s.get("node"), s.get("jid")) for s in mine.iter(q(PUBSUB, "subscription"))}
    assert {(n1, bob.jid), (n2, bob.bare)} <= got
    # The owner's view, and a change by the owner.
    subs = ok(a.owner("get", f"<subscriptions node='{n1}'/>"))
    assert [(s.get("jid"), s.get("subscription")) for s in subs.iter(q(OWNER, "subscription"))] == \
        [(bob.jid, "subscribed")]
    ok(a.owner("set", f"<subscriptions node='{n1}'><subscription jid='{carol.jid}' subscription='subscribed'/>"
                      "</subscriptions>"))
    told = event_of(carol, n1, "subscription")  # §8.8.4: carol is told
    assert (told.get("jid"), told.get("subscription")) == (carol.jid, "subscribed")
    ok(a.publish(n1, entry("to both")))
    event_of(carol, n1, "items")
    event_of(bob, n1, "items")
    # Unsubscribe errors: a wrong subid, someone else's JID, not subscribed.
    assert errors_of(b.unsubscribe(n1, subid="wrong")) == ("modify", "not-acceptable", "invalid-subid")
    assert errors_of(b.unsubscribe(n1, jid=carol.jid))[1] == "forbidden"
    ok(b.unsubscribe(n1, subid=s1))
    assert errors_of(b.unsubscribe(n1)) == ("cancel", "unexpected-request", "not-subscribed")
    # bob no longer gets n1's events (carol, subscribed, is the witness).
    ok(a.publish(n1, entry("carol only")))
    event_of(carol, n1, "items")
    assert events_before_marker(bob, alice, n1) == []
    # Too many subscriptions (max_subscriptions).
    n3 = new_node()
    ok(a.create(n3))
    for c in (alice, bob, carol):
        ok(Service(c, server).subscribe(n3))
    dave = login("dave")
    assert errors_of(Service(dave, server).subscribe(n3)) == ("wait", "policy-violation", "too-many-subscriptions")


def test_affiliations_and_outcasts(server, login):
    alice, bob, carol, dave = login("alice"), login("bob"), login("carol"), login("dave")
    a, b, c, d = (Service(x, server) for x in (alice, bob, carol, dave))
    node = new_node()
    ok(a.create(node))
    # None may not publish on a publishers node.
    assert errors_of(b.publish(node, entry("x")))[1] == "forbidden"
    ok(a.affiliate(node, **{bob.bare: "publisher", carol.bare: "outcast", dave.bare: "publish-only"}))
    affs = ok(a.owner("get", f"<affiliations node='{node}'/>"))
    assert {(x.get("jid"), x.get("affiliation")) for x in affs.iter(q(OWNER, "affiliation"))} == \
        {(alice.bare, "owner"), (bob.bare, "publisher"), (carol.bare, "outcast"), (dave.bare, "publish-only")}
    # The entity's own affiliations.
    mine = ok(b.ps("get", "<affiliations/>"))
    assert (node, "publisher") in {(x.get("node"), x.get("affiliation")) for x in mine.iter(q(PUBSUB, "affiliation"))}
    # A publisher publishes; it retracts its own items, not the owner's.
    ok(b.publish(node, entry("by bob"), item_id="bob1"))
    ok(a.publish(node, entry("by alice"), item_id="alice1"))
    assert errors_of(b.ps("set", f"<retract node='{node}'><item id='alice1'/></retract>"))[1] == "forbidden"
    ok(b.ps("set", f"<retract node='{node}'><item id='bob1'/></retract>"))
    # Publish-only publishes but neither subscribes nor retrieves.
    ok(d.publish(node, entry("by dave"), item_id="dave1"))
    assert errors_of(d.items(node))[1] == "forbidden"
    assert errors_of(d.subscribe(node))[1] == "forbidden"
    # An outcast can do nothing.
    assert errors_of(c.subscribe(node)) == ("auth", "forbidden", None)
    assert errors_of(c.items(node)) == ("auth", "forbidden", None)
    assert errors_of(c.publish(node, entry("x")))[1] == "forbidden"
    # An owner's affiliations: only owners change them; the last owner stays.
    assert errors_of(b.affiliate(node, **{carol.bare: "none"}))[1] == "forbidden"
    assert errors_of(a.affiliate(node, **{alice.bare: "none"}))[1] == "not-acceptable"
    assert errors_of(a.affiliate(node, **{bob.bare: "admin"}))[1] == "bad-request"
    # Made an outcast, a subscriber loses its subscription (and its events).
    ok(b.subscribe(node))
    ok(c and a.affiliate(node, **{carol.bare: "none"}))
    ok(c.subscribe(node))
    ok(a.affiliate(node, **{bob.bare: "outcast"}))
    ok(a.publish(node, entry("after")))
    event_of(carol, node, "items")
    assert events_before_marker(bob, alice, node) == []
    subs = ok(a.owner("get", f"<subscriptions node='{node}'/>"))
    assert [s.get("jid") for s in subs.iter(q(OWNER, "subscription"))] == [carol.jid]
    # The subscribers publish model lets a subscriber publish.
    ok(a.owner("set", f"<configure node='{node}'>{form({'publish_model': 'subscribers'})}</configure>"))
    ok(c.publish(node, entry("by carol")))


def test_whitelist_refusals(server, login):
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    a, b = Service(alice, server), Service(bob, server)
    node = new_node()
    ok(a.create(node, {"access_model": "whitelist"}))
    ok(a.publish(node, entry("secret"), item_id="s"))
    assert errors_of(b.items(node)) == ("cancel", "not-allowed", "closed-node")
    assert errors_of(b.subscribe(node)) == ("cancel", "not-allowed", "closed-node")
    # Not listed in the service's nodes for bob; listed for alice.
    listed = ok(bob.iq("get", f"<query xmlns='{ITEMS}'/>", to=service(server)))
    assert node not in {i.get("node") for i in listed.iter(q(ITEMS, "item"))}
    listed = ok(alice.iq("get", f"<query xmlns='{ITEMS}'/>", to=service(server)))
    assert node in {i.get("node") for i in listed.iter(q(ITEMS, "item"))}
    # A member is on the whitelist.
    ok(a.affiliate(node, **{bob.bare: "member"}))
    assert [i.get("id") for i in ok(b.items(node)).iter(q(PUBSUB, "item"))] == ["s"]
    ok(b.subscribe(node))
    assert errors_of(Service(carol, server).items(node))[1] == "not-allowed"


def test_publish_options_and_auto_create(server, login):
    alice, bob = login("alice"), login("bob")
    a = Service(alice, server)
    node = new_node()
    # Auto-create: the publish-options become the configuration.
    ok(a.publish(node, entry("first"), item_id="1", options={"access_model": "whitelist", "max_items": "2"}))
    conf = ok(a.owner("get", f"<configure node='{node}'/>"))
    values = {f.get("var"): f.findtext(q(DATA, "value")) for f in conf.iter(q(DATA, "field"))}
    assert (values["pubsub#access_model"], values["pubsub#max_items"]) == ("whitelist", "2")
    # §7.1.5: options that do not match are refused; matching ones pass.
    assert errors_of(a.publish(node, entry("x"), options={"access_model": "open"})) == \
        ("cancel", "conflict", "precondition-not-met")
    assert errors_of(a.publish(node, entry("x"), options={"unknown_field": "1"}))[2] == "precondition-not-met"
    ok(a.publish(node, entry("second"), item_id="2", options={"access_model": "whitelist"}))
    ok(a.publish(node, entry("third"), item_id="3"))
    assert [i.get("id") for i in ok(a.items(node)).iter(q(PUBSUB, "item"))] == ["2", "3"]  # max_items 2
    # Malformed publish requests.
    assert errors_of(a.ps("set", f"<publish node='{node}'/>")) == ("modify", "bad-request", "item-required")
    assert errors_of(a.ps("set", f"<publish node='{node}'><item><a xmlns='x'/><b xmlns='x'/></item></publish>")) \
        == ("modify", "bad-request", "invalid-payload")
    assert errors_of(a.ps("set", f"<publish node='{node}'><item/></publish>")) == \
        ("modify", "bad-request", "payload-required")
    assert errors_of(a.publish(node, "<big xmlns='x'>" + "a" * MAX_ITEM_BYTES + "</big>")) == \
        ("modify", "not-acceptable", "payload-too-big")
    # bob may not auto-create over alice's node, nor publish there.
    assert errors_of(Service(bob, server).publish(node, entry("x")))[1] == "forbidden"


def test_items_max_ids_and_rsm(server, login):
    alice, bob = login("alice"), login("bob")
    a, b = Service(alice, server), Service(bob, server)
    node = new_node()
    ok(a.create(node, {"max_items": "20"}))
    for n in range(5):
        ok(a.publish(node, entry("e", n), item_id=f"i{n}"))
    assert [i.get("id") for i in ok(b.items(node, " max_items='2'")).iter(q(PUBSUB, "item"))] == ["i3", "i4"]
    got = ok(b.items(node, inner="<item id='i1'/><item id='i3'/>"))
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["i1", "i3"]

    def page(rsm):
        reply = ok(b.items(node, rsm=f"<set xmlns='{RSM}'>{rsm}</set>"))
        return [i.get("id") for i in reply.iter(q(PUBSUB, "item"))], reply.findtext(f".//{{{RSM}}}count")
    assert page("<max>2</max>") == (["i0", "i1"], "5")
    assert page("<max>2</max><after>i1</after>") == (["i2", "i3"], "5")
    assert page("<max>2</max><before/>") == (["i3", "i4"], "5")
    assert errors_of(b.items(node, rsm=f"<set xmlns='{RSM}'><after>nope</after></set>"))[1] == "item-not-found"
    assert errors_of(b.items(node, " max_items='x'"))[1] == "bad-request"


def test_nodes_per_user_limit(server, login):
    erin = login("erin")
    e = Service(erin, server)
    made = []
    for _ in range(MAX_NODES_PER_USER):
        node = new_node()
        ok(e.create(node))
        made.append(node)
    assert errors_of(e.create(new_node())) == ("cancel", "not-allowed", "max-nodes-exceeded")
    assert errors_of(e.publish(new_node(), entry("x")))[2] == "max-nodes-exceeded"  # no auto-create either
    # A deleted node frees its place.
    ok(e.owner("set", f"<delete node='{made.pop()}'/>"))
    ok(e.create(new_node()))


def test_subscription_options(server, login):
    """§6.3/§6.4: the options form (deliver, include_body), get and set, at
    subscribe time (§6.3.7), and their errors."""
    alice, bob, carol = login("alice"), login("bob"), login("carol")
    a, b, c = Service(alice, server), Service(bob, server), Service(carol, server)
    node = new_node()
    ok(a.create(node))
    defaults = {"FORM_TYPE": PUBSUB + "#subscribe_options", "pubsub#deliver": "1", "pubsub#include_body": "0"}
    assert fields_of(ok(b.ps("get", "<default/>"))) == defaults
    assert fields_of(ok(b.ps("get", f"<default node='{node}'/>"))) == defaults
    assert errors_of(b.ps("get", f"<default node='nope{node}'/>"))[1] == "item-not-found"
    mine = f"<options node='{node}' jid='{bob.jid}'/>"
    assert errors_of(b.ps("get", mine)) == ("cancel", "unexpected-request", "not-subscribed")
    assert errors_of(b.ps("get", f"<options node='{node}'/>")) == ("modify", "bad-request", "jid-required")
    # Subscribe and configure at once: bob wants bodies.
    got = ok(b.ps("set", f"<subscribe node='{node}' jid='{bob.jid}'/>"
                         f"<options>{sub_form({'include_body': 'true'})}</options>"))
    sub = got.find(f".//{{{PUBSUB}}}subscription")
    assert sub.get("subscription") == "subscribed" and sub.find(q(PUBSUB, "subscribe-options")) is not None
    assert errors_of(c.ps("set", f"<subscribe node='{node}' jid='{carol.jid}'/>"
                                 f"<options>{sub_form({'digest': '1'})}</options>")) == \
        ("modify", "bad-request", "invalid-options")
    ok(c.subscribe(node))
    got = ok(b.ps("get", mine)).find(f".//{{{PUBSUB}}}options")
    assert got.get("subid") == sub.get("subid")
    assert fields_of(got) == dict(defaults, **{"pubsub#include_body": "1"})
    # Someone else's options: forbidden, but the owner may read them.
    assert errors_of(c.ps("get", mine)) == ("auth", "forbidden", None)
    assert fields_of(ok(a.ps("get", mine)))["pubsub#include_body"] == "1"
    assert errors_of(b.ps("get", f"<options node='{node}' jid='{bob.jid}' subid='nope'/>")) == \
        ("modify", "not-acceptable", "invalid-subid")
    for bad in ({"digest": "1"}, {"deliver": "maybe"}):
        assert errors_of(b.ps("set", f"<options node='{node}' jid='{bob.jid}'>{sub_form(bad)}</options>")) == \
            ("modify", "bad-request", "invalid-options")
    assert errors_of(b.ps("set", f"<options node='{node}' jid='{bob.jid}'>{form({}, 'node_config')}</options>")) \
        == ("modify", "bad-request", "invalid-options")
    # include_body: an Atom entry's title and summary in a <body/>, to bob only.
    atom = ("<entry xmlns='http://www.w3.org/2005/Atom'><title>Hello</title><summary>World</summary></entry>")
    ok(a.publish(node, atom))
    assert event_message(bob, node).findtext(q(C, "body")) == "Hello\nWorld"
    assert event_message(carol, node).find(q(C, "body")) is None
    # deliver false: carol gets nothing (bob, the witness, does).
    ok(c.ps("set", f"<options node='{node}' jid='{carol.jid}'>{sub_form({'deliver': '0'})}</options>"))
    assert fields_of(ok(c.ps("get", f"<options node='{node}' jid='{carol.jid}'/>")))["pubsub#deliver"] == "0"
    ok(a.publish(node, entry("quiet")))
    event_of(bob, node, "items")
    assert events_before_marker(carol, alice, node) == []


def test_authorize_access_model(server, login):
    """§4.5 authorize: subscriptions pending until an owner approves (the §8.6
    form, or §8.8), items and notifications for approved subscribers only."""
    alice, bob, carol, dave = login("alice"), login("bob"), login("carol"), login("dave")
    a, b, c, d = (Service(x, server) for x in (alice, bob, carol, dave))
    node = new_node()
    ok(a.create(node, {"access_model": "authorize"}))
    ok(a.publish(node, entry("secret"), item_id="s1"))
    assert errors_of(b.items(node)) == ("auth", "not-authorized", "not-subscribed")
    sub = ok(b.subscribe(node)).find(f".//{{{PUBSUB}}}subscription")
    assert sub.get("subscription") == "pending"
    asked = approval_form(alice, node)
    assert asked["FORM_TYPE"] == PUBSUB + "#subscribe_authorization"
    assert (asked["pubsub#subscriber_jid"], asked["pubsub#subid"], asked["pubsub#allow"]) == \
        (bob.jid, sub.get("subid"), "false")
    assert errors_of(b.subscribe(node)) == ("auth", "not-authorized", "pending-subscription")
    assert errors_of(b.items(node))[1] == "not-authorized"
    # §8.7 get-pending: the owner's nodes with pending requests; the one picked
    # sends its approval forms again. Without any: item-not-found.
    execute = f"<command xmlns='{COMMANDS}' node='{PUBSUB}#get-pending' action='execute'/>"
    listed = ok(alice.iq("set", execute, to=service(server))).find(q(COMMANDS, "command"))
    assert listed.get("status") == "executing"
    assert node in [o.findtext(q(DATA, "value")) for o in listed.iter(q(DATA, "option"))]
    picked = (f"<command xmlns='{COMMANDS}' node='{PUBSUB}#get-pending' sessionid='{listed.get('sessionid')}'>"
              f"<x xmlns='{DATA}' type='submit'><field var='pubsub#node'><value>{node}</value></field></x></command>")
    assert ok(alice.iq("set", picked, to=service(server))).find(q(COMMANDS, "command")).get("status") == "completed"
    assert approval_form(alice, node)["pubsub#subscriber_jid"] == bob.jid
    assert errors_of(dave.iq("set", execute, to=service(server)))[1] == "item-not-found"
    assert errors_of(dave.iq("set", picked, to=service(server)))[1] == "forbidden"
    listed = ok(a.owner("get", f"<subscriptions node='{node}'/>"))
    assert [(s.get("jid"), s.get("subscription")) for s in listed.iter(q(OWNER, "subscription"))] == \
        [(bob.jid, "pending")]
    # The owner needs no approval; a pending subscriber gets no notification.
    assert ok(a.subscribe(node)).find(f".//{{{PUBSUB}}}subscription").get("subscription") == "subscribed"
    ok(a.publish(node, entry("while pending"), item_id="s2"))
    event_of(alice, node, "items")
    assert events_before_marker(bob, alice, node) == []
    # A non-owner's answer to the form is refused.
    answer = {k: v for k, v in asked.items() if k != "FORM_TYPE"}
    fields = "".join(f"<field var='{k}'><value>{v}</value></field>"
                     for k, v in dict(answer, **{"pubsub#allow": "true"}).items())
    submit = (f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
              f"<value>{PUBSUB}#subscribe_authorization</value></field>{fields}</x>")
    dave.send(f"<message to='{service(server)}' id='forged'>{submit}</message>")
    refused = dave.expect(q(C, "message"), match=lambda e: e.get("id") == "forged")
    assert refused.get("type") == "error" and refused.find(f".//{{{STANZAS}}}forbidden") is not None
    # The owner approves through the form: bob is told, and may read.
    alice.send(f"<message to='{service(server)}' id='approve'>{submit}</message>")
    told = event_message(bob, node, "subscription").find(q(EVENT, "event"))[0]
    assert (told.get("jid"), told.get("subscription")) == (bob.jid, "subscribed")
    assert [i.get("id") for i in ok(b.items(node)).iter(q(PUBSUB, "item"))] == ["s1", "s2"]
    ok(a.publish(node, entry("approved"), item_id="s3"))
    event_of(bob, node, "items")
    # carol is denied through the owner's subscriptions list (§8.8).
    assert ok(c.subscribe(node)).find(f".//{{{PUBSUB}}}subscription").get("subscription") == "pending"
    assert approval_form(alice, node)["pubsub#subscriber_jid"] == carol.jid
    ok(a.owner("set", f"<subscriptions node='{node}'><subscription jid='{carol.jid}' subscription='none'/>"
                      "</subscriptions>"))
    told = event_message(carol, node, "subscription").find(q(EVENT, "event"))[0]
    assert told.get("subscription") == "none"
    assert errors_of(c.items(node))[1] == "not-authorized"
    # A member needs no approval.
    ok(a.affiliate(node, **{dave.bare: "member"}))
    assert ok(d.subscribe(node)).find(f".//{{{PUBSUB}}}subscription").get("subscription") == "subscribed"


def test_item_expire(server, login):
    """pubsub#item_expire: an item older than it is gone at the next request
    (polled: it takes the one second the node keeps it)."""
    alice = login("alice")
    a = Service(alice, server)
    node = new_node()
    ok(a.create(node, {"item_expire": "1", "max_items": "5"}))
    conf = fields_of(ok(a.owner("get", f"<configure node='{node}'/>")))
    assert conf["pubsub#item_expire"] == "1"
    ok(a.publish(node, entry("brief"), item_id="e1"))
    deadline = time.monotonic() + 10
    while [i.get("id") for i in ok(a.items(node)).iter(q(PUBSUB, "item"))] == ["e1"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert list(ok(a.items(node)).iter(q(PUBSUB, "item"))) == []
    # A fresh item is kept: under a lifetime no round trip can outlast (with
    # one second, a publish and a read more than a second apart, as a loaded
    # machine under TSan makes them, found it expired too).
    ok(a.owner("set", f"<configure node='{node}'>{form({'item_expire': '3600'})}</configure>"))
    ok(a.publish(node, entry("fresh"), item_id="e2"))
    assert [i.get("id") for i in ok(a.items(node)).iter(q(PUBSUB, "item"))] == ["e2"]


def test_service_admins_own_every_node(server, login):
    """A server admin (config admins, option admins_own_nodes) configures and
    deletes any node; anyone else may not."""
    alice, bob, frank = login("alice"), login("bob"), login("frank")
    a, b, f = Service(alice, server), Service(bob, server), Service(frank, server)
    node = new_node()
    ok(a.create(node))
    assert errors_of(b.owner("get", f"<configure node='{node}'/>"))[1] == "forbidden"
    ok(f.owner("get", f"<configure node='{node}'/>"))
    ok(f.owner("set", f"<configure node='{node}'>{form({'title': 'By the admin'})}</configure>"))
    assert fields_of(ok(a.owner("get", f"<configure node='{node}'/>")))["pubsub#title"] == "By the admin"
    assert errors_of(b.owner("set", f"<delete node='{node}'/>"))[1] == "forbidden"
    ok(f.owner("set", f"<delete node='{node}'/>"))
    assert errors_of(a.items(node))[1] == "item-not-found"


def counters(server):
    status = server.ctl("status").stdout
    prefix = f"mod_pubsub.{server.domain}."
    return {line.split(": ")[0][len(prefix):]: int(line.split(": ")[1])
            for line in status.splitlines() if line.startswith(prefix)}


def test_items_in_memory_are_bounded(server, login):
    """max_cache_bytes: past it, the least recently used nodes' items leave
    memory (each loop keeps at most the limit plus the node in use) and come
    back from the store for the next request."""
    alice, bob = login("alice"), login("bob")
    a, b = Service(alice, server), Service(bob, server)
    nodes = [new_node() for _ in range(6)]
    pad = "x" * 800
    for node in nodes:
        ok(a.create(node, {"max_items": "3"}))
        for i in range(3):
            ok(a.publish(node, f"<blob xmlns='urn:test:blob'>{node} {i} {pad}</blob>", item_id=f"b{i}"))
    before = counters(server)
    for node in nodes + nodes:
        got = ok(b.items(node))
        assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["b0", "b1", "b2"]
        assert [e.text.split()[:2] for e in got.iter("{urn:test:blob}blob")] == [[node, str(i)] for i in range(3)]
    after = counters(server)
    assert after["item_loads"] > before.get("item_loads", 0)
    assert after["item_evictions"] > 0
    # Two loops, each at most the limit and the node just read (its three items).
    assert 0 < after["cached_item_bytes"] <= 2 * (MAX_CACHE_BYTES + 3 * 900), after


def test_slixmpp_xep_0060(server):
    runner = SlixRunner()
    try:
        a = runner.client(f"alice@{server.domain}/slix", PASSWORD)
        b = runner.client(f"bob@{server.domain}/slix", PASSWORD)
        for c in (a, b):
            c.xmpp.register_plugin("xep_0060")
        node = new_node()
        got = runner.loop.create_future()
        b.xmpp.add_event_handler("pubsub_publish", lambda msg: got.done() or got.set_result(msg))

        async def scenario():
            import asyncio
            assert await a.connect(server.c2s_port) is True
            assert await b.connect(server.c2s_port) is True
            ps_a, ps_b = a.xmpp["xep_0060"], b.xmpp["xep_0060"]
            await ps_a.create_node(service(server), node)
            await ps_b.subscribe(service(server), node)
            payload = ET.fromstring("<entry xmlns='urn:test:slix'>hi</entry>")
            await ps_a.publish(service(server), node, id="s1", payload=payload)
            msg = await asyncio.wait_for(got, 20)
            assert msg["pubsub_event"]["items"]["item"]["id"] == "s1"
            items = await ps_b.get_items(service(server), node)
            assert [i["id"] for i in items["pubsub"]["items"]] == ["s1"]
            nodes = await b.xmpp["xep_0030"].get_items(jid=service(server))
            assert node in [n[1] for n in nodes["disco_items"]["items"]]
            await ps_a.delete_node(service(server), node)
        runner.run(scenario(), timeout=60)
    finally:
        runner.close()


def test_kept_on_postgresql(server_factory, raw_factory, pg_storage):
    """The map store follows the server's backend: a node, its affiliations,
    subscriptions and items survive a restart on PostgreSQL."""
    server = server_factory(modules=MODULES, module_paths=module_paths(), storage=pg_storage)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)

    def client(user):
        c = raw_factory(server.c2s_port)
        c.login(user, PASSWORD, resource="r", presence=True)
        return c
    alice, bob = client("alice"), client("bob")
    a, b = Service(alice, server), Service(bob, server)
    ok(a.create("pg", {"title": "On PostgreSQL", "max_items": "2"}))
    for n in range(3):
        ok(a.publish("pg", entry("pg", n), item_id=f"p{n}"))
    ok(b.subscribe("pg"))
    alice.sync()
    server.restart()
    alice, bob = client("alice"), client("bob")
    a, b = Service(alice, server), Service(bob, server)
    assert [i.get("id") for i in ok(b.items("pg")).iter(q(PUBSUB, "item"))] == ["p1", "p2"]
    ok(a.publish("pg", entry("pg", 9), item_id="p9"))  # still the owner
    event_of(bob, "pg", "items")  # still subscribed


def test_rows_of_the_old_tables_are_moved_into_the_map_store(server_factory, raw_factory):
    """A server whose mod_pubsub kept its data in its own SQLite tables (the
    schema before the map store, still declared) serves it after the upgrade:
    moved at the first start, the old rows deleted."""
    server = server_factory(modules=MODULES, module_paths=module_paths())
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    server.stop()
    domain = service(server)
    db = sqlite3.connect(server.data_dir / "parley.db")
    recreate_old_tables(db, "mod_pubsub_nodes", "mod_pubsub_affiliations", "mod_pubsub_subscriptions", "mod_pubsub_items")
    with db:
        db.execute("INSERT INTO mod_pubsub_nodes (service, node, creator, config) VALUES (?, ?, ?, ?)",
                   (domain, "old", f"alice@{server.domain}", "v1\naccess open\nmax_items 5\ntitle Old\n"))
        db.execute("INSERT INTO mod_pubsub_affiliations (service, node, jid, affiliation) VALUES (?, ?, ?, ?)",
                   (domain, "old", f"alice@{server.domain}", "owner"))
        db.execute("INSERT INTO mod_pubsub_subscriptions (service, node, jid, subid, state, options) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (domain, "old", f"bob@{server.domain}", "sub1", "subscribed",
                                                  "deliver 1\ninclude_body 1\n"))
        db.executemany("INSERT INTO mod_pubsub_items (service, node, item_id, seq, publisher, payload) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [(domain, "old", f"o{n}", 1000 - n, f"alice@{server.domain}", entry("old", n))
                        for n in range(3)])
    db.close()
    server.start()
    bob = raw_factory(server.c2s_port)
    bob.login("bob", PASSWORD, resource="r", presence=True)
    b = Service(bob, server)
    assert [i.get("id") for i in ok(b.items("old")).iter(q(PUBSUB, "item"))] == ["o2", "o1", "o0"]
    opts = ok(b.ps("get", f"<options node='old' jid='bob@{server.domain}'/>")).find(f".//{{{PUBSUB}}}options")
    assert opts.get("subid") == "sub1" and fields_of(opts)["pubsub#include_body"] == "1"
    # Moved, then dropped.
    assert old_tables_left(server.data_dir / "parley.db",
                           [f"mod_pubsub_{t}" for t in ("nodes", "affiliations", "subscriptions", "items")]) == {}


def test_everything_survives_a_restart(server, login):
    """Last in the file: restarts the module's server. The same full JIDs
    after the restart: a subscription names one."""
    alice, bob, carol = login("alice", "kept"), login("bob", "kept"), login("carol", "kept")
    a, b, c = Service(alice, server), Service(bob, server), Service(carol, server)
    node = new_node()
    ok(a.create(node, {"title": "Kept", "max_items": "3"}))
    for n in range(4):
        ok(a.publish(node, entry("kept", n), item_id=f"k{n}"))
    ok(a.affiliate(node, **{bob.bare: "publisher"}))
    ok(b.ps("set", f"<subscribe node='{node}' jid='{bob.jid}'/><options>{sub_form({'include_body': '1'})}</options>"))
    guarded = new_node()
    ok(a.create(guarded, {"access_model": "authorize"}))
    assert ok(c.subscribe(guarded)).find(f".//{{{PUBSUB}}}subscription").get("subscription") == "pending"
    volatile = new_node()
    ok(a.create(volatile, {"persist_items": "0"}))
    ok(a.publish(volatile, entry("gone")))
    alice.sync()
    server.restart()
    alice, bob, carol = login("alice", "kept"), login("bob", "kept"), login("carol", "kept")
    a, b, c = Service(alice, server), Service(bob, server), Service(carol, server)
    got = ok(b.items(node))
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["k1", "k2", "k3"]
    conf = ok(a.owner("get", f"<configure node='{node}'/>"))
    assert {f.get("var"): f.findtext(q(DATA, "value")) for f in conf.iter(q(DATA, "field"))}["pubsub#title"] == "Kept"
    affs = ok(a.owner("get", f"<affiliations node='{node}'/>"))
    assert (bob.bare, "publisher") in {(x.get("jid"), x.get("affiliation")) for x in affs.iter(q(OWNER, "affiliation"))}
    ok(b.publish(node, entry("after restart"), item_id="k9"))  # still a publisher
    event_of(bob, node, "items")  # still subscribed
    assert fields_of(ok(b.ps("get", f"<options node='{node}' jid='{bob.jid}'/>")))["pubsub#include_body"] == "1"
    # A pending subscription is still pending.
    listed = ok(a.owner("get", f"<subscriptions node='{guarded}'/>"))
    assert [(x.get("jid"), x.get("subscription")) for x in listed.iter(q(OWNER, "subscription"))] == \
        [(carol.jid, "pending")]
    assert errors_of(c.subscribe(guarded)) == ("auth", "not-authorized", "pending-subscription")
    # A node with persist_items false keeps its configuration, not its items.
    assert list(ok(a.items(volatile)).iter(q(PUBSUB, "item"))) == []
