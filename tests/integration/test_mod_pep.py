"""mod_pep (XEP-0163 Personal Eventing Protocol, XEP-0060 as PEP uses it,
XEP-0115 entity capabilities for +notify) against a running parleyd, with a
raw client for exact XML and slixmpp (xep_0060/0163/0084/0115) as a real
client. slixmpp 1.8 has no xep_0402 plugin: bookmarks are raw."""

import base64
import hashlib
import itertools
import os
import re
import sqlite3
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD, logged_in, old_tables_left, server_with_users
from rawxmpp import q, stanza_error_condition
from old_schemas import recreate_old_tables
from slix_driver import SlixRunner

C = "jabber:client"
PUBSUB = "http://jabber.org/protocol/pubsub"
OWNER = "http://jabber.org/protocol/pubsub#owner"
EVENT = "http://jabber.org/protocol/pubsub#event"
ERRORS = "http://jabber.org/protocol/pubsub#errors"
DISCO = "http://jabber.org/protocol/disco#info"
CAPS = "http://jabber.org/protocol/caps"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
ROSTER = "jabber:iq:roster"
OMEMO = "eu.siacs.conversations.axolotl.devicelist"
TUNE = "http://jabber.org/protocol/tune"
BOOKMARKS = "urn:xmpp:bookmarks:1"
RSM = "http://jabber.org/protocol/rsm"
DELAY = "urn:xmpp:delay"
ITEMS = "http://jabber.org/protocol/disco#items"
PRIVATE = "jabber:iq:private"
LEGACY = "storage:bookmarks"

MAX_ITEM_BYTES = 4000
MODULES = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_private": {},
           "mod_pep": {"max_item_bytes": MAX_ITEM_BYTES, "max_nodes": 8, "max_affiliations": 2,
                       "max_user_bytes": 20000}}

_unique = itertools.count()


def module_paths():
    """This build's modules first (parleyd's compiled-in directory may be another build's)."""
    build = os.environ.get("PARLEY_BUILD_DIR")
    return [os.path.join(build, "modules")] if build else None


def start_server(server_factory, users=("alice", "bob", "carol", "dave"), storage=None):
    return server_with_users(server_factory, users, modules=dict(MODULES), module_paths=module_paths(),
                             storage=storage)


def login(server, raw_factory, user, resource="r", presence=True):
    """A bound session; available (a plain initial presence, no caps) unless
    `presence` is False (then announce() sends the initial presence)."""
    c = logged_in(server, raw_factory, user, resource, presence)
    c.bare = f"{user}@{server.domain}"
    return c


def caps_ver(identities, features):
    s = "".join(f"{c}/{t}/{l}/{n}<" for c, t, l, n in sorted(identities))
    s += "".join(f + "<" for f in sorted(features))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def announce(client, notify=(), forged=None, priority=None):
    """Initial presence (or a later one) with XEP-0115 caps whose features are
    disco#info and NODE+notify for each of `notify` (plus a unique one: each
    client's ver is new to the server), with `priority` if given. Answers the
    server's disco#info query (with `forged` features instead, if given) and
    returns the ver."""
    features = [DISCO, f"urn:test:unique:{next(_unique)}"] + [n + "+notify" for n in notify]
    identity = ("client", "pc", "", "raw")
    ver = caps_ver([identity], features)
    prio = "" if priority is None else f"<priority>{priority}</priority>"
    client.send(f"<presence>{prio}<c xmlns='{CAPS}' hash='sha-1' node='urn:test:raw' ver='{ver}'/></presence>")
    query = client.expect(q(C, "iq"), match=lambda e: e.get("type") == "get" and e.find(q(DISCO, "query")) is not None)
    assert query.find(q(DISCO, "query")).get("node") == f"urn:test:raw#{ver}"
    answered = features if forged is None else forged
    body = "<identity category='client' type='pc' name='raw'/>" + "".join(f"<feature var='{f}'/>" for f in answered)
    client.send(f"<iq type='result' id='{query.get('id')}' to='{query.get('from')}'>"
                f"<query xmlns='{DISCO}' node='urn:test:raw#{ver}'>{body}</query></iq>")
    # A round trip: the server verified the answer. What arrived meanwhile (a
    # last item, once verified) is kept for wait_event()/no_event().
    client.pending = getattr(client, "pending", []) + client.nothing_before_sync()
    return ver


def wait_event(client, node, match=None):
    """The next event message for `node` (one that arrived during announce()
    first)."""
    def ok(e):
        return is_event(node)(e) and (match is None or match(e))
    pending = getattr(client, "pending", [])
    for i, e in enumerate(pending):
        if ok(e):
            del pending[i]
            return e
    return client.expect(q(C, "message"), match=ok)


def no_event(client, sender, node):
    """The events for `node` that reached `client` before a marker `sender`
    sends it now (see rawxmpp.nothing_before_marker)."""
    return events(getattr(client, "pending", []) + client.nothing_before_marker(sender), node)


def collect_events(client, nodes, timeout=10):
    """Reads until an event of each of `nodes` came (in any order); returns
    them by node, other elements dropped."""
    got = {}
    deadline = time.monotonic() + timeout
    while set(nodes) - set(got):
        e = client.next_element(max(0.01, deadline - time.monotonic()))
        for node in nodes:
            if is_event(node)(e):
                got[node] = e
    return got


def subscribe(contact, owner):
    """`contact` subscribes to `owner`'s presence, `owner` approves: 'from' in
    owner's roster. Returns once the owner's roster shows it."""
    contact.send(f"<presence type='subscribe' to='{owner.bare}'/>")
    owner.expect(q(C, "presence"), match=lambda e: e.get("type") == "subscribe")
    owner.send(f"<presence type='subscribed' to='{contact.bare}'/>")
    contact.expect(q(C, "presence"), match=lambda e: e.get("type") == "subscribed")
    deadline = time.monotonic() + 10
    while True:
        roster = owner.iq("get", f"<query xmlns='{ROSTER}'/>")
        items = {i.get("jid"): i.get("subscription") for i in roster.iter(q(ROSTER, "item"))}
        if items.get(contact.bare) in ("from", "both"):
            return
        assert time.monotonic() < deadline, items
        time.sleep(0.05)


