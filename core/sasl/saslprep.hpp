// core/sasl/saslprep.hpp - SASLprep (RFC 4013), the stringprep profile for SASL
// user names and passwords.
#pragma once

#include <string>
#include <string_view>

#include "parley/result.hpp"

namespace parley::sasl {

// Unassigned code points are refused (the "stored strings" rule), so what is
// accepted at registration is exactly what is accepted at login. Input must be
// UTF-8 without NUL. The result may be empty (e.g. a lone soft hyphen). Input
// whose preparation is not stable (SASLprep of the result differs) is refused,
// so PLAIN, SCRAM and account creation always agree on a password.
Result<std::string, std::string> saslprep(std::string_view text);

}  // namespace parley::sasl
