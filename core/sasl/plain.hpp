// core/sasl/plain.hpp - the PLAIN mechanism (RFC 4616): one message, no state.
#pragma once

#include <string>
#include <string_view>

#include "core/sasl/failure.hpp"
#include "parley/result.hpp"

namespace parley::sasl {

struct PlainMessage {
  std::string authzid;   // as sent (a JID in XMPP, or empty); not prepared
  std::string authcid;   // SASLprep'd, never empty
  std::string password;  // as sent; verify_password() prepares it
};

inline constexpr size_t kPlainAuthzidMaxBytes = 3071;  // a full JID
inline constexpr size_t kPlainAuthcidMaxBytes = 1023;
inline constexpr size_t kPlainPasswordMaxBytes = 1023;

// "[authzid] NUL authcid NUL passwd" (the decoded <auth/> payload). Exactly two
// NULs, UTF-8 parts, non-empty authcid and password, lengths within the limits
// above; otherwise malformed_request.
Result<PlainMessage, Failure> parse_plain(std::string_view message);

}  // namespace parley::sasl
