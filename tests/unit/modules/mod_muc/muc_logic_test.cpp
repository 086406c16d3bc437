// mod_muc's pure logic: the permission tables of XEP-0045 §8-§10, the room
// configuration form, history selection, occupant ids and stored configs.
#include <doctest/doctest.h>

#include "muc_logic.hpp"

using namespace muc;

TEST_CASE("default roles follow affiliations (XEP-0045 5.1.2)") {
  CHECK(default_role(Affiliation::owner, false) == Role::moderator);
  CHECK(default_role(Affiliation::admin, true) == Role::moderator);
  CHECK(default_role(Affiliation::member, true) == Role::participant);
  CHECK(default_role(Affiliation::none, false) == Role::participant);
  CHECK(default_role(Affiliation::none, true) == Role::visitor);
  CHECK(default_role(Affiliation::outcast, false) == Role::none);
}

TEST_CASE("role changes: who may kick, grant and revoke voice and moderation") {
  const auto A = Affiliation::admin, O = Affiliation::owner, M = Affiliation::member, N = Affiliation::none;
  const auto mod = Role::moderator, part = Role::participant, vis = Role::visitor;
  // Only moderators change roles.
  CHECK(check_role_change(N, part, N, part, Role::none) == "forbidden");
  CHECK(check_role_change(M, vis, N, part, vis) == "forbidden");
  // A moderator kicks, grants and revokes voice of plain occupants (8.2-8.4).
  CHECK(check_role_change(N, mod, N, part, Role::none) == "");
  // §8.4: voice is not revoked from an affiliation at or above the moderator's (MUST).
  CHECK(check_role_change(M, mod, M, part, vis) == "not-allowed");
  CHECK(check_role_change(N, mod, N, part, vis) == "not-allowed");
  CHECK(check_role_change(M, mod, N, part, vis) == "");
  CHECK(check_role_change(A, mod, M, part, vis) == "");
  CHECK(check_role_change(M, mod, M, vis, part) == "");
  CHECK(check_role_change(N, mod, N, vis, part) == "");
  // Not someone of a higher affiliation (8.2: kick; 8.5: voice).
  CHECK(check_role_change(N, mod, M, part, Role::none) == "not-allowed");
  CHECK(check_role_change(N, mod, M, part, vis) == "not-allowed");
  CHECK(check_role_change(N, mod, A, mod, Role::none) == "not-allowed");
  CHECK(check_role_change(A, mod, O, mod, Role::none) == "not-allowed");
  // An owner kicks an admin or another owner; an admin another admin.
  CHECK(check_role_change(O, mod, A, mod, Role::none) == "");
  CHECK(check_role_change(O, mod, O, mod, Role::none) == "");
  CHECK(check_role_change(A, mod, A, mod, Role::none) == "");
  // Kicking oneself: conflict.
  CHECK(check_role_change(O, mod, O, mod, Role::none, true) == "conflict");
  // Voice is never taken from an admin or owner.
  CHECK(check_role_change(O, mod, A, mod, vis) == "not-allowed");
  // Moderation is granted and revoked by admins and owners only (9.6, 9.7).
  CHECK(check_role_change(N, mod, N, part, mod) == "forbidden");
  CHECK(check_role_change(A, mod, N, part, mod) == "");
  CHECK(check_role_change(O, mod, N, mod, part) == "");
  CHECK(check_role_change(M, mod, N, mod, part) == "forbidden");
  CHECK(check_role_change(O, mod, A, mod, part) == "not-allowed");
  // A moderator of the same affiliation may be kicked.
  CHECK(check_role_change(N, mod, N, mod, Role::none) == "");
  CHECK(check_role_change(A, mod, N, mod, Role::none) == "");
}

TEST_CASE("affiliation changes: admins manage members and outcasts, owners everything") {
  const auto A = Affiliation::admin, O = Affiliation::owner, M = Affiliation::member, N = Affiliation::none,
             X = Affiliation::outcast;
  CHECK(check_affiliation_change(M, N, M, 1, false) == "forbidden");
  CHECK(check_affiliation_change(N, N, X, 1, false) == "forbidden");
  CHECK(check_affiliation_change(A, N, M, 1, false) == "");
  CHECK(check_affiliation_change(A, M, X, 1, false) == "");
  CHECK(check_affiliation_change(A, N, A, 1, false) == "forbidden");
  CHECK(check_affiliation_change(A, N, O, 1, false) == "forbidden");
  CHECK(check_affiliation_change(A, A, N, 1, false) == "not-allowed");
  CHECK(check_affiliation_change(A, O, X, 1, false) == "not-allowed");
  CHECK(check_affiliation_change(O, A, X, 1, false) == "");
  CHECK(check_affiliation_change(O, N, O, 1, false) == "");
  // The last owner stays (10.9).
  CHECK(check_affiliation_change(O, O, A, 1, true) == "conflict");
  CHECK(check_affiliation_change(O, O, A, 2, true) == "");
  // Nobody bans himself (9.1).
  CHECK(check_affiliation_change(O, O, X, 2, true) == "conflict");
  CHECK(check_affiliation_change(A, A, X, 1, true) == "conflict");
}

