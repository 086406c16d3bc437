#include "core/sasl/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdlib>

namespace parley::sasl {
namespace {

const EVP_MD* evp(Hash hash) { return hash == Hash::sha1 ? EVP_sha1() : EVP_sha256(); }

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

[[noreturn]] void crypto_failure() { std::abort(); }

}  // namespace

size_t digest_size(Hash hash) { return hash == Hash::sha1 ? 20 : 32; }

std::string digest(Hash hash, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len, evp(hash),
                 nullptr) != 1) {
    crypto_failure();
  }
  out.resize(len);
  return out;
}

std::string hmac(Hash hash, std::string_view key, std::string_view data) {
  std::string out(EVP_MAX_MD_SIZE, '\0');
  unsigned int len = 0;
  // OpenSSL refuses a null key pointer even with length 0.
  static const unsigned char kEmpty = 0;
  const unsigned char* k = key.empty() ? &kEmpty : bytes(key);
  if (HMAC(evp(hash), k, static_cast<int>(key.size()), bytes(data), data.size(),
           reinterpret_cast<unsigned char*>(out.data()), &len) == nullptr) {
    crypto_failure();
  }
  out.resize(len);
  return out;
}

std::string pbkdf2(Hash hash, std::string_view password, std::string_view salt, uint32_t iterations) {
  std::string out(digest_size(hash), '\0');
  const int iter = static_cast<int>(iterations < 1 ? 1 : (iterations > 0x7FFFFFFF ? 0x7FFFFFFF : iterations));
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes(salt),
                        static_cast<int>(salt.size()), iter, evp(hash), static_cast<int>(out.size()),
                        reinterpret_cast<unsigned char*>(out.data())) != 1) {
    crypto_failure();
  }
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    crypto_failure();
  }
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace parley::sasl
