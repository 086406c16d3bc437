"""Attacks on XEP-0198 stream management (mod_stream_mgmt) while the witness
pair keeps talking: a flood of <r/> gets a bounded number of answers, and a
<resume/> of another account's session is refused exactly as an unknown id
(nothing leaks, the victim's session is untouched)."""

import math
import time
import xml.etree.ElementTree as ET

from conftest import PASSWORD
from hostile import blast
from rawxmpp import NS_CLIENT, NS_SASL, q

NS_SM = "urn:xmpp:sm:3"
ANSWERS_PER_SECOND = 10
MODULES = {"mod_disco": {}, "mod_ping": {},
           "mod_stream_mgmt": {"ack_request_stanzas": 1000000, "ack_request_seconds": 0,
                               "max_ack_answers_per_second": ANSWERS_PER_SECOND}}


def sm_element(client, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        elem = client.next_element(max(0.01, deadline - time.monotonic()))
        if elem.tag.startswith("{" + NS_SM + "}"):
            return elem


def test_a_flood_of_r_gets_a_bounded_number_of_answers(hostile_server, raw_factory, witness):
    server = hostile_server(modules=dict(MODULES))
    w = witness(server)
    mallory = raw_factory(server.c2s_port)
    mallory.login("mallory", PASSWORD, resource="flood")
    mallory.send(f"<enable xmlns='{NS_SM}'/>")
    assert sm_element(mallory).tag == q(NS_SM, "enabled")
    requests = 20000
    start = time.monotonic()
    taken = blast(mallory, f"<r xmlns='{NS_SM}'/>".encode() * requests)
    assert taken == len(f"<r xmlns='{NS_SM}'/>") * requests
    before = mallory.nothing_before_sync(timeout=30)  # every <r/> was processed
    elapsed = time.monotonic() - start
    answers = [e for e in before if e.tag == q(NS_SM, "a")]
    # At most ANSWERS_PER_SECOND per started second, plus one coalesced answer.
    bound = ANSWERS_PER_SECOND * (math.ceil(elapsed) + 1) + 1
    assert 0 < len(answers) <= bound, (len(answers), elapsed)
    assert w.flowing()
    w.verify()


def test_a_resume_of_another_accounts_session_is_refused_as_unknown(hostile_server, raw_factory, witness):
    server = hostile_server(modules=dict(MODULES))
    w = witness(server)
    eve = raw_factory(server.c2s_port)
    eve_jid = eve.login("eve", PASSWORD, resource="phone")
    eve.send(f"<enable xmlns='{NS_SM}' resume='true'/>")
    enabled = sm_element(eve)
    sm_id = enabled.get("id")
    assert sm_id

    mallory = raw_factory(server.c2s_port)
    mallory.start()
    mallory.starttls()
    assert mallory.auth_plain("mallory", PASSWORD).tag == q(NS_SASL, "success")
    mallory.start()
    answers = []
    session = sm_id.split(".")[0]
    for previd in (sm_id, f"{session}.{'0' * 32}", f"{int(session) + 1000}.{'0' * 32}"):
        mallory.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='0'/>")
        answers.append(ET.tostring(sm_element(mallory)))
    # Eve's real id, her session with a wrong token, and an id nobody has: one answer.
    assert len(set(answers)) == 1, answers
    assert b"item-not-found" in answers[0] and b" h=" not in answers[0]
    # Eve's session is untouched: still hers, still bound, still served.
    mallory.bind("own")
    mallory.message(eve_jid, "still yours")
    got = eve.expect(q(NS_CLIENT, "message"))
    assert got.findtext(q(NS_CLIENT, "body")) == "still yours"
    eve.send(f"<r xmlns='{NS_SM}'/>")
    assert sm_element(eve).tag == q(NS_SM, "a")
    assert w.flowing()
    w.verify()
