// Addresses as mod_blocking compares them (XEP-0191 §"JID Matching", which
// defers to XEP-0016 §2.1). Parsing and preparation are the host's
// (parley::Jid on jid_prepare): a blocked item is stored as the prepared
// full() of what the client sent, a stanza's address is prepared by the
// server, so matching is string equality over the forms below.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parley/module.hpp"

namespace mod_blocking {

// The forms of `address` an item is compared with, in XEP-0016's order:
// user@domain/resource, user@domain, domain/resource, domain, then each
// parent domain (XEP-0191: a domain item also matches its subdomains).
// Forms that do not apply (no localpart, no resource) are left out.
std::vector<std::string> match_forms(const parley::Jid& address);

// Whether the item (a prepared JID string, as parley::Jid::full() gives)
// blocks `address`.
bool item_blocks(std::string_view item, const parley::Jid& address);

// Where the user's unavailable presence goes when `added` items are blocked
// (XEP-0191 section 3.3: "only if the contact is allowed to receive presence
// notifications from the user", i.e. RFC 6121's 'from' or 'both' subscription).
// `subscribed` are those contacts' prepared bare JIDs. An item naming a user goes
// as it is (a full JID: that resource) if its bare JID is subscribed; an item
// without a localpart (a domain) covers the subscribed contacts it blocks. In the
// items' order, each address once.
std::vector<std::string> unavailable_targets(const std::vector<std::string>& added,
                                             const std::vector<std::string>& subscribed);

}  // namespace mod_blocking
