"""mod_presence and a contact the server does not host (RFC 6121 section 4):
the contact is an external component (remote_contact.py), so that what the
server routes to a contact (probes, broadcasts, the unavailable at logout,
answers to the contact's probes) is seen exactly as routed, instead of being
answered or filtered by a second local user on the way. One contact per state
of Appendix A.1; each step checks who got something and who did not."""

import xml.etree.ElementTree as ET

import pytest

from conftest import PASSWORD
from rawxmpp import RawClient
from remote_contact import COMPONENT, CPRESENCE, STATES, reach, round_trip, start_world, stop_world
from roster_peer import PRESENCE, Peer


def contact(state):
    slug = state.lower().replace(" + ", "-").replace("+", "-").replace(" ", "")
    return f"p-{slug}@{COMPONENT}"


def has_from(state):
    return STATES[state][0] in ("from", "both")


def has_to(state):
    return STATES[state][0] in ("to", "both")


@pytest.fixture
def world(tmp_path, binaries):
    w = start_world(tmp_path, binaries, {"mod_disco": {}, "mod_ping": {}, "mod_roster": {}, "mod_presence": {}})
    for state in STATES:
        reach(w, contact(state), state)
    yield w
    stop_world(w)


def presences(comp, type_=None):
    """(from, to) of the presences of `type_` the component has, taken out of its inbox."""
    found = [e for e in comp.inbox if e.tag == CPRESENCE and e.get("type") == type_]
    comp.inbox = [e for e in comp.inbox if e not in found]
    return sorted((e.get("from"), e.get("to")) for e in found)


def expect(comp, pairs, type_=None):
    """Waits for a presence of `type_` for each (from, to), taking each out of
    the inbox (the callers then check, after a round trip, that nothing else
    came)."""
    for frm, to in pairs:
        comp.wait(lambda e, frm=frm, to=to: e.tag == CPRESENCE and e.get("type") == type_
                  and e.get("from") == frm and e.get("to") == to, f"presence {type_} {frm} -> {to}")


def test_broadcasts_and_probes_follow_the_subscription_states(world):
    server, alice, comp = world
    # 4.5.2: the unavailable of a resource goes to the contacts subscribed to
    # the user (From, From + Pending Out, Both), from the full JID.
    alice.send("<presence type='unavailable'/>")
    subscribers = [(alice.jid, contact(s)) for s in STATES if has_from(s)]
    expect(comp, subscribers, "unavailable")
    round_trip(alice, comp)
    assert presences(comp, "unavailable") == []
    assert presences(comp, "probe") == [] and presences(comp) == []

    # 4.2.2 / 4.3.1: a new resource's initial presence goes to the same
    # contacts (from its full JID), and the contacts whose presence the user
    # has (To, To + Pending In, Both) are probed from the user's bare JID.
    raw = RawClient(server.c2s_port)
    raw.login("alice", PASSWORD, resource="second")
    second = Peer(raw, "alice", server.domain)
    try:
        second.send("<presence><status>two</status></presence>")
        expect(comp, [(second.jid, contact(s)) for s in STATES if has_from(s)])
        expect(comp, [(alice.bare, contact(s)) for s in STATES if has_to(s)], "probe")
        round_trip(alice, comp)
        assert presences(comp) == [] and presences(comp, "probe") == [], comp.inbox
        for e in comp.inbox:
            assert e.tag != CPRESENCE, ET.tostring(e, "unicode")

        # 4.4.2: an update goes to the subscribers only, and probes no one.
        second.send("<presence><show>away</show></presence>")
        expect(comp, [(second.jid, contact(s)) for s in STATES if has_from(s)])
        round_trip(alice, comp)
        assert presences(comp) == [] and presences(comp, "probe") == []

        # 4.3.2: a probe from a subscriber is answered with the presence of
        # each available resource; one from any other contact with
        # "unsubscribed" (to its bare JID, as subscription stanzas go), never
        # with presence.
        for state in STATES:
            comp.c.send(f"<presence type='probe' from='{contact(state)}/x' to='{alice.bare}'/>")
        expect(comp, [(second.jid, f"{contact(s)}/x") for s in STATES if has_from(s)])
        expect(comp, [(alice.bare, contact(s)) for s in STATES if not has_from(s)], "unsubscribed")
        round_trip(alice, comp)
        assert presences(comp) == [] and presences(comp, "unsubscribed") == []

        # 8.5.2.1.1: a contact's presence reaches every available resource of
        # the user (here: second; alice's first resource is unavailable).
        comp.c.send(f"<presence from='{contact('To')}/x' to='{alice.bare}'><status>hey</status></presence>")
        second.wait(lambda e: e.tag == PRESENCE and e.get("from") == f"{contact('To')}/x", what="contact's presence")
    finally:
        raw.close(timeout=2)


