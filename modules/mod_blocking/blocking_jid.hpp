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

}  // namespace mod_blocking