TEST_CASE("who may read which list") {
  const std::set<Role> all{Role::moderator, Role::participant, Role::visitor};
  const std::set<Role> mods{Role::moderator};
  CHECK(may_list_affiliation(Affiliation::admin, Role::moderator, Affiliation::outcast, all));
  CHECK_FALSE(may_list_affiliation(Affiliation::member, Role::participant, Affiliation::outcast, all));
  CHECK_FALSE(may_list_affiliation(Affiliation::none, Role::participant, Affiliation::owner, all));
  CHECK(may_list_affiliation(Affiliation::none, Role::participant, Affiliation::member, all));
  CHECK_FALSE(may_list_affiliation(Affiliation::none, Role::participant, Affiliation::member, mods));
  CHECK(may_list_role(Affiliation::none, Role::moderator, Role::participant));
  CHECK_FALSE(may_list_role(Affiliation::none, Role::participant, Role::participant));
  CHECK(may_list_role(Affiliation::admin, Role::none, Role::moderator));
}

TEST_CASE("allowpm") {
  CHECK(may_send_pm(AllowPm::anyone, Role::visitor));
  CHECK_FALSE(may_send_pm(AllowPm::participants, Role::visitor));
  CHECK(may_send_pm(AllowPm::participants, Role::participant));
  CHECK_FALSE(may_send_pm(AllowPm::moderators, Role::participant));
  CHECK(may_send_pm(AllowPm::moderators, Role::moderator));
  CHECK_FALSE(may_send_pm(AllowPm::none, Role::moderator));
}

TEST_CASE("the configuration form: every field, and refusals leave the config as it was") {
  RoomConfig c;
  ConfigChange change;
  FormValues form{{"muc#roomconfig_roomname", {"Lobby"}},
                  {"muc#roomconfig_roomdesc", {"a room"}},
                  {"muc#roomconfig_persistentroom", {"1"}},
                  {"muc#roomconfig_publicroom", {"false"}},
                  {"muc#roomconfig_membersonly", {"true"}},
                  {"muc#roomconfig_moderatedroom", {"1"}},
                  {"muc#roomconfig_passwordprotectedroom", {"1"}},
                  {"muc#roomconfig_roomsecret", {"s3"}},
                  {"muc#roomconfig_maxusers", {"500"}},
                  {"muc#roomconfig_whois", {"anyone"}},
                  {"muc#roomconfig_allowinvites", {"1"}},
                  {"muc#roomconfig_changesubject", {"1"}},
                  {"muc#roomconfig_enablelogging", {"1"}},
                  {"muc#roomconfig_presencebroadcast", {"moderator", "participant"}},
                  {"muc#roomconfig_getmemberlist", {"moderator"}},
                  {"muc#roomconfig_allowpm", {"moderators"}},
                  {"muc#roomconfig_roomadmins", {"a@x", "b@x"}}};
  REQUIRE_FALSE(apply_config(c, form, 300, change).has_value());
  CHECK(c.name == "Lobby");
  CHECK(c.description == "a room");
  CHECK(c.persistent);
  CHECK_FALSE(c.public_room);
  CHECK(c.members_only);
  CHECK(c.moderated);
  CHECK(c.password_protected);
  CHECK(c.secret == "s3");
  CHECK(c.max_users == 300);  // capped by the service
  CHECK(c.non_anonymous);
  CHECK(c.allow_invites);
  CHECK(c.change_subject);
  CHECK(c.logging);
  CHECK(c.presence_broadcast == std::set<Role>{Role::moderator, Role::participant});
  CHECK(c.get_member_list == std::set<Role>{Role::moderator});
  CHECK(c.allow_pm == AllowPm::moderators);
  CHECK(change.any);
  CHECK(change.whois_changed);
  CHECK(change.logging_changed);
  CHECK(change.became_members_only);
  CHECK(change.has_admins);
  CHECK(change.admins.size() == 2);

  RoomConfig before = c;
  for (auto bad : std::vector<FormValues>{{{"muc#roomconfig_moderatedroom", {"maybe"}}},
                                          {{"muc#roomconfig_whois", {"everyone"}}},
                                          {{"muc#roomconfig_maxusers", {"-3"}}},
                                          {{"muc#roomconfig_allowpm", {"all"}}},
                                          {{"muc#roomconfig_presencebroadcast", {"king"}}},
                                          {{"muc#roomconfig_roomsecret", {""}}}}) {
    ConfigChange ch;
    CHECK(apply_config(c, bad, 300, ch).has_value());
    CHECK(encode_config(c) == encode_config(before));
  }
  CHECK(change.not_privacy);
  ConfigChange none;
  REQUIRE_FALSE(apply_config(c, {}, 300, none).has_value());
  CHECK_FALSE(none.any);
  CHECK_FALSE(none.not_privacy);
  // whois or logging alone: a privacy change (170-173), not a 104.
  ConfigChange privacy;
  REQUIRE_FALSE(apply_config(c, {{"muc#roomconfig_whois", {"moderators"}}, {"muc#roomconfig_enablelogging", {"0"}}},
                             300, privacy).has_value());
  CHECK(privacy.any);
  CHECK(privacy.whois_changed);
  CHECK(privacy.logging_changed);
  CHECK_FALSE(privacy.not_privacy);
}

