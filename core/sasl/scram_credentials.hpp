// core/sasl/scram_credentials.hpp - what the server stores for SCRAM (RFC 5802
// section 3): never the password, only a salted, iterated derivation of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/sasl/crypto.hpp"
#include "parley/result.hpp"

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

inline constexpr size_t kDummySaltBytes = 16;
inline constexpr size_t kDummySecretBytes = 32;

// Credentials for a user that does not exist, so that the exchange (salt,
// iteration count, timing) looks like a real one that simply fails: the same user
// name always gets the same salt for one mechanism and different salts for
// SCRAM-SHA-1 and SCRAM-SHA-256, as a real account has (an HMAC under the
// server secret, see set_dummy_secret), so asking twice, or after a restart,
// reveals nothing. Pass the iteration count and salt length real users get.
ScramCredentials make_dummy_credentials(Hash hash, std::string_view username,
                                        uint32_t iterations = kDefaultScramIterations,
                                        size_t salt_bytes = kDummySaltBytes);

// The secret dummy credentials derive from. Without a call, a random one per
// process (tests, fuzzing); parleyd sets the one kept in its data_dir before any
// thread that authenticates starts (not thread-safe against readers).
void set_dummy_secret(std::string secret);

// Reads the secret kept in `path`, or creates it (kDummySecretBytes random
// bytes, mode 0600) if there is none yet, so dummy salts are stable across
// restarts. Error text for a file that cannot be read, written or is damaged.
Result<std::string, std::string> load_or_create_secret(const std::string& path);

// For PLAIN and other password checks: SASLprep's `password` (as received),
// derives with the stored salt and iterations, compares StoredKey in constant
// time. False if the password fails SASLprep.
bool verify_password(const ScramCredentials& creds, std::string_view password);

// The same for a password already SASLprep'd (prepared exactly once).
bool verify_prepared_password(const ScramCredentials& creds, std::string_view prepared_password);

}  // namespace parley::sasl