def options_form(fields, form_type="publish-options"):
    body = f"<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#{form_type}</value></field>"
    for var, value in fields.items():
        body += f"<field var='pubsub#{var}'><value>{value}</value></field>"
    return f"<x xmlns='jabber:x:data' type='submit'>{body}</x>"


def publish(client, node, payload, item_id=None, options=None, to=None):
    id_attr = f" id='{item_id}'" if item_id else ""
    opts = f"<publish-options>{options_form(options)}</publish-options>" if options else ""
    return client.iq("set", f"<pubsub xmlns='{PUBSUB}'><publish node='{node}'><item{id_attr}>{payload}</item>"
                            f"</publish>{opts}</pubsub>", to=to)


def get_items(client, owner, node, extra=""):
    return client.iq("get", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'{extra}/></pubsub>", to=owner)


def errors_of(reply):
    """(type, condition, pubsub#errors child or None)."""
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    error = reply.find(q(C, "error"))
    cond = next(c.tag.split("}")[1] for c in error if c.tag.startswith("{" + STANZAS))
    app = next((c.tag.split("}")[1] for c in error if c.tag.startswith("{" + ERRORS)), None)
    return error.get("type"), cond, app


def is_event(node):
    def match(e):
        event = e.find(q(EVENT, "event"))
        return e.tag == q(C, "message") and event is not None and any(c.get("node") == node for c in event)
    return match


def events(elements, node):
    return [e for e in elements if is_event(node)(e)]


def devicelist(*ids):
    return f"<list xmlns='{OMEMO}'>" + "".join(f"<device id='{i}'/>" for i in ids) + "</list>"


def test_omemo_devicelist_open_fetched_by_a_stranger(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    stranger = login(server, raw_factory, "bob")
    reply = publish(alice, OMEMO, devicelist(1234, 5678), item_id="current", options={"access_model": "open"})
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    assert reply.find(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}publish/{{{PUBSUB}}}item").get("id") == "current"
    got = get_items(stranger, alice.bare, OMEMO)
    assert got.get("type") == "result", ET.tostring(got, "unicode")
    items = got.findall(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}items/{{{PUBSUB}}}item")
    assert [i.get("id") for i in items] == ["current"]
    devices = items[0].findall(f"{{{OMEMO}}}list/{{{OMEMO}}}device")
    assert [d.get("id") for d in devices] == ["1234", "5678"]
    # A node with the default access model (presence) is refused to him.
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'><title>t</title></tune>").get("type") == "result"
    assert errors_of(get_items(stranger, alice.bare, TUNE)) == ("auth", "not-authorized",
                                                               "presence-subscription-required")
    # A node that does not exist; an item by id; max_items.
    assert errors_of(get_items(stranger, alice.bare, "urn:none")) == ("cancel", "item-not-found", None)
    for n in range(3):
        publish(alice, "urn:test:many", f"<n xmlns='urn:test'>{n}</n>", item_id=f"i{n}",
                options={"access_model": "open", "max_items": "max"})
    got = get_items(stranger, alice.bare, "urn:test:many", " max_items='2'")
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["i1", "i2"]
    got = stranger.iq("get", f"<pubsub xmlns='{PUBSUB}'><items node='urn:test:many'><item id='i0'/></items>"
                             f"</pubsub>", to=alice.bare)
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["i0"]
    # RSM (XEP-0059 in the <pubsub/>): a first page, the next, the last one.
    def page(rsm):
        reply = stranger.iq("get", f"<pubsub xmlns='{PUBSUB}'><items node='urn:test:many'/>"
                                   f"<set xmlns='{RSM}'>{rsm}</set></pubsub>", to=alice.bare)
        assert reply.get("type") == "result", ET.tostring(reply, "unicode")
        return [i.get("id") for i in reply.iter(q(PUBSUB, "item"))], reply.findtext(f".//{{{RSM}}}count")
    assert page("<max>2</max>") == (["i0", "i1"], "3")
    assert page("<max>2</max><after>i1</after>") == (["i2"], "3")
    assert page("<max>1</max><before/>") == (["i2"], "3")


def test_publish_errors_and_preconditions(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    payload = devicelist(1)
    assert publish(alice, OMEMO, payload, item_id="current").get("type") == "result"
    # XEP-0060 7.1.5: options that do not match the node's configuration.
    assert errors_of(publish(alice, OMEMO, payload, item_id="current", options={"access_model": "open"})) == \
        ("cancel", "conflict", "precondition-not-met")
    assert errors_of(publish(alice, OMEMO, payload, options={"no_such_option": "1"})) == \
        ("cancel", "conflict", "precondition-not-met")
    # Matching ones (booleans in either spelling) publish.
    assert publish(alice, OMEMO, payload, item_id="current",
                   options={"access_model": "presence", "persist_items": "true"}).get("type") == "result"
    # Only the owner publishes.
    assert errors_of(publish(bob, OMEMO, payload, to=alice.bare)) == ("auth", "forbidden", None)
    assert errors_of(publish(alice, "", payload)) == ("modify", "bad-request", "nodeid-required")
    assert errors_of(alice.iq("set", f"<pubsub xmlns='{PUBSUB}'><publish node='x'/></pubsub>")) == \
        ("modify", "bad-request", "item-required")
    assert errors_of(publish(alice, "x", "")) == ("modify", "bad-request", "payload-required")
    assert errors_of(publish(alice, "x", "<a xmlns='urn:a'/><b xmlns='urn:b'/>")) == \
        ("modify", "bad-request", "invalid-payload")
    big = "x" * (MAX_ITEM_BYTES + 1)
    assert errors_of(publish(alice, "x", f"<a xmlns='urn:a'>{big}</a>")) == \
        ("modify", "not-acceptable", "payload-too-big")
    # Explicit subscriptions are not offered (implicit by presence, XEP-0163).
    reply = bob.iq("set", f"<pubsub xmlns='{PUBSUB}'><subscribe node='{OMEMO}' jid='{bob.bare}'/></pubsub>",
                   to=alice.bare)
    assert errors_of(reply) == ("cancel", "feature-not-implemented", "unsupported")
    assert reply.find(f"{{{C}}}error/{{{ERRORS}}}unsupported").get("feature") == "subscribe"
    # The node limit (8 in this server's options).
    for n in range(7):
        assert publish(alice, f"urn:n{n}", payload).get("type") == "result"
    assert errors_of(publish(alice, "urn:one-too-many", payload)) == ("cancel", "not-allowed", "max-nodes-exceeded")
    # Create: an existing node is a conflict.
    assert errors_of(alice.iq("set", f"<pubsub xmlns='{PUBSUB}'><create node='{OMEMO}'/></pubsub>")) == \
        ("cancel", "conflict", None)


def test_notifications_filtered_by_caps(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    alice2 = login(server, raw_factory, "alice", resource="other")
    bob = login(server, raw_factory, "bob")      # a contact without the interest
    carol = login(server, raw_factory, "carol")  # a contact with a forged caps hash
    dave = login(server, raw_factory, "dave")    # a contact with the interest: the witness
    for contact in (bob, carol, dave):
        subscribe(contact, alice)
    announce(alice2, notify=[TUNE])
    announce(bob, notify=["urn:other"])
    # carol announces a ver computed without +notify, then answers with it:
    # the hash does not match, the answer is not trusted.
    announce(carol, forged=[DISCO, TUNE + "+notify"])
    announce(dave, notify=[TUNE])
    tune = f"<tune xmlns='{TUNE}'><artist>Yes</artist></tune>"
    assert publish(alice, TUNE, tune, item_id="t1").get("type") == "result"
    event = wait_event(dave, TUNE)
    assert event.get("type") == "headline" and event.get("from") == alice.bare
    assert event.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}item/{{{TUNE}}}tune/{{{TUNE}}}artist").text == "Yes"
    wait_event(alice2, TUNE)  # the owner's own resource with the interest
    # dave got it: bob's and carol's were handed out before (roster order);
    # a marker from alice now comes after anything they were sent.
    assert no_event(bob, alice, TUNE) == []
    assert no_event(carol, alice, TUNE) == []
    # alice's publishing resource announced no interest: nothing for it.
    assert no_event(alice, dave, TUNE) == []
    # Retract with notify.
    reply = alice.iq("set", f"<pubsub xmlns='{PUBSUB}'><retract node='{TUNE}' notify='true'><item id='t1'/>"
                            f"</retract></pubsub>")
    assert reply.get("type") == "result"
    event = wait_event(dave, TUNE)
    assert event.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}retract").get("id") == "t1"
    assert errors_of(alice.iq("set", f"<pubsub xmlns='{PUBSUB}'><retract node='{TUNE}'><item id='t1'/>"
                                     f"</retract></pubsub>")) == ("cancel", "item-not-found", None)


def module_counter(server, module, name):
    prefix = f"{module}.{server.domain}.{name}: "
    for line in server.ctl("status").stdout.splitlines():
        if line.startswith(prefix):
            return int(line[len(prefix):])
    return 0


def test_no_notification_reaches_a_contact_the_owner_blocked(server_factory, raw_factory):
    # XEP-0191 3.3: once alice blocks bob, nothing of hers reaches him. Her PEP
    # notifications are sent by the server from her bare JID (no client of hers
    # sends them, so they do not pass her outbound filter): mod_blocking drops
    # them toward bob all the same, while dave, not blocked, gets his.
    server = server_with_users(server_factory, ("alice", "bob", "dave"), modules=dict(MODULES, mod_blocking={}),
                               module_paths=module_paths())
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    dave = login(server, raw_factory, "dave")
    for contact in (bob, dave):
        subscribe(contact, alice)
        announce(contact, notify=[TUNE])
    reply = alice.iq("set", f"<block xmlns='urn:xmpp:blocking'><item jid='{bob.bare}'/></block>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    dropped = module_counter(server, "mod_blocking", "outbound_blocked")
    tune = f"<tune xmlns='{TUNE}'><artist>Yes</artist></tune>"
    assert publish(alice, TUNE, tune, item_id="t1").get("type") == "result"
    wait_event(dave, TUNE)
    # The notification for bob was taken by mod_blocking's filter, so nothing of it
    # can still be on its way to him once the counter shows it.
    until(lambda: module_counter(server, "mod_blocking", "outbound_blocked") > dropped)
    assert events(getattr(bob, "pending", []) + bob.nothing_before_sync(), TUNE) == []


def test_last_item_on_available_presence(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    subscribe(bob, alice)
    bob.close()
    tune = f"<tune xmlns='{TUNE}'><title>Roundabout</title></tune>"
    assert publish(alice, TUNE, tune, item_id="last").get("type") == "result"
    assert publish(alice, "urn:test:never", "<x xmlns='urn:test'/>",
                   options={"send_last_published_item": "never"}).get("type") == "result"
    bob = login(server, raw_factory, "bob", resource="again", presence=False)
    announce(bob, notify=[TUNE, "urn:test:never"])
    event = wait_event(bob, TUNE)
    assert event.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}item").get("id") == "last"
    # Sent later than published: a XEP-0203 <delay/> from the owner.
    delay = event.find(f"{{{DELAY}}}delay")
    assert delay is not None and delay.get("from") == alice.bare, ET.tostring(event, "unicode")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", delay.get("stamp"))
    # The owner's own new resource gets it too.
    alice3 = login(server, raw_factory, "alice", resource="third", presence=False)
    announce(alice3, notify=[TUNE])
    wait_event(alice3, TUNE)
    # A send_last_published_item=never node sent nothing: bob's tune event was
    # handed out with it; a marker after it comes after.
    assert no_event(bob, alice, "urn:test:never") == []
    # on_sub: carol, available with the interests, subscribes; once alice
    # approves, carol gets the last items of the on_sub and
    # on_sub_and_presence nodes, not of the never one.
    assert publish(alice, "urn:test:onsub", "<x xmlns='urn:test'/>", item_id="s",
                   options={"send_last_published_item": "on_sub"}).get("type") == "result"
    carol = login(server, raw_factory, "carol", presence=False)
    announce(carol, notify=[TUNE, "urn:test:onsub", "urn:test:never"])
    carol.send(f"<presence type='subscribe' to='{alice.bare}'/>")
    alice.expect(q(C, "presence"), match=lambda e: e.get("type") == "subscribe")
    alice.send(f"<presence type='subscribed' to='{carol.bare}'/>")
    got = collect_events(carol, [TUNE, "urn:test:onsub"])
    assert got["urn:test:onsub"].find(f".//{{{EVENT}}}item").get("id") == "s"
    assert no_event(carol, alice, "urn:test:never") == []


def test_whitelist_bookmarks_and_affiliations(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    subscribe(bob, alice)
    announce(bob, notify=[BOOKMARKS])
    alice2 = login(server, raw_factory, "alice", resource="two")
    announce(alice2, notify=[BOOKMARKS])
    room = "room@conference.example.org"
    conference = f"<conference xmlns='{BOOKMARKS}' name='The Room' autojoin='true'><nick>al</nick></conference>"
    xep0402 = {"persist_items": "true", "max_items": "max", "send_last_published_item": "never",
               "access_model": "whitelist"}
    assert publish(alice, BOOKMARKS, conference, item_id=room, options=xep0402).get("type") == "result"
    # XEP-0402: the owner's other resource gets the bookmark.
    event = wait_event(alice2, BOOKMARKS)
    assert event.find(f".//{{{EVENT}}}item").get("id") == room
    # A contact with the interest, not on the whitelist, gets nothing and may not read.
    assert no_event(bob, alice, BOOKMARKS) == []
    assert errors_of(get_items(bob, alice.bare, BOOKMARKS)) == ("cancel", "not-allowed", "closed-node")
    got = get_items(alice, alice.bare, BOOKMARKS)
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == [room]
    # The owner makes bob a member: then he may.
    reply = alice.iq("set", f"<pubsub xmlns='{OWNER}'><affiliations node='{BOOKMARKS}'>"
                            f"<affiliation jid='{bob.bare}' affiliation='member'/></affiliations></pubsub>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    affs = alice.iq("get", f"<pubsub xmlns='{OWNER}'><affiliations node='{BOOKMARKS}'/></pubsub>")
    assert {(a.get("jid"), a.get("affiliation")) for a in affs.iter(q(OWNER, "affiliation"))} == \
        {(alice.bare, "owner"), (bob.bare, "member")}
    assert get_items(bob, alice.bare, BOOKMARKS).get("type") == "result"
    # Outcast: forbidden.
    alice.iq("set", f"<pubsub xmlns='{OWNER}'><affiliations node='{BOOKMARKS}'>"
                    f"<affiliation jid='{bob.bare}' affiliation='outcast'/></affiliations></pubsub>")
    assert errors_of(get_items(bob, alice.bare, BOOKMARKS)) == ("auth", "forbidden", None)
    # max_affiliations (2 in this server's options): bob and two more is too many.
    reply = alice.iq("set", f"<pubsub xmlns='{OWNER}'><affiliations node='{BOOKMARKS}'>"
                            f"<affiliation jid='x@{server.domain}' affiliation='member'/>"
                            f"<affiliation jid='y@{server.domain}' affiliation='member'/></affiliations></pubsub>")
    assert errors_of(reply) == ("modify", "policy-violation", None)
    # Only the owner manages affiliations.
    assert errors_of(bob.iq("get", f"<pubsub xmlns='{OWNER}'><affiliations node='{BOOKMARKS}'/></pubsub>",
                            to=alice.bare))[1] == "forbidden"


def test_configure_purge_delete(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    alice2 = login(server, raw_factory, "alice", resource="two")
    announce(alice2, notify=["urn:test:node"])
    publish(alice, "urn:test:node", "<a xmlns='urn:a'/>", item_id="1")
    wait_event(alice2, "urn:test:node")
    form = alice.iq("get", f"<pubsub xmlns='{OWNER}'><configure node='urn:test:node'/></pubsub>")
    fields = {f.get("var"): [v.text for v in f.findall(q("jabber:x:data", "value"))]
              for f in form.iter(q("jabber:x:data", "field"))}
    assert fields["pubsub#access_model"] == ["presence"] and fields["pubsub#max_items"] == ["1"]
    assert fields["FORM_TYPE"] == ["http://jabber.org/protocol/pubsub#node_config"]
    reply = alice.iq("set", f"<pubsub xmlns='{OWNER}'><configure node='urn:test:node'>"
                            f"{options_form({'max_items': '3', 'access_model': 'open'}, 'node_config')}"
                            f"</configure></pubsub>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    bad = alice.iq("set", f"<pubsub xmlns='{OWNER}'><configure node='urn:test:node'>"
                          f"{options_form({'access_model': 'authorize'}, 'node_config')}</configure></pubsub>")
    assert errors_of(bad)[1] == "not-acceptable"
    for i in (2, 3, 4):
        publish(alice, "urn:test:node", "<a xmlns='urn:a'/>", item_id=str(i))
    got = get_items(alice, alice.bare, "urn:test:node")
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["2", "3", "4"]  # max_items 3
    for i in (2, 3, 4):
        wait_event(alice2, "urn:test:node")
    assert alice.iq("set", f"<pubsub xmlns='{OWNER}'><purge node='urn:test:node'/></pubsub>").get("type") == "result"
    purge = wait_event(alice2, "urn:test:node", lambda e: e.find(f"{{{EVENT}}}event/{{{EVENT}}}purge") is not None)
    assert purge.find(f"{{{EVENT}}}event/{{{EVENT}}}purge").get("node") == "urn:test:node"
    assert list(get_items(alice, alice.bare, "urn:test:node").iter(q(PUBSUB, "item"))) == []
    assert alice.iq("set", f"<pubsub xmlns='{OWNER}'><delete node='urn:test:node'/></pubsub>").get("type") == "result"
    wait_event(alice2, "urn:test:node", lambda e: e.find(f"{{{EVENT}}}event/{{{EVENT}}}delete") is not None)
    assert errors_of(get_items(alice, alice.bare, "urn:test:node"))[1] == "item-not-found"
    # The account's quota (max_user_bytes 20000 here): five items of 3900 bytes fit,
    # a sixth does not; replacing one by id counts the new one only.
    chunk = "<a xmlns='urn:a'>" + "q" * 3880 + "</a>"
    for i in range(5):
        assert publish(alice, "urn:test:q", chunk, item_id=str(i),
                       options={"max_items": "max"}).get("type") == "result"
    assert errors_of(publish(alice, "urn:test:q", chunk, item_id="5")) == ("modify", "policy-violation", None)
    assert publish(alice, "urn:test:q", chunk, item_id="4").get("type") == "result"
    # The account's disco#info: the pep identity and the publish-options feature.
    info = alice.iq("get", f"<query xmlns='{DISCO}'/>", to=alice.bare)
    assert ("pubsub", "pep") in {(i.get("category"), i.get("type")) for i in info.iter(q(DISCO, "identity"))}
    assert PUBSUB + "#publish-options" in {f.get("var") for f in info.iter(q(DISCO, "feature"))}


def test_caps_and_items_survive_a_reload(server_factory, raw_factory):
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    alice2 = login(server, raw_factory, "alice", resource="two", presence=False)
    announce(alice2, notify=[TUNE])
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>", item_id="before").get("type") == "result"
    wait_event(alice2, TUNE)
    reloaded = server.ctl("module", "reload", "mod_pep")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    # The new code knows alice2's verified interests without asking again.
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>", item_id="after").get("type") == "result"
    event = wait_event(alice2, TUNE)
    assert event.find(f".//{{{EVENT}}}item").get("id") == "after"


def test_every_request_served_after_eviction(server_factory, raw_factory):
    """max_cached_users 1, max_cache_bytes 1: an account's nodes leave memory
    as soon as they are idle and come back from storage for the next request."""
    modules = dict(MODULES)
    modules["mod_pep"] = dict(MODULES["mod_pep"], max_cached_users=1, max_cache_bytes=1)
    server = server_factory(modules=modules, module_paths=module_paths())
    for user in ("alice", "bob", "carol"):
        server.register(user, PASSWORD)
    clients = [login(server, raw_factory, u) for u in ("alice", "bob", "carol")]
    for n in range(3):
        for c in clients:
            assert publish(c, "urn:test:e", f"<n xmlns='urn:test'>{c.bare} {n}</n>", item_id=f"i{n}",
                           options={"access_model": "open", "max_items": "2"}).get("type") == "result"
    for reader in clients:
        for owner in clients:
            got = get_items(reader, owner.bare, "urn:test:e")
            assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["i1", "i2"], ET.tostring(got, "unicode")
            assert got.find(f".//{{urn:test}}n").text == f"{owner.bare} 1"
    # They were loaded again and again (each account once without eviction).
    status = server.ctl("status")
    loads = [int(line.split(": ")[1]) for line in status.stdout.splitlines()
             if line.startswith(f"mod_pep.{server.domain}.loads: ")]
    assert loads and loads[0] > 3, status.stdout


def test_items_survive_a_restart(server_factory, raw_factory, storage_backend):
    """Nodes and items are in the map store: on SQLite and on PostgreSQL."""
    server = start_server(server_factory, storage=storage_backend)
    alice = login(server, raw_factory, "alice")
    assert publish(alice, OMEMO, devicelist(42), item_id="current",
                   options={"access_model": "open"}).get("type") == "result"
    assert publish(alice, "urn:test:volatile", "<v xmlns='urn:test'/>",
                   options={"persist_items": "false"}).get("type") == "result"
    alice.sync()
    server.restart()
    bob = login(server, raw_factory, "bob")
    got = get_items(bob, f"alice@{server.domain}", OMEMO)
    assert [d.get("id") for d in got.iter(q(OMEMO, "device"))] == ["42"]
    # The options survived too: still open, and a matching precondition holds.
    alice = login(server, raw_factory, "alice")
    assert publish(alice, OMEMO, devicelist(42, 43), item_id="current",
                   options={"access_model": "open"}).get("type") == "result"
    # A node with persist_items=false keeps its configuration, not its items.
    assert list(get_items(alice, alice.bare, "urn:test:volatile").iter(q(PUBSUB, "item"))) == []


def test_rows_of_the_old_tables_are_moved_into_the_map_store(server_factory, raw_factory):
    """A server whose mod_pep kept its nodes in its own SQLite tables (the
    schema before the map store, which the module still declares) serves them
    after the upgrade: moved at the first start (items in publication order),
    the old rows deleted."""
    server = start_server(server_factory)
    server.stop()
    db = sqlite3.connect(server.data_dir / "parley.db")
    recreate_old_tables(db, "mod_pep_nodes", "mod_pep_items")
    with db:
        db.execute("INSERT INTO mod_pep_nodes (host, user, node, config) VALUES (?, ?, ?, ?)",
                   (server.domain, "alice", "urn:test:old", "v1\naccess open\nmax_items 5\n"))
        db.executemany("INSERT INTO mod_pep_items (host, user, node, item_id, seq, payload) VALUES (?, ?, ?, ?, ?, ?)",
                       [(server.domain, "alice", "urn:test:old", f"o{n}", 1000 - n, f"<o xmlns='urn:test'>{n}</o>")
                        for n in range(3)])
    db.close()
    server.start()
    bob = login(server, raw_factory, "bob")
    got = get_items(bob, f"alice@{server.domain}", "urn:test:old")
    assert [i.get("id") for i in got.iter(q(PUBSUB, "item"))] == ["o2", "o1", "o0"], ET.tostring(got, "unicode")
    # Moved, then dropped.
    assert old_tables_left(server.data_dir / "parley.db", ("mod_pep_nodes", "mod_pep_items")) == {}


def test_slixmpp_avatar_through_pep_and_caps(server_factory):
    """Two slixmpp resources of one account with xep_0115 caps: the one whose
    xep_0084 plugin registered the metadata interest gets the metadata event
    when the other publishes data and metadata, and fetches the data."""
    server = start_server(server_factory)
    runner = SlixRunner()
    try:
        plugins = ["xep_0060", "xep_0163", "xep_0115", "xep_0084"]
        a = runner.client(f"alice@{server.domain}/a", PASSWORD)
        b = runner.client(f"alice@{server.domain}/b", PASSWORD)
        for c in (a, b):
            for p in plugins:
                c.xmpp.register_plugin(p)
        # b's caps differ from a's: the server asks b itself, on any loop.
        b.xmpp["xep_0030"].add_feature("urn:test:slix-b")
        got = runner.loop.create_future()
        b.xmpp.add_event_handler("avatar_metadata_publish",
                                 lambda msg: got.done() or got.set_result(msg))
        answered = runner.loop.create_future()

        def watch_out(stanza):
            # b answering the server's disco#info for its caps node
            if stanza.name == "iq" and stanza["type"] == "result" and \
                    stanza.xml.find(f"{{{DISCO}}}query") is not None and not answered.done():
                answered.set_result(True)
            return stanza
        b.xmpp.add_filter("out", watch_out)

        async def scenario():
            assert await a.connect(server.c2s_port) is True
            assert await b.connect(server.c2s_port) is True
            await asyncio_wait(answered)
            await b.sync()  # the server processed b's answer: its caps are verified
            data = b"\x89PNG fake avatar bytes"
            avatar_id = a.xmpp["xep_0084"].generate_id(data)
            await a.xmpp["xep_0084"].publish_avatar(data)
            await a.xmpp["xep_0084"].publish_avatar_metadata(
                [{"id": avatar_id, "type": "image/png", "bytes": len(data)}])
            msg = await asyncio_wait(got)
            info = msg["pubsub_event"]["items"]["item"]["avatar_metadata"]["info"]
            assert info["id"] == avatar_id
            fetched = await b.xmpp["xep_0084"].retrieve_avatar(a.xmpp.boundjid.bare, avatar_id)
            item = fetched["pubsub"]["items"]["item"]
            assert base64.b64decode(item.xml[0].text) == data
        runner.run(scenario(), timeout=60)
    finally:
        runner.close()


def disco_nodes(client, owner):
    reply = client.iq("get", f"<query xmlns='{ITEMS}'/>", to=owner)
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return {(i.get("jid"), i.get("node")) for i in reply.iter(q(ITEMS, "item"))}


VCARD_UPDATE = "vcard-temp:x:update"


def photo_of(presence):
    """The XEP-0153 <photo/> of a presence: its text ('' when empty), or None
    without one; a presence has at most one such <x/>."""
    xs = presence.findall(q(VCARD_UPDATE, "x"))
    assert len(xs) <= 1, ET.tostring(presence, "unicode")
    photo = xs[0].find(q(VCARD_UPDATE, "photo")) if xs else None
    return None if photo is None else (photo.text or "")


def presence_with(client, sender, status):
    return client.expect(q(C, "presence"), match=lambda e: e.get("from") == sender.jid and
                         e.findtext(q(C, "status")) == status)


def vcard_photo(client, owner_bare):
    """(TYPE, decoded BINVAL) of an account's vCard PHOTO, or None."""
    reply = client.iq("get", "<vCard xmlns='vcard-temp'/>", to=owner_bare)
    photo = reply.find("{vcard-temp}vCard/{vcard-temp}PHOTO")
    if photo is None:
        return None
    return photo.findtext("{vcard-temp}TYPE"), base64.b64decode(photo.findtext("{vcard-temp}BINVAL"))


def wait_vcard_photo(client, owner_bare, want):
    """The PEP to vCard conversion runs after the publish's answer (two iqs
    of the server's): read the vCard again until it shows `want`."""
    deadline = time.monotonic() + 10
    while (got := vcard_photo(client, owner_bare)) != want:
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def test_avatar_hash_in_presence(server_factory, raw_factory):
    """XEP-0153's hash in presence from a XEP-0084 avatar published through
    PEP, or from the vCard's photo without one; known at bind (a new
    session's first presence has it) and after a change; a client's own
    <photo/> is kept."""
    modules = dict(MODULES, mod_vcard={})
    server = server_factory(modules=modules, module_paths=module_paths())
    for user in ("alice", "bob", "carol"):
        server.register(user, PASSWORD)
    alice, bob, carol = (login(server, raw_factory, u) for u in ("alice", "bob", "carol"))
    subscribe(bob, alice)
    subscribe(bob, carol)
    # No avatar at all: an empty <photo/> says so (XEP-0153 §4.2).
    alice.send("<presence><status>none</status></presence>")
    assert photo_of(presence_with(bob, alice, "none")) == ""
    image = b"\x89PNG not really an image"
    sha = hashlib.sha1(image).hexdigest()
    assert publish(alice, "urn:xmpp:avatar:data", f"<data xmlns='urn:xmpp:avatar:data'>"
                   f"{base64.b64encode(image).decode()}</data>", item_id=sha).get("type") == "result"
    assert publish(alice, "urn:xmpp:avatar:metadata", f"<metadata xmlns='urn:xmpp:avatar:metadata'><info "
                   f"bytes='{len(image)}' id='{sha}' type='image/png'/></metadata>", item_id=sha).get("type") == "result"
    alice.send("<presence><status>pep</status></presence>")
    assert photo_of(presence_with(bob, alice, "pep")) == sha
    # XEP-0398: announced on the account, and the avatar is the vCard's photo.
    info = alice.iq("get", f"<query xmlns='{DISCO}'/>", to=alice.bare)
    assert "urn:xmpp:pep-vcard-conversion:0" in {f.get("var") for f in info.iter(q(DISCO, "feature"))}
    wait_vcard_photo(bob, alice.bare, ("image/png", image))
    # A client's own <photo/> stays; an <x/> without one gets it.
    alice.send(f"<presence><status>own</status><x xmlns='{VCARD_UPDATE}'><photo>abc</photo></x></presence>")
    assert photo_of(presence_with(bob, alice, "own")) == "abc"
    alice.send(f"<presence><status>bare x</status><x xmlns='{VCARD_UPDATE}'/></presence>")
    assert photo_of(presence_with(bob, alice, "bare x")) == sha
    # A new session knows it from its first presence (asked at bind).
    second = login(server, raw_factory, "alice", resource="two", presence=False)
    second.send("<presence><status>second</status></presence>")
    assert photo_of(presence_with(bob, second, "second")) == sha
    # XEP-0153 alone: carol's vCard photo (base64 broken over lines, as vCards have it).
    picture = bytes(range(256)) * 3
    sha_v = hashlib.sha1(picture).hexdigest()
    b64 = base64.encodebytes(picture).decode()
    assert carol.iq("set", f"<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>{b64}</BINVAL>"
                           "</PHOTO></vCard>").get("type") == "result"
    carol.send("<presence><status>vcard</status></presence>")
    assert photo_of(presence_with(bob, carol, "vcard")) == sha_v
    other = login(server, raw_factory, "carol", resource="two", presence=False)
    other.send("<presence><status>stored</status></presence>")
    assert photo_of(presence_with(bob, other, "stored")) == sha_v
    # A published avatar disabled (an empty <metadata/>): "no avatar".
    assert publish(alice, "urn:xmpp:avatar:metadata", "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
                   item_id="off").get("type") == "result"
    alice.send("<presence><status>off</status></presence>")
    assert photo_of(presence_with(bob, alice, "off")) == ""
    wait_vcard_photo(bob, alice.bare, None)


def test_account_disco_items_lists_nodes_by_access(server_factory, raw_factory):
    """XEP-0060 5.2 / XEP-0163: the account's disco#items has its nodes, all
    of them for its owner (with its resources), for others those their access
    models admit."""
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    assert publish(alice, OMEMO, devicelist(1), options={"access_model": "open"}).get("type") == "result"
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>").get("type") == "result"  # presence
    assert publish(alice, "urn:test:secret", "<s xmlns='urn:test'/>",
                   options={"access_model": "whitelist"}).get("type") == "result"
    mine = disco_nodes(alice, alice.bare)
    assert {(alice.bare, OMEMO), (alice.bare, TUNE), (alice.bare, "urn:test:secret")} <= mine
    assert (alice.jid, None) in mine  # the owner's resources stay listed
    assert disco_nodes(bob, alice.bare) == {(alice.bare, OMEMO)}
    subscribe(bob, alice)  # and her available resource, as to any contact her presence goes to
    assert disco_nodes(bob, alice.bare) == {(alice.bare, OMEMO), (alice.bare, TUNE), (alice.jid, None)}
    # An account without nodes, asked by a stranger: empty, as before.
    assert disco_nodes(alice, f"dave@{server.domain}") == set()


def node_info(client, owner, node):
    return client.iq("get", f"<query xmlns='{DISCO}' node='{node}'/>", to=owner)


def node_items(client, owner, node):
    return client.iq("get", f"<query xmlns='{ITEMS}' node='{node}'/>", to=owner)


def meta_data(reply):
    form = reply.find(f"{{{DISCO}}}query/{{jabber:x:data}}x")
    return {f.get("var"): [v.text or "" for v in f.findall("{jabber:x:data}value")]
            for f in form.findall("{jabber:x:data}field")}


def test_node_disco_info_and_items_by_access(server_factory, raw_factory):
    """XEP-0060 5.3-5.5 on a PEP service (the account's bare JID): a node's
    disco#info has the pubsub/leaf identity, the pubsub feature and the
    meta-data form; its disco#items one item per published item, named by its
    id. XEP-0030 section 8 decides who gets an answer at all: disco#info only the
    owner and those the account's presence goes to (anyone else
    service-unavailable, as for an account that does not exist); disco#items
    anyone, a node hidden from the requester (or missing) being an empty result,
    as for an account that does not exist, and item-not-found to the owner."""
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    bob = login(server, raw_factory, "bob")
    assert publish(alice, OMEMO, devicelist(1), item_id="current",
                   options={"access_model": "open"}).get("type") == "result"
    assert publish(alice, TUNE, f"<tune xmlns='{TUNE}'/>", item_id="t1").get("type") == "result"  # presence
    info = node_info(alice, alice.bare, TUNE)
    assert info.get("type") == "result" and info.get("from") == alice.bare, ET.tostring(info, "unicode")
    query = info.find(q(DISCO, "query"))
    assert query.get("node") == TUNE
    assert [(i.get("category"), i.get("type")) for i in query.findall(q(DISCO, "identity"))] == [("pubsub", "leaf")]
    assert PUBSUB in {f.get("var") for f in query.findall(q(DISCO, "feature"))}
    meta = meta_data(info)
    assert meta["FORM_TYPE"] == [PUBSUB + "#meta-data"]
    assert meta["pubsub#access_model"] == ["presence"] and meta["pubsub#owner"] == [alice.bare]
    items = node_items(alice, alice.bare, TUNE)
    assert items.get("type") == "result", ET.tostring(items, "unicode")
    assert items.find(q(ITEMS, "query")).get("node") == TUNE
    assert [(i.get("jid"), i.get("name")) for i in items.iter(q(ITEMS, "item"))] == [(alice.bare, "t1")]
    # A stranger: no disco#info; the open node's items, the presence node's none.
    for owner, node in ((alice.bare, OMEMO), (alice.bare, TUNE), (f"nobody@{server.domain}", TUNE)):
        assert errors_of(node_info(bob, owner, node)) == ("cancel", "service-unavailable", None)
    assert [i.get("name") for i in node_items(bob, alice.bare, OMEMO).iter(q(ITEMS, "item"))] == ["current"]
    for owner in (alice.bare, f"nobody@{server.domain}"):
        empty = node_items(bob, owner, TUNE)
        assert empty.get("type") == "result" and empty.get("from") == owner, ET.tostring(empty, "unicode")
        assert empty.find(q(ITEMS, "query")).get("node") == TUNE and list(empty.find(q(ITEMS, "query"))) == []
    # A contact with a subscription: both nodes, and item-not-found for a missing one.
    subscribe(bob, alice)
    assert meta_data(node_info(bob, alice.bare, OMEMO))["pubsub#access_model"] == ["open"]
    assert node_info(bob, alice.bare, TUNE).get("type") == "result"
    assert [i.get("name") for i in node_items(bob, alice.bare, TUNE).iter(q(ITEMS, "item"))] == ["t1"]
    assert errors_of(node_info(bob, alice.bare, "urn:test:none")) == ("cancel", "item-not-found", None)
    # The owner: item-not-found for a node that is not there.
    assert errors_of(node_info(alice, alice.bare, "urn:test:none")) == ("cancel", "item-not-found", None)
    assert errors_of(node_items(alice, alice.bare, "urn:test:none")) == ("cancel", "item-not-found", None)


def test_server_caps_in_stream_features(server_factory, raw_factory):
    """XEP-0115 6.3: the stream features carry the server's <c/>, whose ver is
    the hash of the server's disco#info."""
    server = start_server(server_factory)
    client = raw_factory(server.c2s_port)
    features = client.start()
    features = client.starttls()
    c = features.find(q(CAPS, "c"))
    assert c is not None, ET.tostring(features, "unicode")
    assert c.get("hash") == "sha-1" and c.get("node")
    client.auth_plain("alice", PASSWORD)
    features = client.start()
    assert features.find(q(CAPS, "c")).get("ver") == c.get("ver")
    client.bind("caps")
    info = client.iq("get", f"<query xmlns='{DISCO}'/>", to=server.domain)
    identities = [(i.get("category"), i.get("type"), i.get("{http://www.w3.org/XML/1998/namespace}lang") or "",
                   i.get("name") or "") for i in info.iter(q(DISCO, "identity"))]
    features_ = [f.get("var") for f in info.iter(q(DISCO, "feature"))]
    assert info.find(f"{{{DISCO}}}query/{{jabber:x:data}}x") is None  # no forms to hash
    assert c.get("ver") == caps_ver(identities, features_)


def private_bookmarks(client):
    reply = client.iq("get", f"<query xmlns='{PRIVATE}'><storage xmlns='{LEGACY}'/></query>")
    assert reply.get("type") == "result", ET.tostring(reply, "unicode")
    return {c.get("jid"): c for c in reply.iter(q(LEGACY, "conference"))}


def until(fn, timeout=10):
    """fn() until it is truthy (the other direction is written after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_bookmarks_synced_between_pep_and_private_storage(server_factory, raw_factory):
    """XEP-0411: a XEP-0402 publish shows in XEP-0048 private storage, and a
    private storage set becomes the node's items (with notifications)."""
    server = start_server(server_factory)
    alice = login(server, raw_factory, "alice")
    watcher = login(server, raw_factory, "alice", resource="w", presence=False)
    announce(watcher, notify=[BOOKMARKS])
    room = f"room@conference.{server.domain}"
    conference = (f"<conference xmlns='{BOOKMARKS}' name='The Room' autojoin='true'><nick>al</nick>"
                  f"<password>pw</password></conference>")
    options = {"persist_items": "true", "max_items": "max", "send_last_published_item": "never",
               "access_model": "whitelist"}
    assert publish(alice, BOOKMARKS, conference, item_id=room, options=options).get("type") == "result"
    wait_event(watcher, BOOKMARKS)
    legacy = until(lambda: private_bookmarks(alice))
    assert list(legacy) == [room]
    c = legacy[room]
    assert (c.get("name"), c.get("autojoin"), c.findtext(q(LEGACY, "nick")), c.findtext(q(LEGACY, "password"))) == \
        ("The Room", "true", "al", "pw")
    # The other way: a XEP-0048 client stores two rooms and drops the first.
    other, third = f"other@conference.{server.domain}", f"third@conference.{server.domain}"
    stored = alice.iq("set", f"<query xmlns='{PRIVATE}'><storage xmlns='{LEGACY}'>"
                             f"<conference jid='{other}' name='Other' autojoin='1'><nick>a2</nick></conference>"
                             f"<conference jid='{third}' autojoin='false'/></storage></query>")
    assert stored.get("type") == "result", ET.tostring(stored, "unicode")

    def pep_items():
        got = get_items(alice, alice.bare, BOOKMARKS)
        ids = {i.get("id"): i for i in got.iter(q(PUBSUB, "item"))}
        return ids if set(ids) == {other, third} else None
    items = until(pep_items)
    conf = items[other].find(q(BOOKMARKS, "conference"))
    assert (conf.get("name"), conf.get("autojoin"), conf.findtext(q(BOOKMARKS, "nick"))) == ("Other", "true", "a2")
    assert items[third].find(q(BOOKMARKS, "conference")).get("autojoin") is None
    # The watching resource heard of the retraction and the new rooms.
    got = collect_events(watcher, [BOOKMARKS])
    seen = [got[BOOKMARKS]]
    while True:
        retracts = [r.get("id") for e in seen for r in e.iter(q(EVENT, "retract"))]
        published = [i.get("id") for e in seen for i in e.iter(q(EVENT, "item"))]
        if room in retracts and {other, third} <= set(published):
            break
        seen.append(wait_event(watcher, BOOKMARKS))
    # Private storage still says what the client stored (no echo rewrote it).
    assert set(private_bookmarks(alice)) == {other, third}


async def asyncio_wait(future, timeout=20):
    import asyncio
    return await asyncio.wait_for(future, timeout)