TEST_CASE("history selection: maxstanzas, maxchars, seconds, since and the room's limit") {
  std::vector<HistoryMark> h{{1000, 10}, {2000, 10}, {3000, 10}, {4000, 10}};
  const int64_t now = 5000;
  CHECK(select_history(h, {}, now, 20) == 0);
  CHECK(select_history(h, {}, now, 3) == 1);
  HistoryRequest r;
  r.maxstanzas = 2;
  CHECK(select_history(h, r, now, 20) == 2);
  r = {};
  r.maxstanzas = 0;
  CHECK(select_history(h, r, now, 20) == 4);
  r = {};
  r.maxchars = 25;  // two whole messages fit, not three
  CHECK(select_history(h, r, now, 20) == 2);
  r = {};
  r.maxchars = 0;
  CHECK(select_history(h, r, now, 20) == 4);
  r = {};
  r.seconds = 2;  // sent at 3000 or later
  CHECK(select_history(h, r, now, 20) == 2);
  r = {};
  r.since_ms = 2000;  // after it
  CHECK(select_history(h, r, now, 20) == 2);
  r.maxstanzas = 1;
  CHECK(select_history(h, r, now, 20) == 3);
}

TEST_CASE("XEP-0082 date-times") {
  CHECK(parse_datetime_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_datetime_ms("1970-01-01T00:00:01.5Z") == 1500);
  CHECK(parse_datetime_ms("2002-09-10T23:08:25Z") == 1031699305000);
  CHECK(parse_datetime_ms("2002-09-10T23:08:25-07:00") == 1031699305000 + 7 * 3600 * 1000);
  CHECK_FALSE(parse_datetime_ms("2002-09-10 23:08:25Z").has_value());
  CHECK_FALSE(parse_datetime_ms("2002-09-10T23:08:25").has_value());
  CHECK_FALSE(parse_datetime_ms("yesterday").has_value());
}

TEST_CASE("SHA-256 test vectors and occupant ids") {
  auto hex = [](const std::string& s) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
      out += d[c >> 4];
      out += d[c & 15];
    }
    return out;
  };
  CHECK(hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(base64("ab") == "YWI=");
  CHECK(base64("abc") == "YWJj");
  CHECK(base64("a") == "YQ==");
  // XEP-0486 avatar hashes: SHA-1 of the image decoded from a (folded) BINVAL.
  CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(base64_decode("YWI=") == std::optional<std::string>("ab"));
  CHECK(base64_decode("YQ==") == std::optional<std::string>("a"));
  CHECK(base64_decode(" YW\nJj ") == std::optional<std::string>("abc"));
  CHECK(!base64_decode("YWJ"));
  CHECK(!base64_decode("Y!==").has_value());
  const std::string id = occupant_id("secret", "alice@example.org");
  CHECK(id == occupant_id("secret", "alice@example.org"));
  CHECK(id != occupant_id("secret", "bob@example.org"));
  CHECK(id != occupant_id("other", "alice@example.org"));
  CHECK(id.find("alice") == std::string::npos);
}

TEST_CASE("stored configurations round-trip") {
  RoomConfig c;
  c.name = "a=b\nc\\d";
  c.persistent = true;
  c.members_only = true;
  c.max_users = 42;
  c.secret = "pw";
  c.password_protected = true;
  c.presence_broadcast = {Role::moderator};
  c.allow_pm = AllowPm::none;
  c.vcard = "<vCard xmlns='vcard-temp'>\n<PHOTO/></vCard>";
  c.hats["a@example.org"] = {Hat{"urn:example:hats#scribe", "Scribe = notes"}, Hat{"urn:example:hats#host", ""}};
  RoomConfig d = decode_config(encode_config(c), 100);
  CHECK(encode_config(d) == encode_config(c));
  CHECK(d.name == c.name);
  CHECK(d.vcard == c.vcard);
  REQUIRE(d.hats.count("a@example.org") == 1);
  CHECK(d.hats["a@example.org"].size() == 2);
  CHECK(d.hats["a@example.org"][0].title == "Scribe = notes");
  CHECK(d.hats["a@example.org"][1].uri == "urn:example:hats#host");
  CHECK(decode_config("max_users=500\nunknown=1\n", 100).max_users == 100);
}

TEST_CASE("the message rate bucket") {
  RateBucket b;
  CHECK(b.take(0, 60, 2));
  CHECK(b.take(0, 60, 2));
  CHECK_FALSE(b.take(0, 60, 2));
  CHECK(b.take(1000, 60, 2));  // one a second refills
  CHECK_FALSE(b.take(1000, 60, 2));
  RateBucket off;
  for (int i = 0; i < 100; ++i) CHECK(off.take(0, 0, 1));
}
