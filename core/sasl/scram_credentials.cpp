#include "core/sasl/scram_credentials.hpp"

#include <string>

#include "core/sasl/saslprep.hpp"

namespace parley::sasl {
namespace {

const std::string& process_secret() {
  static const std::string secret = random_bytes(32);
  return secret;
}

constexpr size_t kDummySaltBytes = 16;

}  // namespace

ScramCredentials derive_scram_credentials(Hash hash, std::string_view prepared_password,
                                          std::string_view salt, uint32_t iterations) {
  if (iterations < 1) iterations = 1;
  const std::string salted = pbkdf2(hash, prepared_password, salt, iterations);
  ScramCredentials c;
  c.hash = hash;
  c.salt = std::string(salt);
  c.iterations = iterations;
  c.stored_key = digest(hash, hmac(hash, salted, "Client Key"));
  c.server_key = hmac(hash, salted, "Server Key");
  return c;
}

ScramCredentials make_dummy_credentials(Hash hash, std::string_view username, uint32_t iterations) {
  const std::string& secret = process_secret();
  const std::string user(username);
  ScramCredentials c;
  c.hash = hash;
  // The salt is the only thing the client sees; it must not change between asks.
  c.salt = hmac(Hash::sha256, secret, std::string("salt\0", 5) + user).substr(0, kDummySaltBytes);
  c.iterations = iterations < 1 ? 1 : iterations;
  // Keys nobody can match (they are not derived from any password).
  c.stored_key = hmac(hash, secret, std::string("stored\0", 7) + user);
  c.server_key = hmac(hash, secret, std::string("server\0", 7) + user);
  return c;
}

bool verify_password(const ScramCredentials& creds, std::string_view password) {
  auto prepared = saslprep(password);
  if (!prepared || prepared->empty()) return false;
  const std::string salted = pbkdf2(creds.hash, *prepared, creds.salt, creds.iterations);
  const std::string stored_key = digest(creds.hash, hmac(creds.hash, salted, "Client Key"));
  return equal_constant_time(stored_key, creds.stored_key);
}

}  // namespace parley::sasl
