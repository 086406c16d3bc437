// mod_roster/jid_prep.hpp - the contact addresses a roster is keyed by.
//
// The SDK has no JID preparation entry yet, so this is the part of RFC 7622
// a module can do with the standard library: split, check the structure and
// the characters a localpart refuses, and case-fold ASCII in the localpart
// and the domainpart (what the core's stringprep does for every ASCII JID).
// Non-ASCII text is kept as sent: two spellings of one non-ASCII JID that
// differ only in case are two roster items until the host exports its
// preparation (see the module's report).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mod_roster {

struct PreparedJid {
  std::string local;
  std::string domain;
  std::string resource;

  std::string bare() const { return local.empty() ? domain : local + "@" + domain; }
  std::string full() const { return resource.empty() ? bare() : bare() + "/" + resource; }
};

// nullopt: not a valid JID.
std::optional<PreparedJid> prepare_jid(std::string_view text);

}  // namespace mod_roster
