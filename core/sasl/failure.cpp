#include "core/sasl/failure.hpp"

namespace parley::sasl {

std::string_view condition_name(Failure failure) {
  switch (failure) {
    case Failure::aborted: return "aborted";
    case Failure::account_disabled: return "account-disabled";
    case Failure::credentials_expired: return "credentials-expired";
    case Failure::encryption_required: return "encryption-required";
    case Failure::incorrect_encoding: return "incorrect-encoding";
    case Failure::invalid_authzid: return "invalid-authzid";
    case Failure::invalid_mechanism: return "invalid-mechanism";
    case Failure::malformed_request: return "malformed-request";
    case Failure::mechanism_too_weak: return "mechanism-too-weak";
    case Failure::not_authorized: return "not-authorized";
    case Failure::temporary_auth_failure: return "temporary-auth-failure";
  }
  return "not-authorized";
}

}  // namespace parley::sasl
