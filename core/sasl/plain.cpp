#include "core/sasl/plain.hpp"

#include "core/addr/utf8.hpp"
#include "core/sasl/saslprep.hpp"

namespace parley::sasl {

Result<PlainMessage, Failure> parse_plain(std::string_view message) {
  const size_t nul1 = message.find('\0');
  if (nul1 == std::string_view::npos) return unexpected(Failure::malformed_request);
  const size_t nul2 = message.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos) return unexpected(Failure::malformed_request);
  const std::string_view authzid = message.substr(0, nul1);
  const std::string_view authcid = message.substr(nul1 + 1, nul2 - nul1 - 1);
  const std::string_view password = message.substr(nul2 + 1);  // a third NUL fails is_clean_utf8

  if (authcid.empty() || password.empty()) return unexpected(Failure::malformed_request);
  if (authzid.size() > kPlainAuthzidMaxBytes || authcid.size() > kPlainAuthcidMaxBytes ||
      password.size() > kPlainPasswordMaxBytes) {
    return unexpected(Failure::malformed_request);
  }
  if (!is_clean_utf8(authzid) || !is_clean_utf8(authcid) || !is_clean_utf8(password)) {
    return unexpected(Failure::malformed_request);
  }
  auto prepared = saslprep(authcid);
  if (!prepared || prepared->empty()) return unexpected(Failure::malformed_request);

  PlainMessage m;
  m.authzid = std::string(authzid);
  m.authcid = std::move(*prepared);
  m.password = std::string(password);
  return m;
}

}  // namespace parley::sasl
