// core/sasl/failure.hpp - the SASL failure conditions of RFC 6120 section 6.5.
#pragma once

#include <string_view>

namespace parley::sasl {

enum class Failure {
  aborted,
  account_disabled,
  credentials_expired,
  encryption_required,
  incorrect_encoding,
  invalid_authzid,
  invalid_mechanism,
  malformed_request,
  mechanism_too_weak,
  not_authorized,
  temporary_auth_failure,
};

// The element name inside <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>, e.g. "not-authorized".
std::string_view condition_name(Failure failure);

}  // namespace parley::sasl
