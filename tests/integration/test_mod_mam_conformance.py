"""mod_mam against XEP-0313 (urn:xmpp:mam:2, #extended), XEP-0359 and XEP-0059, one
requirement (or a few of one section) per test, asserting the exact XML the raw client
gets. The audit table in docs/modules/mod_mam.md names these tests."""

import xml.etree.ElementTree as ET

from conftest import PASSWORD
from rawxmpp import NS_CLIENT, q, stanza_error_condition
from test_mod_mam import (IQ, archived_bodies, MESSAGE, NS_DATA, NS_DELAY, NS_DISCO_INFO, NS_FORWARD, NS_MAM, NS_MAM_EXT, NS_RSM,
                          NS_SID, archived, bare, bodies, fill, fin_of, form, login, mam_server, query, rsm,
                          send_and_receive, stanza_ids)
from component_client import RawComponent
from muc_support import create, join
from parley_harness import free_port
from test_modules import module_dir

NS_CARBONS = "urn:xmpp:carbons:2"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"


def error_reply(client, fields="", set_="", to=None):
    """(type, condition) of the error a query gets; no result message came before it."""
    results, reply = query(client, fields, set_, to=to, expect_error=True)
    assert results == []
    return stanza_error_condition(reply)


def iq_error(client, type_, child, to=None):
    reply = client.iq(type_, child, to=to)
    assert reply.get("type") == "error", ET.tostring(reply, "unicode")
    return stanza_error_condition(reply)


# -- section 7: determining support -------------------------------------------------

def test_account_bare_jid_advertises_mam_extended_and_sid(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    bob = login(server, raw_factory, "bob", "b")
    for to in (bare(bob), None):  # to the bare JID, and without 'to' (the account itself)
        reply = bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=to or bare(bob))
        assert reply.get("type") == "result"
        assert reply.get("from") in (None, bare(bob))
        features = {f.get("var") for f in reply.iter(q(NS_DISCO_INFO, "feature"))}
        assert {NS_MAM, NS_MAM_EXT, NS_SID} <= features


# -- section 4.1: the form and its fields ----------------------------------------------

def test_opaque_ids_that_are_not_in_the_archive_are_item_not_found(server_factory, tmp_path, raw_factory):
    """XEP-0313 4.1.3 and 6.2: ids are opaque strings to the client; any UID named in before-id,
    after-id or ids that is not in the archive is item-not-found, whatever it looks like
    (it was bad-request for an id that was not a number)."""
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    ids = fill(alice, bob, 2)
    uuid = "5f3dbc5e-e1d3-4077-a492-693f3769c7ad"
    assert error_reply(bob, form(after_id=uuid)) == ("cancel", "item-not-found")
    assert error_reply(bob, form(before_id="x1")) == ("cancel", "item-not-found")
    assert error_reply(bob, form(after_id="0")) == ("cancel", "item-not-found")
    assert error_reply(bob, form(ids=[ids[0], uuid])) == ("cancel", "item-not-found")
    assert error_reply(bob, form(ids=["-2"])) == ("cancel", "item-not-found")
    assert error_reply(bob, set_=rsm(3, after=uuid)) == ("cancel", "item-not-found")
    assert error_reply(bob, set_=rsm(3, before=uuid)) == ("cancel", "item-not-found")
    # Another user's id is not in this archive either.
    assert archived_bodies(alice, ["m1", "m2"], timeout=30) == ["m1", "m2"]
    alice_ids = [archived(r)[0] for r in query(alice)[0]]
    assert alice_ids and error_reply(bob, form(ids=[alice_ids[0]])) == ("cancel", "item-not-found")
    # The ids that are there are found (single-item retrieval, #extended).
    results, reply = query(bob, form(ids=[ids[1]]))
    assert [archived(r)[0] for r in results] == [ids[1]]
    assert fin_of(reply)[0].get("complete") == "true"


