// mod_muc's pure logic (XEP-0045): roles and affiliations with the rules of
// who may change what, the room configuration and its form fields, history
// selection on join, and XEP-0421 occupant ids. No host calls: unit-tested in
// tests/unit/modules/mod_muc/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace muc {

enum class Affiliation { outcast = 0, none = 1, member = 2, admin = 3, owner = 4 };
enum class Role { none = 0, visitor = 1, participant = 2, moderator = 3 };

std::string_view to_string(Affiliation a) noexcept;
std::string_view to_string(Role r) noexcept;
std::optional<Affiliation> parse_affiliation(std::string_view s) noexcept;
std::optional<Role> parse_role(std::string_view s) noexcept;

// The role an occupant gets on entering (XEP-0045 §5.1.2 / table of defaults).
Role default_role(Affiliation a, bool moderated) noexcept;

// Whether an occupant may change another's role to `to` (§8.2 kick, §8.3-8.5
// voice, §9.6-9.7 moderator): "" if allowed, else the stanza error condition.
// `self`: the target is the actor's own account.
std::string check_role_change(Affiliation actor_aff, Role actor_role, Affiliation target_aff, Role target_role,
                              Role to, bool self = false) noexcept;
// Whether `actor_aff` may change an affiliation `target_aff` -> `to` (§9, §10):
// "" if allowed, else the condition. `owners` counts the room's owners (the
// last owner may not step down: conflict, §10.9).
std::string check_affiliation_change(Affiliation actor_aff, Affiliation target_aff, Affiliation to,
                                     std::size_t owners, bool self) noexcept;
// Who may read the list of a role or an affiliation (§8.5, §9.5, §9.8, §10.5, §10.8).
// `member_list_roles` is the room's muc#roomconfig_getmemberlist.
bool may_list_role(Affiliation actor_aff, Role actor_role, Role listed) noexcept;
bool may_list_affiliation(Affiliation actor_aff, Role actor_role, Affiliation listed,
                          const std::set<Role>& member_list_roles) noexcept;

// muc#roomconfig_allowpm: who may send private messages.
enum class AllowPm { anyone, participants, moderators, none };
std::string_view to_string(AllowPm p) noexcept;
std::optional<AllowPm> parse_allowpm(std::string_view s) noexcept;
bool may_send_pm(AllowPm p, Role sender) noexcept;

// XEP-0317: a hat an account wears in a room.
struct Hat {
  std::string uri, title;
};

struct RoomConfig {
  std::string name;
  std::string description;
  std::string lang;
  bool persistent = false;
  bool public_room = true;
  bool members_only = false;
  bool moderated = false;
  bool password_protected = false;
  std::string secret;
  int64_t max_users = 200;
  bool non_anonymous = false;  // whois anyone (else moderators)
  bool allow_invites = false;
  bool change_subject = false;
  bool logging = false;
  std::set<Role> presence_broadcast{Role::moderator, Role::participant, Role::visitor};
  std::set<Role> get_member_list{Role::moderator, Role::participant, Role::visitor};
  AllowPm allow_pm = AllowPm::anyone;
  // XEP-0486: the room's vCard-temp (its XML; empty: none), set by owners.
  std::string vcard;
  // XEP-0317: the hats of each account (real bare JID), set by admins and
  // owners; kept with the configuration (not a form field).
  std::map<std::string, std::vector<Hat>> hats;
};

// A submitted data form: var -> values, in order.
using FormValues = std::map<std::string, std::vector<std::string>>;

// What applying a form changed, for the status codes of §10.2.1
// (104: a change that is not about privacy; 172/173: whois; 170/171: logging).
struct ConfigChange {
  bool any = false;
  bool not_privacy = false;  // a change of a field other than whois and logging (104)
  bool whois_changed = false;
  bool logging_changed = false;
  bool became_members_only = false;
  std::vector<std::string> admins;  // muc#roomconfig_roomadmins, if present
  std::vector<std::string> owners;  // muc#roomconfig_roomowners, if present
  bool has_admins = false, has_owners = false;
};

// Applies a muc#roomconfig form to `config`; an error text (the caller
// answers not-acceptable / bad-request) leaves `config` unchanged.
// `max_users_limit` is the service's cap.
std::optional<std::string> apply_config(RoomConfig& config, const FormValues& form, int64_t max_users_limit,
                                        ConfigChange& change);
// The form's boolean forms: 1/0/true/false.
std::optional<bool> parse_form_bool(std::string_view s) noexcept;

// One stored groupchat message of the room's history.
struct HistoryMark {
  int64_t ms = 0;          // when it was sent (ms since the epoch)
  std::size_t chars = 0;   // the size of its XML (maxchars counts characters of the XML)
};
struct HistoryRequest {
  std::optional<int64_t> maxchars, maxstanzas, seconds, since_ms;
};
// The index of the first entry to send (entries are oldest first), within
// the request and the room's `limit` stanzas: [result, size) are sent.
std::size_t select_history(const std::vector<HistoryMark>& entries, const HistoryRequest& request, int64_t now_ms,
                           std::size_t limit) noexcept;

// XEP-0082 date-time ("1970-01-01T00:00:00Z", with fractions or an offset) in
// ms since the epoch; nullopt if malformed.
std::optional<int64_t> parse_datetime_ms(std::string_view s) noexcept;

// XEP-0421: an id stable per (room secret, real bare JID), not revealing the JID.
std::string occupant_id(std::string_view room_secret, std::string_view real_bare_jid);
// SHA-256 (FIPS 180-4) of `data`; exposed for its test vectors.
std::string sha256(std::string_view data);
std::string base64(std::string_view data);
// XEP-0153 / XEP-0486 avatar hashes: SHA-1 (hex) of the decoded image.
std::string sha1_hex(std::string_view data);
// base64 (whitespace ignored, as a vCard's BINVAL folds lines); nullopt if malformed.
std::optional<std::string> base64_decode(std::string_view text);

// A per-occupant message rate limit: a token bucket of `burst` messages
// refilled at `per_minute`.
struct RateBucket {
  double tokens = -1;  // < 0: full on first use
  int64_t last_ms = 0;
  bool take(int64_t now_ms, int64_t per_minute, int64_t burst) noexcept;
};

}  // namespace muc

namespace muc {

// The stored form of a room's configuration: "key=value" lines, '\' escaping
// '\', newline and '='. decode_config ignores unknown keys (a newer
// version's) and keeps the defaults of missing ones.
std::string encode_config(const RoomConfig& config);
RoomConfig decode_config(std::string_view text, int64_t max_users_limit);

}  // namespace muc
