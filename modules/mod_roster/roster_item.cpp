#include "roster_item.hpp"

#include <algorithm>

namespace mod_roster {

SetCheck check_roster_set(const RosterSetRequest& request, std::string_view own_bare, const RosterSetLimits& limits) {
  auto fail = [](std::string condition, std::string text) {
    return SetCheck{std::nullopt, SetError{std::move(condition), std::move(text)}};
  };
  // RFC 6121 2.3.3: exactly one item per set.
  if (request.item_count != 1) return fail("bad-request", "a roster set carries exactly one <item/>");
  if (!request.jid) return fail("bad-request", "the <item/> has no 'jid'");
  const auto& jid = *request.jid;
  if (!jid) return fail("jid-malformed", "the item's 'jid' is not a valid JID: " +
                                             std::string(parley::jid_error_text(jid.error())));
  if (jid->has_resource()) return fail("bad-request", "a roster item is a bare JID");
  RosterSet set;
  set.contact = jid->bare_str();
  if (set.contact == own_bare) return fail("not-allowed", "the user's own JID is not a roster item");
  // RFC 6121 2.1.2.5: in a set only 'remove' means something; any other
  // value of 'subscription' is ignored (and so is 'ask', 2.1.2.2, and
  // 'approved', 2.1.2.1: the server alone manages those).
  set.remove = request.subscription && *request.subscription == "remove";
  if (set.remove) return SetCheck{std::move(set), std::nullopt};
  if (request.name) {
    if (request.name->size() > limits.max_name_bytes)
      return fail("not-acceptable", "the item's name is longer than " + std::to_string(limits.max_name_bytes) +
                                        " bytes");
    if (!request.name->empty()) set.name = *request.name;
  }
  // Like a long group name (2.3.3), too many groups is a size the server
  // does not accept: not-acceptable, not a full roster.
  if (request.groups.size() > limits.max_groups)
    return fail("not-acceptable", "an item has at most " + std::to_string(limits.max_groups) + " groups");
  for (const std::string& group : request.groups) {
    if (group.empty()) return fail("not-acceptable", "an empty <group/>");
    if (group.size() > limits.max_group_bytes)
      return fail("not-acceptable",
                  "a group name is longer than " + std::to_string(limits.max_group_bytes) + " bytes");
    if (std::find(set.groups.begin(), set.groups.end(), group) != set.groups.end())
      return fail("bad-request", "the group '" + group + "' appears twice");
    set.groups.push_back(group);
  }
  return SetCheck{std::move(set), std::nullopt};
}

std::size_t item_cost(std::string_view contact, const std::optional<std::string>& name,
                      std::string_view encoded_groups) {
  return contact.size() + (name ? name->size() : 0) + encoded_groups.size() + item_overhead_bytes;
}

std::size_t utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text.size();
  std::size_t cut = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the
  // character that would be split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

std::string encode_groups(const std::vector<std::string>& groups) {
  std::string out;
  for (const std::string& g : groups) {
    out += std::to_string(g.size());
    out += ':';
    out += g;
  }
  return out;
}

std::vector<std::string> decode_groups(std::string_view stored) {
  std::vector<std::string> out;
  while (!stored.empty()) {
    const auto colon = stored.find(':');
    if (colon == std::string_view::npos || colon == 0) break;
    std::size_t len = 0;
    for (char c : stored.substr(0, colon)) {
      if (c < '0' || c > '9') return out;
      len = len * 10 + static_cast<std::size_t>(c - '0');
      if (len > stored.size()) return out;
    }
    stored.remove_prefix(colon + 1);
    if (len > stored.size()) break;
    out.emplace_back(stored.substr(0, len));
    stored.remove_prefix(len);
  }
  return out;
}

std::optional<int64_t> parse_version(std::string_view ver) {
  if (ver.empty() || ver.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : ver) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

VersionPlan plan_versioned_get(std::optional<std::string_view> client_ver, int64_t current) {
  if (!client_ver) return {};
  auto v = parse_version(*client_ver);
  // Empty (no cache yet), not ours, or from the future (a roster that was
  // reset): the whole roster.
  if (!v || *v > current) return {};
  return VersionPlan{false, *v};
}

}  // namespace mod_roster
