// core/sasl/crypto.hpp - the OpenSSL primitives SCRAM is built from. All strings
// hold raw bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::sasl {

enum class Hash { sha1, sha256 };

size_t digest_size(Hash hash);  // 20 or 32

std::string digest(Hash hash, std::string_view data);
std::string hmac(Hash hash, std::string_view key, std::string_view data);
// PBKDF2 (RFC 8018) with HMAC-`hash`, output of digest_size(hash) bytes: SCRAM's Hi().
std::string pbkdf2(Hash hash, std::string_view password, std::string_view salt, uint32_t iterations);

// Cryptographically strong random bytes (RAND_bytes). Aborts if the generator
// fails: no caller could do anything sensible with weak nonces or salts.
std::string random_bytes(size_t n);

// Compares in time independent of the contents (CRYPTO_memcmp); false on a size mismatch.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace parley::sasl
