// core/sasl/scram_credentials.hpp - what the server stores for SCRAM (RFC 5802
// section 3): never the password, only a salted, iterated derivation of it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/sasl/crypto.hpp"

namespace parley::sasl {

struct ScramCredentials {
  Hash hash = Hash::sha256;
  std::string salt;        // raw bytes
  uint32_t iterations = 0;
  std::string stored_key;  // raw bytes: H(HMAC(SaltedPassword, "Client Key"))
  std::string server_key;  // raw bytes: HMAC(SaltedPassword, "Server Key")
};

inline constexpr uint32_t kDefaultScramIterations = 4096;

// `prepared_password` is the SASLprep'd password. Iterations below 1 count as 1.
ScramCredentials derive_scram_credentials(Hash hash, std::string_view prepared_password,
                                          std::string_view salt, uint32_t iterations);

// Credentials for a user that does not exist, so that the exchange (salt,
// iteration count, timing) looks like a real one that simply fails: the same user
// name always gets the same salt (an HMAC under a per-process secret), so asking
// twice reveals nothing. Pass the iteration count real users get.
ScramCredentials make_dummy_credentials(Hash hash, std::string_view username,
                                        uint32_t iterations = kDefaultScramIterations);

// For PLAIN and other password checks: SASLprep's `password` (as received),
// derives with the stored salt and iterations, compares StoredKey in constant
// time. False if the password fails SASLprep.
bool verify_password(const ScramCredentials& creds, std::string_view password);

}  // namespace parley::sasl
