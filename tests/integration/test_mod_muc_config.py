"""mod_muc: the room configuration form and its fields taking effect
(password, max users, whois, moderated, members-only, presence broadcast,
member list, room admins and owners).

One server per suite (module-scoped, muc_support.py); tests that need
another configuration or a restart start their own. Negative checks end with
a round trip."""

from muc_support import *  # noqa: F401,F403 (fixtures and helpers)


def test_config_form_and_refusals(muc_server, login):
    alice, bob, carol, dave = login("alice"), login("bob"), login("carol"), login("dave")
    room = new_room(muc_server)
    create(alice, room, "A")
    form = alice.iq("get", f"<query xmlns='{NS_OWNER}'/>", to=room)
    vars_ = {f.get("var") for f in form.iter(q(NS_XDATA, "field"))}
    assert {"muc#roomconfig_roomname", "muc#roomconfig_roomdesc", "muc#roomconfig_persistentroom",
            "muc#roomconfig_publicroom", "muc#roomconfig_membersonly", "muc#roomconfig_moderatedroom",
            "muc#roomconfig_passwordprotectedroom", "muc#roomconfig_roomsecret", "muc#roomconfig_maxusers",
            "muc#roomconfig_whois", "muc#roomconfig_allowinvites", "muc#roomconfig_changesubject",
            "muc#roomconfig_enablelogging", "muc#roomconfig_presencebroadcast", "muc#roomconfig_getmemberlist",
            "muc#roomconfig_allowpm", "muc#roomconfig_roomadmins", "muc#roomconfig_roomowners"} <= vars_
    assert cond(bob.iq("get", f"<query xmlns='{NS_OWNER}'/>", to=room)) == "forbidden"
    join(bob, room, "B")
    # Password.
    owner_set(alice, room, field("muc#roomconfig_passwordprotectedroom", "1") + field("muc#roomconfig_roomsecret", "pw"))
    assert bob.expect(MESSAGE, match=lambda e: "104" in codes(e)).get("from") == room
    assert join_refused(carol, room, "C") == "not-authorized"
    assert join_refused(carol, room, "C", "<password>nope</password>") == "not-authorized"
    join(carol, room, "C", "<password>pw</password>")
    # Max users (owners and admins excepted).
    owner_set(alice, room, field("muc#roomconfig_passwordprotectedroom", "0") + field("muc#roomconfig_maxusers", "3"))
    assert join_refused(dave, room, "D") == "service-unavailable"
    # whois anyone: 172, real JIDs to all.
    owner_set(alice, room, field("muc#roomconfig_whois", "anyone") + field("muc#roomconfig_maxusers", "10"))
    assert {"104", "172"} <= codes(carol.expect(MESSAGE, match=lambda e: "172" in codes(e)))
    # ... and who could not see them gets the others' presences again, with them.
    again = carol.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B")
    assert item(again).get("jid") == bob.jid
    got = join(dave, room, "D")
    assert "100" in codes(self_presence(got))
    assert all(item(p).get("jid") for p in got if p.tag == PRESENCE)
    # Moderated: a newcomer is a visitor and may not speak.
    owner_set(alice, room, field("muc#roomconfig_moderatedroom", "1"))
    dave.send(f"<presence to='{room}/D' type='unavailable'/>")
    dave.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable")
    got = join(dave, room, "D")
    assert item(self_presence(got)).get("role") == "visitor"
    sid = groupchat(dave, room, "can I?")
    assert cond(dave.expect(MESSAGE, match=lambda e: e.get("id") == sid)) == "forbidden"
    # Members-only: non-members leave with 322, and newcomers need membership (407).
    owner_set(alice, room, field("muc#roomconfig_moderatedroom", "0") + field("muc#roomconfig_membersonly", "1"))
    for c in (bob, carol, dave):
        gone = c.expect(PRESENCE, match=lambda e: e.get("type") == "unavailable" and "110" in codes(e))
        assert "322" in codes(gone)
    assert join_refused(bob, room, "B") == "registration-required"
    admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='member'/>")
    join(bob, room, "B")
    # Presence broadcast for moderators only: bob's presence does not reach carol's... (alice sees only moderators)
    owner_set(alice, room, field("muc#roomconfig_presencebroadcast", "moderator"))
    admin_set(alice, room, f"<item jid='carol@{muc_server.domain}' affiliation='member'/>")
    join(carol, room, "C")
    # A participant's join is not broadcast: alice (moderator) gets none of carol's presence before a marker.
    before = marker(carol, [alice], room)[0]
    assert [e for e in before if e.tag == PRESENCE and e.get("from") == f"{room}/C"] == []
    # Bad field values are refused, leaving the room as it was.
    r = alice.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>"
                        f"{field('muc#roomconfig_whois', 'everybody')}</x></query>", to=room)
    assert cond(r) == "not-acceptable"


