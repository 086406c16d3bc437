// parley/sdk/subscription.hpp - what a roster item's subscription state (RFC 6121 2.1.2.5:
// none, to, from, both; "remove" never appears in a stored item) lets through, written
// once for the modules that decide by it (presence, PEP notifications, disco, last
// activity, blocking's unavailable presences).
#pragma once

#include <string_view>

namespace parley {

// The contact is subscribed to the user's presence: it gets the user's presence, PEP
// notifications, last activity, account disco ("from" or "both").
inline bool subscription_has_from(std::string_view subscription) {
  return subscription == "from" || subscription == "both";
}

// The user is subscribed to the contact's presence ("to" or "both").
inline bool subscription_has_to(std::string_view subscription) {
  return subscription == "to" || subscription == "both";
}

}  // namespace parley
