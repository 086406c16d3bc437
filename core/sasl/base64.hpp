// core/sasl/base64.hpp - base64 (RFC 4648 section 4) as SASL in XMPP uses it.
#pragma once

#include <string>
#include <string_view>

#include "parley/result.hpp"

namespace parley::sasl {

std::string base64_encode(std::string_view data);

// Strict: only the base64 alphabet, length a multiple of 4, '=' only as final
// padding, zero padding bits, no whitespace (RFC 6120 section 6.4.2 forbids line
// breaks; bad data earns <incorrect-encoding/>). "" decodes to "".
//
// Note for the caller of <auth/> and <response/>: the XMPP text "=" means an
// empty initial response and is not base64; handle it before calling this.
Result<std::string, std::string> base64_decode(std::string_view text);

}  // namespace parley::sasl
