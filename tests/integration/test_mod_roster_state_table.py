"""RFC 6121 Appendix A at the wire: every row of A.2 (the user's own
subscription stanzas, outbound) and A.3 (a contact's, inbound), for each of
the nine states of A.1, with mod_roster and mod_presence on a real parleyd.

The contact is an external component (XEP-0114, `c.localhost`): what alice's
server routes to the contact is exactly what the component receives, and what
the contact sends is processed by alice's server alone (no second local
roster in between, which would hide a wrongly routed stanza behind its own
table). Each row has a contact of its own; for each it checks what the RFC
says there: whether the stanza is routed (outbound) or delivered to alice
(inbound), the roster push (one when the item changes, none on "no state
change"), the item's state after (subscription, ask, approved), whether the
request alice has not answered is still stored (Pending In), and the automatic
"subscribed" of A.3.1's footnote. subscription_state_test.cpp checks the same
table on the pure function; this file checks the wiring around it.
"""

import xml.etree.ElementTree as ET

import pytest

from remote_contact import (COMPONENT, PRESENCE, STATES, SUB_TYPES, item_of, pending_stored,
                            pushes_for, reach, round_trip, start_world, stop_world, visible)

PRE = "pre-approval"  # A.2.3: not routed; the item gets approved='true' (3.4)
SAME = None           # no state change

# A.2: the user's server and the user's own stanza: (routed?, new state).
OUTBOUND = {
    "subscribe": {
        "None": (True, "None + Pending Out"), "None + Pending Out": (True, SAME),
        "None + Pending In": (True, "None + Pending Out+In"), "None + Pending Out+In": (True, SAME),
        "To": (True, SAME), "To + Pending In": (True, SAME),
        "From": (True, "From + Pending Out"), "From + Pending Out": (True, SAME), "Both": (True, SAME)},
    "unsubscribe": {
        "None": (True, SAME), "None + Pending Out": (True, "None"),
        "None + Pending In": (True, SAME), "None + Pending Out+In": (True, "None + Pending In"),
        "To": (True, "None"), "To + Pending In": (True, "None + Pending In"),
        "From": (True, SAME), "From + Pending Out": (True, "From"), "Both": (True, "From")},
    "subscribed": {
        "None": (False, PRE), "None + Pending Out": (False, PRE),
        "None + Pending In": (True, "From"), "None + Pending Out+In": (True, "From + Pending Out"),
        "To": (False, PRE), "To + Pending In": (True, "Both"),
        "From": (False, SAME), "From + Pending Out": (False, SAME), "Both": (False, SAME)},
    "unsubscribed": {
        "None": (False, SAME), "None + Pending Out": (False, SAME),
        "None + Pending In": (True, "None"), "None + Pending Out+In": (True, "None + Pending Out"),
        "To": (False, SAME), "To + Pending In": (True, "To"),
        "From": (True, "None"), "From + Pending Out": (True, "None + Pending Out"), "Both": (True, "To")},
}

# A.3: the user's server and the contact's stanza: (delivered?, new state);
# "auto": not delivered, answered with "subscribed" (A.3.1's footnote).
AUTO = "auto"
INBOUND = {
    "subscribe": {
        "None": (True, "None + Pending In"), "None + Pending Out": (True, "None + Pending Out+In"),
        "None + Pending In": (False, SAME), "None + Pending Out+In": (False, SAME),
        "To": (True, "To + Pending In"), "To + Pending In": (False, SAME),
        "From": (AUTO, SAME), "From + Pending Out": (AUTO, SAME), "Both": (AUTO, SAME)},
    "unsubscribe": {
        "None": (False, SAME), "None + Pending Out": (False, SAME),
        "None + Pending In": (True, "None"), "None + Pending Out+In": (True, "None + Pending Out"),
        "To": (False, SAME), "To + Pending In": (True, "To"),
        "From": (True, "None"), "From + Pending Out": (True, "None + Pending Out"), "Both": (True, "To")},
    "subscribed": {
        "None": (False, SAME), "None + Pending Out": (True, "To"),
        "None + Pending In": (False, SAME), "None + Pending Out+In": (True, "To + Pending In"),
        "To": (False, SAME), "To + Pending In": (False, SAME),
        "From": (False, SAME), "From + Pending Out": (True, "Both"), "Both": (False, SAME)},
    "unsubscribed": {
        "None": (False, SAME), "None + Pending Out": (True, "None"),
        "None + Pending In": (False, SAME), "None + Pending Out+In": (True, "None + Pending In"),
        "To": (True, "None"), "To + Pending In": (True, "None + Pending In"),
        "From": (False, SAME), "From + Pending Out": (True, "From"), "Both": (True, "From")},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, binaries):
    w = start_world(tmp_path_factory.mktemp("state-table"), binaries,
                    {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}})
    yield w
    stop_world(w)


def check_after(world, contact, before, after, approved=False):
    server, alice, _ = world
    final = before if after is SAME else after
    item = item_of(alice, contact)
    assert (item.get("subscription"), item.get("ask")) == visible(final), ET.tostring(item, "unicode")
    assert (item.get("approved") == "true") == approved, ET.tostring(item, "unicode")
    assert pending_stored(server, contact) == STATES[final][2]
    # A push when the item changed, none otherwise (Pending In is not in the item).
    return visible(final) != visible(before) or approved


