// mod_roster/roster_item.hpp - a roster item, the checks of a roster set
// (RFC 6121 2.1, 2.3.3, 2.5), the stored form of groups, and which answer a
// versioned roster get deserves (RFC 6121 2.6 / XEP-0237). The standard
// library and parley::Jid (an address the host prepared) only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.hpp"
#include "subscription_state.hpp"

namespace mod_roster {

struct RosterItem {
  std::string jid;  // prepared bare JID of the contact
  SubState state;
  std::optional<std::string> name;
  std::vector<std::string> groups;
  int64_t ver = 0;
};

// A roster set as it came, before any check.
struct RosterSetRequest {
  std::size_t item_count = 0;  // <item/> children of <query/>
  // The first item's 'jid' as the host prepared it (parley::Jid::parse), or why it refused it.
  std::optional<parley::Result<parley::Jid, parley::JidError>> jid;
  std::optional<std::string> name;
  std::optional<std::string> subscription;
  std::vector<std::string> groups;  // text of each <group/>
};

struct RosterSetLimits {
  std::size_t max_name_bytes = 1023;
  std::size_t max_group_bytes = 1023;
  std::size_t max_groups = 32;  // <group/> elements per item
};

// A roster set that passed every check.
struct RosterSet {
  std::string contact;  // prepared bare JID
  bool remove = false;
  std::optional<std::string> name;  // nullopt or non-empty
  std::vector<std::string> groups;
};

struct SetError {
  std::string condition;  // RFC 6120 stanza error condition
  std::string text;
};

struct SetCheck {
  std::optional<RosterSet> set;
  std::optional<SetError> error;
};

// own_bare: the user's own prepared bare JID.
SetCheck check_roster_set(const RosterSetRequest& request, std::string_view own_bare, const RosterSetLimits& limits);

// What one item counts toward the roster's byte budget (max_roster_bytes):
// its stored bytes (contact, name, groups as encode_groups stores them) plus
// a fixed share for the markup of <item/>. The same sum is computed in SQL
// over the stored rows (mod_roster.cpp, roster_bytes_sql), so both must
// change together.
inline constexpr std::size_t item_overhead_bytes = 64;
std::size_t item_cost(std::string_view contact, const std::optional<std::string>& name,
                      std::string_view encoded_groups);

// The longest prefix of `text` of at most `max` bytes that ends on a UTF-8
// character boundary (a cut never splits a character).
std::size_t utf8_prefix(std::string_view text, std::size_t max);

// Groups stored in one column: each as "<bytes>:<text>", so that any text
// (newlines included) round-trips.
std::string encode_groups(const std::vector<std::string>& groups);
std::vector<std::string> decode_groups(std::string_view stored);

// The answer to a roster get carrying `client_ver` when the roster is at
// `current`: the full roster, or an empty result followed by pushes of what
// changed after `since`.
struct VersionPlan {
  bool full = true;
  int64_t since = 0;
};
VersionPlan plan_versioned_get(std::optional<std::string_view> client_ver, int64_t current);
std::optional<int64_t> parse_version(std::string_view ver);

}  // namespace mod_roster
