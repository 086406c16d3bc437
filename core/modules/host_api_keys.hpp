// A module's own keys (ABI 1.9 derive_key, issue 11): derived from the server's
// persistent secret (ServerContext::server_secret, data_dir/sasl_secret), the module's
// name and host, and the module's label. host_api.cpp puts the entry in the table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parley/module.h"

namespace parley::host_keys {

inline constexpr std::size_t kMaxDerivedKeyBytes = 32;  // one HMAC-SHA-256

// The bytes derive_key gives: HMAC-SHA-256 under `secret` of the three names, each
// ended by a NUL so that no two triples give the same message; the first `len`.
std::string derive(std::string_view secret, std::string_view module, std::string_view host, std::string_view label,
                   std::size_t len);

int derive_key(parley_module* m, parley_str label, uint8_t* out, size_t len);

}  // namespace parley::host_keys