CASES = [(t, s) for t in SUB_TYPES for s in STATES]


def contact_for(direction, type_, state):
    slug = state.lower().replace(" + ", "-").replace("+", "-").replace(" ", "")
    return f"{direction}-{type_}-{slug}@{COMPONENT}"


@pytest.mark.parametrize("type_,state", CASES)
def test_outbound(world, type_, state):
    """A.2: alice sends `type_` to a contact whose item is in `state`."""
    server, alice, comp = world
    contact = contact_for("out", type_, state)
    reach(world, contact, state)
    routed, after = OUTBOUND[type_][state]
    alice.send(f"<presence to='{contact}/somewhere' type='{type_}'/>")
    if routed and type_ == "subscribed":
        comp.available(alice.jid, contact)  # 3.1.5: then alice's current presence
    round_trip(alice, comp)
    # 3.1.2 and the like: to the bare JID, from alice's bare JID. 3.2.2:
    # cancelling a subscription, alice's available resource goes unavailable
    # for the contact first.
    expected = []
    if routed and type_ == "unsubscribed" and STATES[state][0] in ("from", "both"):
        expected.append(("unavailable", alice.jid))
    if routed:
        expected.append((type_, alice.bare))
    assert comp.to_contact(contact) == expected
    pre = after == PRE
    changed = check_after(world, contact, state, SAME if pre else after, approved=pre)
    pushes = pushes_for(alice, contact)
    assert len(pushes) == (1 if changed else 0), [ET.tostring(e, "unicode") for e in pushes]


@pytest.mark.parametrize("type_,state", CASES)
def test_inbound(world, type_, state):
    """A.3: the contact sends `type_` to alice, whose item for it is in `state`."""
    server, alice, comp = world
    contact = contact_for("in", type_, state)
    reach(world, contact, state)
    delivered, after = INBOUND[type_][state]
    comp.send(contact, alice.bare, type_)
    if delivered == AUTO:
        comp.available(alice.jid, contact)  # with the answer, alice's presence
    round_trip(alice, comp)
    got = [e for e in alice.inbox if e.tag == PRESENCE and e.get("from") == contact and e.get("type") in SUB_TYPES]
    alice.inbox = [e for e in alice.inbox if e not in got]
    if delivered is True:
        assert [e.get("type") for e in got] == [type_], [ET.tostring(e, "unicode") for e in got]
    else:
        assert got == [], [ET.tostring(e, "unicode") for e in got]
    # A.3.1's footnote: the server answers for alice. 3.3.3: the contact that
    # unsubscribed sees alice's available resource go unavailable.
    expected = []
    if delivered == AUTO:
        expected.append(("subscribed", alice.bare))
    if type_ == "unsubscribe" and delivered is True and STATES[state][0] in ("from", "both"):
        expected.append(("unavailable", alice.jid))
    assert comp.to_contact(contact) == expected
    changed = check_after(world, contact, state, after)
    pushes = pushes_for(alice, contact)
    assert len(pushes) == (1 if changed else 0), [ET.tostring(e, "unicode") for e in pushes]


# 3.4: a request from a pre-approved contact is approved by the server.
PREAPPROVED = {"None": "From", "None + Pending Out": "From + Pending Out", "To": "Both"}


@pytest.mark.parametrize("state", PREAPPROVED)
def test_preapproved_request_is_answered_by_the_server(world, state):
    server, alice, comp = world
    contact = contact_for("pre", "subscribe", state)
    reach(world, contact, state)
    alice.send(f"<presence to='{contact}' type='subscribed'/>")  # A.2.3: a pre-approval
    round_trip(alice, comp)
    assert comp.sub_stanzas(contact) == []
    assert len(pushes_for(alice, contact)) == 1
    assert item_of(alice, contact).get("approved") == "true"
    comp.send(contact, alice.bare, "subscribe")
    round_trip(alice, comp)
    # Not shown to alice; answered for her; her item has the subscription, no
    # longer the pre-approval, and nothing is left waiting for her answer.
    assert [e for e in alice.inbox if e.tag == PRESENCE and e.get("from") == contact] == []
    assert [(e.get("type"), e.get("from")) for e in comp.sub_stanzas(contact)] == [("subscribed", alice.bare)]
    assert check_after(world, contact, state, PREAPPROVED[state])
    assert len(pushes_for(alice, contact)) == 1


def test_subscription_stanza_to_an_absent_resource_is_handled_as_to_the_account(world):
    """RFC 6121 8.5.3.2.1: a subscription stanza to a full JID with no
    session is processed as if addressed to the bare JID (section 3)."""
    server, alice, comp = world
    contact = f"absent-resource@{COMPONENT}"
    comp.c.send(f"<presence from='{contact}/x' to='{alice.bare}/nobody' type='subscribe'/>")
    got = alice.presence("subscribe", contact)
    assert got.get("to") == alice.bare
    round_trip(alice, comp)
    assert pending_stored(server, contact)
    alice.send(f"<presence to='{contact}' type='subscribed'/>")
    comp.presence(alice.bare, contact, "subscribed")
    round_trip(alice, comp)
    assert item_of(alice, contact).get("subscription") == "from"
    assert not pending_stored(server, contact)
