#include "core/modules/host_api_keys.hpp"

#include <cstring>

#include "core/modules/module_instance.hpp"
#include "core/sasl/crypto.hpp"
#include "core/server/server_context.hpp"

namespace parley::host_keys {

std::string derive(std::string_view secret, std::string_view module, std::string_view host, std::string_view label,
                   std::size_t len) {
  std::string message("parley module key");
  for (std::string_view part : {module, host, label}) {
    message.push_back('\0');
    message.append(part);
  }
  std::string key = sasl::hmac(sasl::Hash::sha256, secret, message);
  key.resize(len < key.size() ? len : key.size());
  return key;
}

int derive_key(parley_module* m, parley_str label, uint8_t* out, size_t len) {
  if (m == nullptr || m->ctx == nullptr || out == nullptr || len == 0 || len > kMaxDerivedKeyBytes) return 0;
  const std::string key = derive(m->ctx->server_secret, m->library->name, m->host,
                                 std::string_view(label.ptr == nullptr ? "" : label.ptr, label.len), len);
  std::memcpy(out, key.data(), key.size());
  return 1;
}

}  // namespace parley::host_keys
