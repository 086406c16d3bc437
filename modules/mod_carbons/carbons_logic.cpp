#include "carbons_logic.hpp"

#include <algorithm>
#include <climits>

namespace parley::mod_carbons {

bool eligible(const MessageFacts& message, Direction direction) {
  if (message.is_carbon || message.is_private || message.no_copy) return false;
  // groupchat: the room gives every joined client its copy; error: only as an
  // answer to an eligible message, which the module checks.
  if (message.type == "groupchat" || message.type == "error") return false;
  if (message.muc_invitation) return true;
  if (message.from_muc && message.peer_is_full)
    return direction == Direction::sent;  // the user's own PM to an occupant; not one from an occupant
  if (message.type == "chat") return true;
  if ((message.type.empty() || message.type == "normal") && message.has_body) return true;
  return message.im_payload;
}

std::vector<uint64_t> received_copy_targets(const std::vector<UserSession>& sessions, uint64_t delivered_to,
                                            std::string_view to_resource, std::string_view sender_resource) {
  std::vector<uint64_t> got_original;
  bool direct = false;
  if (!to_resource.empty()) {
    for (const UserSession& s : sessions)
      if (s.resource == to_resource && s.id == delivered_to) direct = true;
  }
  if (direct) {
    got_original.push_back(delivered_to);
  } else {
    // RFC 6121 8.5.2.1.1 as the router applies it: the available resources of
    // the highest non-negative priority.
    int best = INT_MIN;
    for (const UserSession& s : sessions)
      if (s.available && s.priority >= 0) best = std::max(best, s.priority);
    for (const UserSession& s : sessions)
      if (s.available && s.priority >= 0 && s.priority == best) got_original.push_back(s.id);
    // The session it reached counts even if its presence changed since it
    // was routed.
    if (std::find(got_original.begin(), got_original.end(), delivered_to) == got_original.end())
      got_original.push_back(delivered_to);
    // Each of them runs this: one sends the copies.
    if (*std::min_element(got_original.begin(), got_original.end()) != delivered_to) return {};
  }
  std::vector<uint64_t> out;
  for (const UserSession& s : sessions) {
    if (std::find(got_original.begin(), got_original.end(), s.id) != got_original.end()) continue;
    if (!sender_resource.empty() && s.resource == sender_resource) continue;
    out.push_back(s.id);
  }
  return out;
}

std::vector<uint64_t> sent_copy_targets(const std::vector<UserSession>& sessions, uint64_t sender,
                                        bool to_own_account) {
  std::vector<uint64_t> out;
  if (to_own_account) return out;
  for (const UserSession& s : sessions)
    if (s.id != sender) out.push_back(s.id);
  return out;
}

}  // namespace parley::mod_carbons