def test_disco_features_follow_the_configuration(muc_server, login):
    alice = login("alice")
    room = new_room(muc_server)
    create(alice, room, "A")

    def features():
        info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
        return {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {"muc_public", "muc_temporary", "muc_open", "muc_unmoderated", "muc_semianonymous",
            "muc_unsecured"} <= features()
    owner_set(alice, room, field("muc#roomconfig_persistentroom", "1") + field("muc#roomconfig_publicroom", "0")
              + field("muc#roomconfig_membersonly", "1") + field("muc#roomconfig_moderatedroom", "1")
              + field("muc#roomconfig_passwordprotectedroom", "1") + field("muc#roomconfig_roomsecret", "pw")
              + field("muc#roomconfig_whois", "anyone"))
    now = features()
    assert {"muc_persistent", "muc_hidden", "muc_membersonly", "muc_moderated", "muc_passwordprotected",
            "muc_nonanonymous"} <= now
    assert not now & {"muc_public", "muc_temporary", "muc_open", "muc_unmoderated", "muc_semianonymous",
                      "muc_unsecured"}
    owner_set(alice, room, field("muc#roomconfig_persistentroom", "0"))
    assert "muc_temporary" in features()


def test_member_list_description_and_whois_back(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A", field("muc#roomconfig_roomdesc", "About things") + field("muc#roomconfig_whois", "anyone"))
    info = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    form = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_XDATA, "x"))
    values = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in form.findall(q(NS_XDATA, "field"))}
    assert values["muc#roominfo_description"] == "About things"
    assert "muc_nonanonymous" in {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    join(bob, room, "B")
    admin_set(alice, room, f"<item jid='bob@{muc_server.domain}' affiliation='member'/>")
    # getmemberlist: every role by default, then moderators only.
    assert [i.get("jid") for i in admin_get(bob, room, "affiliation='member'")] == [f"bob@{muc_server.domain}"]
    owner_set(alice, room, field("muc#roomconfig_getmemberlist", "moderator"))
    r = bob.iq("get", f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
    assert cond(r) == "forbidden"
    # whois back to moderators: 173, and real JIDs no longer shown to participants.
    owner_set(alice, room, field("muc#roomconfig_whois", "moderators"))
    assert codes(bob.expect(MESSAGE, match=lambda e: "173" in codes(e))) == {"173"}  # no 104: only privacy changed
    alice.send(f"<presence to='{room}/A'><show>away</show></presence>")
    p = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/A" and e.findtext(q(NS_CLIENT, "show")) == "away")
    assert item(p).get("jid") is None


def test_roomadmins_and_roomowners_fields(muc_server, login):
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    d = muc_server.domain
    owner_set(alice, room, field("muc#roomconfig_roomadmins", f"bob@{d}", f"carol@{d}"))
    p = bob.expect(PRESENCE, match=lambda e: e.get("from") == f"{room}/B" and item(e).get("affiliation") == "admin")
    assert item(p).get("role") == "moderator"
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='admin'")} == {f"bob@{d}", f"carol@{d}"}
    # A new list replaces the old one; admins left out become members.
    owner_set(alice, room, field("muc#roomconfig_roomadmins", f"carol@{d}")
              + field("muc#roomconfig_roomowners", f"alice@{d}", f"dave@{d}"))
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='admin'")} == {f"carol@{d}"}
    assert {i.get("jid") for i in admin_get(alice, room, "affiliation='owner'")} == {f"alice@{d}", f"dave@{d}"}
    assert [i.get("jid") for i in admin_get(alice, room, "affiliation='member'")] == [f"bob@{d}"]
    # An empty owner list would leave the room without an owner.
    r = alice.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>"
                        "<field var='muc#roomconfig_roomowners'/></x></query>", to=room)
    assert cond(r) == "conflict"


def test_room_avatar(muc_server, login):
    """XEP-0486: an owner sets the room's vCard-temp; its photo's hash is in disco#info."""
    import base64
    import hashlib
    alice, bob = login("alice"), login("bob")
    room = new_room(muc_server)
    create(alice, room, "A")
    join(bob, room, "B")
    svc = alice.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=service(muc_server))
    assert "vcard-temp" in {f.get("var") for f in svc.iter(q(NS_DISCO_INFO, "feature"))}

    def roominfo():
        info = bob.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
        assert "vcard-temp" in {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
        form = info.find(q(NS_DISCO_INFO, "query")).find(q(NS_XDATA, "x"))
        return {f.get("var"): [v.text for v in f.findall(q(NS_XDATA, "value"))]
                for f in form.findall(q(NS_XDATA, "field"))}
    assert "muc#roominfo_avatarhash" not in roominfo()
    image = b"\x89PNG\r\n\x1a\n not really an image"
    binval = base64.b64encode(image).decode()
    vcard = (f"<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE>"
             f"<BINVAL>{binval[:20]}\n{binval[20:]}</BINVAL></PHOTO></vCard>")
    r = bob.iq("set", vcard, to=room)
    assert cond(r) == "forbidden" and error_type(r) == "auth"
    assert alice.iq("set", vcard, to=room).get("type") == "result"
    assert codes(bob.expect(MESSAGE, match=lambda e: "104" in codes(e))) == {"104"}
    assert roominfo()["muc#roominfo_avatarhash"] == [hashlib.sha1(image).hexdigest()]
    got = bob.iq("get", "<vCard xmlns='vcard-temp'/>", to=room)
    photo = got.find("{vcard-temp}vCard").find("{vcard-temp}PHOTO")
    assert photo.findtext("{vcard-temp}TYPE") == "image/png"
    assert base64.b64decode(photo.findtext("{vcard-temp}BINVAL")) == image
    r = alice.iq("set", "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>not base64!</BINVAL></PHOTO></vCard>", to=room)
    assert cond(r) == "bad-request"
    # An empty vCard removes it.
    assert alice.iq("set", "<vCard xmlns='vcard-temp'/>", to=room).get("type") == "result"
    assert codes(bob.expect(MESSAGE, match=lambda e: "104" in codes(e))) == {"104"}
    assert "muc#roominfo_avatarhash" not in roominfo()
    got = bob.iq("get", "<vCard xmlns='vcard-temp'/>", to=room)
    assert list(got.find("{vcard-temp}vCard")) == []