def test_form_errors_and_their_types(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    bob = login(server, raw_factory, "bob", "b")
    # Section 4.1: FORM_TYPE must be urn:xmpp:mam:2.
    wrong = (f"<x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
             f"<value>urn:xmpp:mam:1</value></field></x>")
    assert error_reply(bob, wrong) == ("modify", "bad-request")
    # A form that is not submitted.
    assert error_reply(bob, form().replace("type='submit'", "type='form'")) == ("modify", "bad-request")
    # Section 4.1.5: an unknown field (here include-groupchat, not advertised).
    assert error_reply(bob, form(include_groupchat="true")) == ("cancel", "feature-not-implemented")
    # A malformed date (XEP-0082).
    assert error_reply(bob, form(start="2010-06-07")) == ("modify", "bad-request")
    assert error_reply(bob, form(end="2010-06-07T25:00:00Z")) == ("modify", "bad-request")
    # A form without FORM_TYPE is taken (XEP-0068 asks it of the client; nothing to gain
    # from refusing it).
    no_form_type = f"<x xmlns='{NS_DATA}' type='submit'><field var='start'><value>2010-06-07T00:00:00Z</value></field></x>"
    results, reply = query(bob, no_form_type)
    assert reply.get("type") == "result" and results == []


# -- section 4.2: query results ----------------------------------------------------------

def test_result_messages_and_fin_exact_shape(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    bob2 = login(server, raw_factory, "bob", "b2")  # a second resource queries
    ids = fill(alice, bob, 2)
    results, reply = query(bob2, set_=rsm(10), queryid="f27", to=bare(bob2))
    assert len(results) == 2
    for r, id_ in zip(results, ids):
        # From the archive (the account's bare JID), to the querying resource.
        assert r.get("from") == bare(bob) and r.get("to") == bob2.jid
        result = r.find(q(NS_MAM, "result"))
        assert result.get("queryid") == "f27" and result.get("id") == id_
        fwd = result.find(q(NS_FORWARD, "forwarded"))
        assert [c.tag for c in fwd] == [q(NS_DELAY, "delay"), MESSAGE]
        stamp = fwd.find(q(NS_DELAY, "delay")).get("stamp")
        assert len(stamp) >= 20 and stamp[10] == "T" and stamp.endswith("Z")
        original = fwd.find(MESSAGE)
        assert original.get("from") == alice.jid and original.get("to") == bob.jid
        # The archived copy is what was routed, without the archive's own stanza id.
        assert stanza_ids(original) == []
    assert reply.get("type") == "result"
    fin = reply.find(q(NS_MAM, "fin"))
    assert fin is not None and fin.get("complete") == "true"
    s = fin.find(q(NS_RSM, "set"))
    assert s.find(q(NS_RSM, "first")).get("index") == "0"
    assert (s.findtext(q(NS_RSM, "first")), s.findtext(q(NS_RSM, "last")), s.findtext(q(NS_RSM, "count"))) == \
        (ids[0], ids[1], "2")
    # No queryid asked: none in the results.
    stanza_id = bob.new_id()
    bob.send(f"<iq type='set' id='{stanza_id}'><query xmlns='{NS_MAM}'/></iq>")
    got = []
    while True:
        e = bob.next_element()
        if e.tag == IQ and e.get("id") == stanza_id:
            break
        if e.tag == MESSAGE and e.find(q(NS_MAM, "result")) is not None:
            got.append(e)
    assert len(got) == 2 and all(m.find(q(NS_MAM, "result")).get("queryid") is None for m in got)


def test_empty_result_set_and_count_only(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    # Empty archive: complete, a count of 0, no first/last (XEP-0059 2.6).
    results, reply = query(bob)
    fin = reply.find(q(NS_MAM, "fin"))
    s = fin.find(q(NS_RSM, "set"))
    assert results == [] and fin.get("complete") == "true"
    assert s.find(q(NS_RSM, "first")) is None and s.find(q(NS_RSM, "last")) is None
    assert s.findtext(q(NS_RSM, "count")) == "0"
    fill(alice, bob, 3)
    # <max>0</max>: the count only (XEP-0059 2.7); not complete, the set has more.
    results, reply = query(bob, set_=rsm(0))
    fin = reply.find(q(NS_MAM, "fin"))
    s = fin.find(q(NS_RSM, "set"))
    assert results == [] and fin.get("complete") is None
    assert s.find(q(NS_RSM, "first")) is None and s.findtext(q(NS_RSM, "count")) == "3"


def test_flipped_page_first_index_is_the_position_of_first(server_factory, tmp_path, raw_factory):
    """XEP-0059: <first index/> is the position of the page's first item in the result set;
    a flipped page (XEP-0313 4.3.4) sends its newest first, so <first/> is that one and
    its index the page's last position (it was the position of the oldest)."""
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    ids = fill(alice, bob, 7)
    results, reply = query(bob, set_=rsm(3, after=ids[0]), flip=True)
    assert bodies(results) == ["m4", "m3", "m2"]
    s = reply.find(q(NS_MAM, "fin")).find(q(NS_RSM, "set"))
    assert s.findtext(q(NS_RSM, "first")) == ids[3] and s.findtext(q(NS_RSM, "last")) == ids[1]
    assert s.find(q(NS_RSM, "first")).get("index") == "3"
    results, reply = query(bob, set_=rsm(3, before=""), flip=True)
    s = reply.find(q(NS_MAM, "fin")).find(q(NS_RSM, "set"))
    assert s.findtext(q(NS_RSM, "first")) == ids[6] and s.find(q(NS_RSM, "first")).get("index") == "6"
    # Unflipped, the same page starts at its oldest.
    results, reply = query(bob, set_=rsm(3, before=""))
    s = reply.find(q(NS_MAM, "fin")).find(q(NS_RSM, "set"))
    assert s.findtext(q(NS_RSM, "first")) == ids[4] and s.find(q(NS_RSM, "first")).get("index") == "4"


def test_with_own_bare_jid_matches_only_messages_to_oneself(server_factory, tmp_path, raw_factory):
    """XEP-0313 4.1.1: with = the account's JID returns only what the user sent to itself."""
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    bob2 = login(server, raw_factory, "bob", "b2")
    fill(alice, bob, 2)
    bob.send(f"<message to='{bob2.jid}' type='chat'><body>note to self</body></message>")
    bob2.expect_message("note to self")
    results, _ = query(bob, form(with_=bare(bob)))
    assert bodies(results) == ["note to self"]
    results, _ = query(bob)
    assert len(results) == 3  # archived once, not once per side


# -- sections 4.1 and 8.1: access -------------------------------------------------------

def test_another_users_archive_is_forbidden_for_every_request(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    fill(alice, bob, 1)
    assert error_reply(alice, to=bare(bob)) == ("auth", "forbidden")
    assert iq_error(alice, "get", f"<query xmlns='{NS_MAM}'/>", to=bare(bob)) == ("auth", "forbidden")
    assert iq_error(alice, "get", f"<metadata xmlns='{NS_MAM}'/>", to=bare(bob)) == ("auth", "forbidden")
    assert iq_error(alice, "get", f"<prefs xmlns='{NS_MAM}'/>", to=bare(bob)) == ("auth", "forbidden")
    assert iq_error(alice, "set", f"<prefs xmlns='{NS_MAM}' default='never'/>", to=bare(bob)) == ("auth", "forbidden")


# -- XEP-0359 and section 3.4: stanza ids ----------------------------------------------

def carbons_mam_server(server_factory, tmp_path):
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_offline": {}, "mod_mam": {}, "mod_carbons": {},
               "mod_test_stream": {}}
    server = server_factory(module_paths=[module_dir(tmp_path, "mod_test_stream")], modules=modules, workers=2)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    return server


def test_stanza_id_claiming_the_sender_or_a_variant_of_the_recipient_is_removed(server_factory, tmp_path,
                                                                                 raw_factory):
    """XEP-0359 business rule 3 and section 4: the server makes the ids of both archives a
    message goes to, so a client's <stanza-id by=its own bare JID/> must not reach its
    other clients in the carbon, nor the recipient; and a 'by' that names the recipient
    once prepared (case) is as forged as the exact one. Both were passed on."""
    server = carbons_mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    alice2 = login(server, raw_factory, "alice", "a2")
    assert alice2.iq("set", f"<enable xmlns='{NS_CARBONS}'/>").get("type") == "result"
    bob = login(server, raw_factory, "bob", "b")
    shouting = bare(bob).upper()
    forged = (f"<stanza-id xmlns='{NS_SID}' by='{bare(alice)}' id='forged-sender'/>"
              f"<stanza-id xmlns='{NS_SID}' by='{shouting}' id='forged-case'/>"
              f"<stanza-id xmlns='{NS_SID}' by='muc.example' id='other'/>")
    got = send_and_receive(alice, bob, "spoof", extra=forged)
    ids = stanza_ids(got)
    assert ("muc.example", "other") in ids
    assert [by for by, _ in ids if by.lower() in (bare(alice), bare(bob))] == [bare(bob)]
    assert all(i not in ("forged-sender", "forged-case") for _, i in ids)
    # The sent carbon on alice's other resource carries no forged id of hers.
    carbon = alice2.expect(MESSAGE, match=lambda e: e.find(q(NS_CARBONS, "sent")) is not None)
    copy = carbon.find(q(NS_CARBONS, "sent")).find(q(NS_FORWARD, "forwarded")).find(MESSAGE)
    assert copy.findtext(q(NS_CLIENT, "body")) == "spoof"
    assert all(i not in ("forged-sender", "forged-case") for _, i in stanza_ids(copy))
    # Nor does the copy in either archive.
    for client in (alice, bob):
        assert archived_bodies(client, ["spoof"], timeout=30) == ["spoof"]
        results, _ = query(client)
        assert all(i not in ("forged-sender", "forged-case") for _, i in stanza_ids(archived(results[0])[1]))


def test_stanza_id_claiming_a_local_user_is_removed_from_a_muc_private_message(server_factory, tmp_path,
                                                                               raw_factory):
    """A private message goes through the room to the occupant: at the sender's
    STANZA_IN its 'to' is the room, so a <stanza-id by=the recipient/> the sender put in
    was kept, and at the recipient it passed for this server's own id (a message routed
    again): delivered with the forged id, and not archived. The server makes the ids of
    every local account's archive, so a client's claim for any of them goes."""
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}, "mod_mam": {},
               "mod_muc": {}}
    server = server_factory(modules=modules, workers=2)
    for user in ("carol", "bob"):
        server.register(user, PASSWORD)
    carol = login(server, raw_factory, "carol", "c")
    bob = login(server, raw_factory, "bob", "b")
    room = f"pm-room@conference.{server.domain}"
    create(carol, room, "carol")
    join(bob, room, "bobnick")
    carol.send(f"<message to='{room}/bobnick' type='chat' id='pm1'><body>psst</body>"
               f"<x xmlns='{NS_MUC_USER}'/><stanza-id xmlns='{NS_SID}' by='{bare(bob)}' id='forged-pm'/></message>")
    got = bob.expect(MESSAGE, match=lambda e: e.findtext(q(NS_CLIENT, "body")) == "psst")
    ids = stanza_ids(got)
    assert len(ids) == 1 and ids[0][0] == bare(bob) and ids[0][1] != "forged-pm", ids
    results, _ = query(bob)
    assert [archived(r)[0] for r in results] == [ids[0][1]] and bodies(results) == ["psst"]


def test_sent_carbon_carries_the_senders_archive_id_and_the_recipient_does_not(server_factory, tmp_path,
                                                                               raw_factory):
    """Section 3.4: no <stanza-id/> of the sender's archive on what the contact gets (MUST
    NOT), and the sender's other clients SHOULD find it in the carbon of what it sent
    (there was none). The preferences are read by the first message; from then on the
    decision is made at once."""
    server = carbons_mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    alice2 = login(server, raw_factory, "alice", "a2")
    assert alice2.iq("set", f"<enable xmlns='{NS_CARBONS}'/>").get("type") == "result"
    bob = login(server, raw_factory, "bob", "b")
    send_and_receive(alice, bob, "warm up")
    assert archived_bodies(alice, ["warm up"], timeout=30) == ["warm up"]
    got = send_and_receive(alice, bob, "with id")
    assert [by for by, _ in stanza_ids(got)] == [bare(bob)]
    carbon = alice2.expect(MESSAGE, match=lambda e: e.find(q(NS_CARBONS, "sent")) is not None and
                           e.find(q(NS_CARBONS, "sent")).find(q(NS_FORWARD, "forwarded")).find(MESSAGE)
                           .findtext(q(NS_CLIENT, "body")) == "with id")
    copy = carbon.find(q(NS_CARBONS, "sent")).find(q(NS_FORWARD, "forwarded")).find(MESSAGE)
    ids = stanza_ids(copy)
    assert len(ids) == 1 and ids[0][0] == bare(alice), ids
    results, _ = query(alice)
    assert [(archived(r)[0], bodies([r])[0]) for r in results][-1] == (ids[0][1], "with id")
    assert stanza_ids(archived(results[-1])[1]) == []  # the archived copy: without it


def test_stanza_id_claiming_the_recipient_from_a_component_is_checked_against_the_archive(server_factory, tmp_path,
                                                                                         raw_factory):
    """A stanza from a component never passes a client's STANZA_IN: a <stanza-id by=the
    recipient/> on it passed for this server's own (a message routed again) and reached
    the user as the archive's id, while the message was not archived. Now a claim is
    believed only if the archive holds that id for that same message."""
    port = free_port()
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_offline": {}, "mod_mam": {}}
    server = server_factory(modules=modules, workers=2,
                            extra_listeners=[{"port": port, "ip": "127.0.0.1", "module": "component",
                                              "hosts": {"gw.localhost": {"password": "gw-secret"}}}])
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    real = fill(alice, bob, 1)[0]
    gw = RawComponent(port, "gw.localhost").connect_as("gw-secret")
    for n, claimed in enumerate(("forged-gw", "12345", real)):  # not an id; no such id; another message's
        body = f"via gateway {n}"
        gw.send(f"<message from='someone@gw.localhost/x' to='{bob.jid}' type='chat' id='gw{n}'><body>{body}</body>"
                f"<stanza-id xmlns='{NS_SID}' by='{bare(bob)}' id='{claimed}'/></message>")
        got = bob.expect_message(body)
        ids = stanza_ids(got)
        assert len(ids) == 1 and ids[0][0] == bare(bob) and ids[0][1] != claimed, ids
        results, _ = query(bob, form(ids=[ids[0][1]]))
        assert bodies(results) == [body]
    assert bodies(query(bob)[0]) == ["m1", "via gateway 0", "via gateway 1", "via gateway 2"]
    gw.close(timeout=2)


def test_origin_id_is_kept(server_factory, tmp_path, raw_factory):
    """XEP-0359 section 3.2: a server that adds a stanza-id MUST preserve the origin-id."""
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    got = send_and_receive(alice, bob, "origin", extra=f"<origin-id xmlns='{NS_SID}' id='de305d54'/>")
    assert got.find(q(NS_SID, "origin-id")).get("id") == "de305d54" and len(stanza_ids(got)) == 1
    results, _ = query(bob)
    assert archived(results[0])[1].find(q(NS_SID, "origin-id")).get("id") == "de305d54"


# -- section 5.1.1: what a user's archive holds ------------------------------------------

def test_what_is_not_archived(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    # groupchat, headline and error messages, and a chat state without a body.
    for type_ in ("groupchat", "headline"):
        got = send_and_receive(alice, bob, type_, type_=type_)
        assert stanza_ids(got) == []
    alice.send(f"<message to='{bob.jid}' type='chat'><active xmlns='{NS_CHATSTATES}'/></message>")
    got = bob.expect(MESSAGE, match=lambda e: e.find(q(NS_CHATSTATES, "active")) is not None)
    assert stanza_ids(got) == []
    alice.send(f"<message to='{bob.jid}' type='error'><body>err</body>"
               f"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    got = bob.expect(MESSAGE, match=lambda e: e.get("type") == "error")
    assert stanza_ids(got) == []
    # A normal message to a resource that is not there is refused, so not archived.
    alice.send(f"<message to='{bare(bob)}/gone' id='gone1'><body>nobody</body></message>")
    bounced = alice.expect(MESSAGE, match=lambda e: e.get("id") == "gone1")
    assert stanza_error_condition(bounced)[1] == "service-unavailable"
    # A chat one to a gone resource goes to the bare JID: archived.
    alice.send(f"<message to='{bare(bob)}/gone' type='chat'><body>to bare</body></message>")
    got = bob.expect_message("to bare")
    assert len(stanza_ids(got)) == 1
    assert archived_bodies(bob, ["to bare"], timeout=30) == ["to bare"]
    # The sender's archive keeps what she sent, delivered or not (as she sent it).
    assert archived_bodies(alice, ["nobody", "to bare"], timeout=30) == ["nobody", "to bare"]


def test_a_message_forked_to_every_resource_is_archived_once(server_factory, tmp_path, raw_factory):
    """Section 5.1.1: a stanza that the server multiplies (to the bare JID, carbons) is in a
    given archive once; every copy carries the same stanza id."""
    server = carbons_mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    bob2 = login(server, raw_factory, "bob", "b2")
    assert bob2.iq("set", f"<enable xmlns='{NS_CARBONS}'/>").get("type") == "result"
    alice.send(f"<message to='{bare(bob)}' type='chat'><body>fork</body></message>")
    first = bob.expect_message("fork")
    second = bob2.expect_message("fork")
    assert stanza_ids(first) == stanza_ids(second) and len(stanza_ids(first)) == 1
    alice.send(f"<message to='{bob.jid}' type='chat'><body>carbon</body></message>")
    direct = bob.expect_message("carbon")
    carbon = bob2.expect(MESSAGE, match=lambda e: e.find(q(NS_CARBONS, "received")) is not None)
    copy = carbon.find(q(NS_CARBONS, "received")).find(q(NS_FORWARD, "forwarded")).find(MESSAGE)
    assert stanza_ids(copy) == stanza_ids(direct) and len(stanza_ids(direct)) == 1
    results, _ = query(bob)
    assert bodies(results) == ["fork", "carbon"]
    assert [archived(r)[0] for r in results] == [stanza_ids(first)[0][1], stanza_ids(direct)[0][1]]


def test_a_message_the_server_refuses_for_a_blocking_user_is_not_archived(server_factory, tmp_path, raw_factory):
    """Section 6.1: what the user's server rejects (a blocked contact, XEP-0191) is not in
    that user's archive; what the blocking user tries to send to it is not either."""
    modules = {"mod_disco": {}, "mod_ping": {}, "mod_mam": {}, "mod_blocking": {}, "mod_test_stream": {}}
    server = server_factory(module_paths=[module_dir(tmp_path, "mod_test_stream")], modules=modules, workers=2)
    for user in ("alice", "bob"):
        server.register(user, PASSWORD)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    reply = bob.iq("set", f"<block xmlns='urn:xmpp:blocking'><item jid='{bare(alice)}'/></block>")
    assert reply.get("type") == "result"
    alice.send(f"<message to='{bob.jid}' type='chat' id='blk1'><body>let me in</body></message>")
    refused = alice.expect(MESSAGE, match=lambda e: e.get("id") == "blk1")  # decided: refused
    assert stanza_error_condition(refused)[1] == "service-unavailable"
    bob.send(f"<message to='{alice.jid}' type='chat' id='blk2'><body>go away</body></message>")
    refused = bob.expect(MESSAGE, match=lambda e: e.get("id") == "blk2")
    assert refused.get("type") == "error"
    results, _ = query(bob)
    assert results == []
    assert archived_bodies(alice, ["let me in"], timeout=30) == ["let me in"]  # she did send it


def test_a_query_to_the_servers_jid_is_not_the_users_archive(server_factory, tmp_path, raw_factory):
    """The server's JID holds no archive: a query there is refused, not answered from
    the user's archive."""
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    fill(alice, bob, 1)
    kind, condition = error_reply(bob, to=server.domain)
    assert (kind, condition) == ("cancel", "service-unavailable")


# -- XEP-0441 (section 6 of earlier versions): preferences -------------------------------

def test_preferences_set_answers_the_stored_prefs_and_errors(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    bob = login(server, raw_factory, "bob", "b")
    reply = bob.iq("set", f"<prefs xmlns='{NS_MAM}' default='roster'><always><jid>Carol@Localhost</jid></always>"
                          f"<never/></prefs>")
    prefs = reply.find(q(NS_MAM, "prefs"))
    assert reply.get("type") == "result" and prefs.get("default") == "roster"
    assert [j.text for j in prefs.find(q(NS_MAM, "always"))] == ["carol@localhost"]  # as stored (prepared)
    assert prefs.find(q(NS_MAM, "never")) is not None and len(prefs.find(q(NS_MAM, "never"))) == 0
    reply = bob.iq("get", f"<prefs xmlns='{NS_MAM}'/>")
    assert ET.tostring(reply.find(q(NS_MAM, "prefs"))) == ET.tostring(prefs)
    assert iq_error(bob, "set", f"<prefs xmlns='{NS_MAM}' default='sometimes'/>") == ("modify", "bad-request")
    assert iq_error(bob, "set", f"<prefs xmlns='{NS_MAM}'/>") == ("modify", "bad-request")
    assert iq_error(bob, "set", f"<prefs xmlns='{NS_MAM}' default='always'><always><jid>@@</jid></always></prefs>") \
        == ("modify", "jid-malformed")


# -- section 5 (#extended): metadata -----------------------------------------------------

def test_metadata_start_and_end(server_factory, tmp_path, raw_factory):
    server = mam_server(server_factory, tmp_path)
    alice = login(server, raw_factory, "alice", "a")
    bob = login(server, raw_factory, "bob", "b")
    reply = bob.iq("get", f"<metadata xmlns='{NS_MAM}'/>")
    assert reply.get("type") == "result" and len(reply.find(q(NS_MAM, "metadata"))) == 0
    ids = fill(alice, bob, 3)
    results, _ = query(bob)
    stamps = [r.find(q(NS_MAM, "result")).find(q(NS_FORWARD, "forwarded")).find(q(NS_DELAY, "delay")).get("stamp")
              for r in results]
    md = bob.iq("get", f"<metadata xmlns='{NS_MAM}'/>").find(q(NS_MAM, "metadata"))
    start, end = md.find(q(NS_MAM, "start")), md.find(q(NS_MAM, "end"))
    assert (start.get("id"), start.get("timestamp")) == (ids[0], stamps[0])
    assert (end.get("id"), end.get("timestamp")) == (ids[2], stamps[2])
