// tools/parley-bench/scram_client.hpp - the client side of SCRAM-SHA-1/-256 (RFC 5802, RFC 7677)
// without channel binding, and a cache of salted passwords.
//
// Why a cache: Hi() with 4096 iterations costs the client more CPU than the whole login costs a good
// server, and the generator shares the machine's cores with the server. Real clients keep the salted
// password too (it is what they store instead of the password). The cache is keyed by the password's
// hash, the salt and the iteration count, so a changed salt simply misses.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/sasl/crypto.hpp"
#include "parley/result.hpp"

namespace parley::bench {

class SaltedPasswordCache {
 public:
  // Hi(password, salt, iterations), computed once per key. Thread-safe.
  std::string salted(sasl::Hash hash, std::string_view password, std::string_view salt, uint32_t iterations);

  // One entry per line, hex: "<hash> <key> <salted>". A missing file is an empty cache.
  Result<void, std::string> load(const std::string& path);
  Result<void, std::string> save(const std::string& path) const;
  size_t hits() const { return hits_; }
  size_t misses() const { return misses_; }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> entries_;
  size_t hits_ = 0;
  size_t misses_ = 0;
};

class ScramClient {
 public:
  ScramClient(sasl::Hash hash, std::string user, std::string password, SaltedPasswordCache& cache);

  // client-first-message (gs2 header "n,," : the generator does not bind to the channel).
  std::string first();
  // client-final-message for the server-first-message, or an error naming what is wrong with it.
  Result<std::string, std::string> final(std::string_view server_first);
  // True if server-final-message ("v=...") proves the server knows the password.
  bool verify(std::string_view server_final) const;

 private:
  sasl::Hash hash_;
  std::string user_, password_, nonce_, client_first_bare_, auth_message_, server_key_;
  SaltedPasswordCache& cache_;
};

}  // namespace parley::bench
