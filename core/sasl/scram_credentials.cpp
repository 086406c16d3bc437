#include "core/sasl/scram_credentials.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/sasl/saslprep.hpp"

namespace parley::sasl {
namespace {

std::string& dummy_secret() {
  static std::string secret = random_bytes(kDummySecretBytes);
  return secret;
}

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// The name that keeps one mechanism's dummy salt apart from the other's.
std::string_view hash_label(Hash hash) { return hash == Hash::sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256"; }

}  // namespace

void set_dummy_secret(std::string secret) { dummy_secret() = std::move(secret); }

Result<std::string, std::string> load_or_create_secret(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    const std::string secret = random_bytes(kDummySecretBytes);
    bool ok = ::write(fd, secret.data(), secret.size()) == static_cast<ssize_t>(secret.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) {
      std::string error = errno_text("cannot write", path);
      ::unlink(path.c_str());
      return unexpected(std::move(error));
    }
    return secret;
  }
  if (errno != EEXIST) return unexpected(errno_text("cannot create", path));
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return unexpected(errno_text("cannot open", path));
  std::string secret(kDummySecretBytes + 1, '\0');
  ssize_t n = ::read(fd, secret.data(), secret.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(kDummySecretBytes))
    return unexpected(path + ": not a " + std::to_string(kDummySecretBytes) + "-byte secret (delete it to make a new one)");
  secret.resize(kDummySecretBytes);
  return secret;
}

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

ScramCredentials make_dummy_credentials(Hash hash, std::string_view username, uint32_t iterations,
                                        size_t salt_bytes) {
  const std::string& secret = dummy_secret();
  const std::string user(username);
  ScramCredentials c;
  c.hash = hash;
  // The salt is the only thing the client sees; it must not change between asks
  // (nor restarts), and differs per mechanism as a real account's salts do.
  // Salts longer than one HMAC chain further HMACs.
  std::string label = std::string("salt\0", 5) + std::string(hash_label(hash)) + '\0' + user;
  c.salt = hmac(Hash::sha256, secret, label);
  while (c.salt.size() < salt_bytes) c.salt += hmac(Hash::sha256, secret, c.salt + label);
  c.salt.resize(salt_bytes);
  c.iterations = iterations < 1 ? 1 : iterations;
  // Keys nobody can match (they are not derived from any password).
  c.stored_key = hmac(hash, secret, std::string("stored\0", 7) + user);
  c.server_key = hmac(hash, secret, std::string("server\0", 7) + user);
  return c;
}

bool verify_password(const ScramCredentials& creds, std::string_view password) {
  auto prepared = saslprep(password);
  if (!prepared || prepared->empty()) return false;
  return verify_prepared_password(creds, *prepared);
}

bool verify_prepared_password(const ScramCredentials& creds, std::string_view prepared_password) {
  if (prepared_password.empty()) return false;
  const std::string salted = pbkdf2(creds.hash, prepared_password, creds.salt, creds.iterations);
  const std::string stored_key = digest(creds.hash, hmac(creds.hash, salted, "Client Key"));
  return equal_constant_time(stored_key, creds.stored_key);
}

}  // namespace parley::sasl