def test_priority_outside_its_range_is_refused_and_not_broadcast(world):
    # RFC 6121 4.7.2.3: an integer from -128 to +127. The server answers
    # anything else with <bad-request/> (modify) and the contacts see nothing
    # of it; the limits themselves are fine.
    server, alice, comp = world
    subscribers = [contact(s) for s in STATES if has_from(s)]
    for bad in ("128", "-129", "1.5", "high"):
        alice.send(f"<presence><priority>{bad}</priority></presence>")
        err = alice.wait(lambda e: e.tag == PRESENCE and e.get("type") == "error", what="presence error")
        cond = err.find("{jabber:client}error")
        assert cond is not None and cond.get("type") == "modify", ET.tostring(err, "unicode")
        assert cond.find("{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request") is not None, ET.tostring(err, "unicode")
    round_trip(alice, comp)
    assert presences(comp) == []
    for ok in ("127", "-128"):
        alice.send(f"<presence><priority>{ok}</priority></presence>")
        expect(comp, [(alice.jid, c) for c in subscribers])
        got = [e for e in comp.inbox if e.tag == CPRESENCE]
        assert got == [], [ET.tostring(e, "unicode") for e in got]


def test_unknown_presence_type_from_elsewhere_is_bad_request(world):
    # RFC 6121 4.7.1: the recipient or a server on the way answers a type it
    # does not know with <bad-request/>. A local client's is answered at once
    # (test_mod_presence.py); one from a contact elsewhere was handed to the
    # user's client as it came (session 13's audit), it is answered now.
    server, alice, comp = world
    frm = f"{contact('From')}/x"
    comp.c.send(f"<presence type='bogus' id='odd1' from='{frm}' to='{alice.bare}'/>")
    comp.c.send(f"<presence type='bogus' id='odd2' from='{frm}' to='{alice.jid}'/>")
    for sid, to in (("odd1", alice.bare), ("odd2", alice.jid)):
        err = comp.wait(lambda e, sid=sid: e.tag == CPRESENCE and e.get("id") == sid, f"error {sid}")
        assert err.get("type") == "error" and err.get("from") == to and err.get("to") == frm, \
            ET.tostring(err, "unicode")
        cond = err.find("{jabber:component:accept}error")
        assert cond is not None and cond.get("type") == "modify", ET.tostring(err, "unicode")
        assert cond.find("{urn:ietf:params:xml:ns:xmpp-stanzas}bad-request") is not None
    round_trip(alice, comp)
    assert [e for e in alice.inbox if e.tag == PRESENCE and e.get("type") == "bogus"] == []


def test_presence_to_a_resource_without_a_session(world):
    # RFC 6121 8.5.3.2.1: available or unavailable presence to a full JID no
    # session has is dropped; a probe to one is answered as to the bare JID.
    server, alice, comp = world
    frm = f"{contact('From')}/x"
    comp.c.send(f"<presence from='{frm}' to='{alice.bare}/nobody'><status>lost</status></presence>")
    comp.c.send(f"<presence type='unavailable' from='{frm}' to='{alice.bare}/nobody'/>")
    comp.c.send(f"<presence type='probe' from='{frm}' to='{alice.bare}/nobody'/>")
    expect(comp, [(alice.jid, frm)])
    round_trip(alice, comp)
    assert [e for e in alice.inbox if e.tag == PRESENCE and e.get("from") == frm] == []
    assert presences(comp) == [] and presences(comp, "error") == []
