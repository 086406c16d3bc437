// core/addr/prep.hpp - preparation of the three parts of an XMPP address.
//
// Stringprep (libidn: Nodeprep, Nameprep + IDNA2003, Resourceprep) is the mapping
// and comparison rule, as in RFC 6122 and in the other XMPP servers we federate
// with. On top of it the localpart refuses what RFC 7622 (PRECIS) refuses and
// Nodeprep would let through: symbols, punctuation and compatibility characters.
// Each function returns the canonical form, at most 1023 bytes, and refuses input
// whose preparation is not stable (preparing the result again would change it:
// libidn's NFKC and the PR-29 sequences), so every prepared part prepares to
// itself and any number of preparations along a path agree.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/addr/jid_error.hpp"
#include "parley/result.hpp"

namespace parley {

inline constexpr size_t kJidPartMaxBytes = 1023;

// Localpart (also: account usernames). Case-folded, NFKC; unassigned code points
// refused. Empty input -> bad_localpart.
Result<std::string, JidError> nodeprep(std::string_view localpart);

// Domainpart: one trailing dot stripped; "[IPv6]" and dotted IPv4 literals kept as
// they are; otherwise IDNA2003 with STD3 rules (letters, digits, hyphens), labels
// of 1..63 octets in their A-label form, returned lower case with U-labels.
Result<std::string, JidError> nameprep_domain(std::string_view domainpart);

// Resourcepart: NFKC, case kept, spaces and '@' '/' allowed; unassigned code
// points allowed (emoji in resources are common and newer than Unicode 3.2).
Result<std::string, JidError> resourceprep(std::string_view resourcepart);

// The same through libidn whatever the input: the functions above take a
// path of their own for ASCII input, which must give exactly these results
// (the differential tests and fuzz target call both).
namespace detail {
Result<std::string, JidError> nodeprep_idn(std::string_view localpart);
Result<std::string, JidError> nameprep_domain_idn(std::string_view domainpart);
Result<std::string, JidError> resourceprep_idn(std::string_view resourcepart);
}  // namespace detail

}  // namespace parley
