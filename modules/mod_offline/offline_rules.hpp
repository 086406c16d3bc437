// The storage rules of offline messages (XEP-0160 section 4, RFC 6121
// section 8.5.2.2, XEP-0334 hints) and the XEP-0203 delay stamp, kept apart
// from the module so that they can be tested without a host.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace parley::offline {

inline constexpr std::string_view ns_delay = "urn:xmpp:delay";
inline constexpr std::string_view ns_chatstates = "http://jabber.org/protocol/chatstates";
inline constexpr std::string_view ns_hints = "urn:xmpp:hints";

// What happens to a message for a user with no available resource.
enum class Disposition {
  store,   // kept for the user's next non-negative available presence
  drop,    // silently ignored (RFC 6121: error and headline messages)
  refuse,  // not stored: the sender gets service-unavailable (RFC 6121 8.5.2.2.1)
};

// A direct child of the message: its local name and namespace.
struct ChildName {
  std::string_view name;
  std::string_view ns;
};

// `type` is the message's type attribute ("" when absent).
Disposition classify(std::string_view type, const std::vector<ChildName>& children);

// An XEP-0082 DateTime in UTC with milliseconds: "2002-09-10T23:08:25.123Z".
std::string delay_stamp(std::chrono::system_clock::time_point when);

}  // namespace parley::offline
