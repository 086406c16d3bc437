// Addresses as mod_blocking compares them (XEP-0191 §"JID Matching", which
// defers to XEP-0016 §2.1): a blocked item and a stanza's address, both
// split and normalized the same way so that comparison is string equality.
//
// A module sees only the SDK and the standard library, not the server's
// stringprep, so normalization here is the ASCII part of it: the localpart and
// the domain are case-folded for ASCII letters, the resource is kept as is.
// Addresses the server stamps are already fully prepared, so for them this is
// the identity; for items a client typed in ASCII it is exact.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mod_blocking {

struct BlockJid {
  std::string local;     // empty: none
  std::string domain;    // never empty
  std::string resource;  // empty: none

  bool has_local() const { return !local.empty(); }
  bool has_resource() const { return !resource.empty(); }
  std::string bare() const;  // "local@domain" or "domain"
  std::string full() const;  // bare() plus "/resource" when there is one

  bool operator==(const BlockJid&) const = default;
};

// Splits (the first '/' starts the resource, then the first '@' ends the
// localpart, RFC 7622 §3.1) and checks every part; nullopt for an address
// that is not a JID (the command then answers jid-malformed).
std::optional<BlockJid> parse_jid(std::string_view text);

// The forms of `address` an item is compared with, in XEP-0016's order:
// user@domain/resource, user@domain, domain/resource, domain, then each
// parent domain (XEP-0191: a domain item also matches its subdomains).
// Forms that do not apply (no localpart, no resource) are left out.
std::vector<std::string> match_forms(const BlockJid& address);

// Whether the item (a normalized JID string, as parse_jid(...)->full() gives)
// blocks `address`.
bool item_blocks(std::string_view item, const BlockJid& address);

}  // namespace mod_blocking
