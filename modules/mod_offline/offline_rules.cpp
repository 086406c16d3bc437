#include "offline_rules.hpp"

#include <cstdio>
#include <ctime>

#include "parley/sdk/stamp.hpp"

namespace parley::offline {

namespace {

bool has_hint(const std::vector<ChildName>& children, std::string_view hint) {
  for (const ChildName& c : children)
    if (c.ns == ns_hints && c.name == hint) return true;
  return false;
}

// XEP-0160: a chat message "that contains only XEP-0085 content" is not
// stored. A <thread/> and processing hints travel with chat states and are no
// content of their own; neither is an empty message.
bool has_content(const std::vector<ChildName>& children) {
  for (const ChildName& c : children) {
    if (c.ns == ns_chatstates || c.ns == ns_hints) continue;
    if (c.name == "thread" && (c.ns == "jabber:client" || c.ns == "jabber:server" || c.ns.empty())) continue;
    return true;
  }
  return false;
}

}  // namespace

Disposition classify(std::string_view type, const std::vector<ChildName>& children) {
  // RFC 6121 8.5.2.2.1: an error to an unavailable user is silently ignored;
  // XEP-0334 <store/> explicitly excludes errors.
  if (type == "error") return Disposition::drop;
  // RFC 6121 8.5.2.2.2: groupchat MUST get an error (service-unavailable);
  // XEP-0160: a user without presence cannot be in a room, nothing to store.
  if (type == "groupchat") return Disposition::refuse;
  // XEP-0334: the sender asked for no storage; the message is not delivered,
  // which RFC 6121 says must be reported.
  if (has_hint(children, "no-store")) return type == "headline" ? Disposition::drop : Disposition::refuse;
  bool forced = has_hint(children, "store");
  // RFC 6121 8.5.2.2.3: headlines are ignored; XEP-0160: time-sensitive.
  if (type == "headline") return forced ? Disposition::store : Disposition::drop;
  // chat, normal, no type, or a type RFC 6121 says to treat as normal.
  if (forced || has_content(children)) return Disposition::store;
  return Disposition::refuse;
}

std::string delay_stamp(std::chrono::system_clock::time_point when) { return parley::xep0082_stamp(when); }

}  // namespace parley::offline
