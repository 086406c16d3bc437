#include "scram_client.hpp"

#include <charconv>
#include <fstream>
#include <sstream>

#include "core/sasl/base64.hpp"

namespace parley::bench {

namespace {

std::string to_hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + i, hex.data() + i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + i + 2) return std::nullopt;
    out += static_cast<char>(v);
  }
  return out;
}

std::string cache_key(sasl::Hash hash, std::string_view password, std::string_view salt, uint32_t iterations) {
  return std::string(hash == sasl::Hash::sha1 ? "sha1:" : "sha256:") +
         to_hex(sasl::digest(sasl::Hash::sha256, password)) + ":" + to_hex(salt) + ":" + std::to_string(iterations);
}

// "a=1,b=2" -> the value of `key`, if present.
std::optional<std::string_view> scram_attr(std::string_view msg, char key) {
  size_t start = 0;
  while (start < msg.size()) {
    size_t comma = msg.find(',', start);
    if (comma == std::string_view::npos) comma = msg.size();
    std::string_view field = msg.substr(start, comma - start);
    if (field.size() >= 2 && field[0] == key && field[1] == '=') return field.substr(2);
    start = comma + 1;
  }
  return std::nullopt;
}

// RFC 5802 saslname: ',' and '=' escaped.
std::string saslname(std::string_view user) {
  std::string out;
  for (char c : user) {
    if (c == ',') out += "=2C";
    else if (c == '=') out += "=3D";
    else out += c;
  }
  return out;
}

}  // namespace

std::string SaltedPasswordCache::salted(sasl::Hash hash, std::string_view password, std::string_view salt,
                                        uint32_t iterations) {
  const std::string key = cache_key(hash, password, salt, iterations);
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      ++hits_;
      return it->second;
    }
    ++misses_;
  }
  std::string value = sasl::pbkdf2(hash, password, salt, iterations);
  std::lock_guard lock(mutex_);
  entries_.emplace(key, value);
  return value;
}

Result<void, std::string> SaltedPasswordCache::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::string line;
  std::lock_guard lock(mutex_);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, value;
    if (!(fields >> key >> value)) continue;
    auto bytes = from_hex(value);
    if (!bytes) return unexpected(path + ": malformed line");
    entries_[key] = *bytes;
  }
  return {};
}

Result<void, std::string> SaltedPasswordCache::save(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return unexpected(path + ": cannot write");
  std::lock_guard lock(mutex_);
  for (const auto& [key, value] : entries_) out << key << ' ' << to_hex(value) << '\n';
  if (!out) return unexpected(path + ": write failed");
  return {};
}

ScramClient::ScramClient(sasl::Hash hash, std::string user, std::string password, SaltedPasswordCache& cache)
    : hash_(hash), user_(std::move(user)), password_(std::move(password)), cache_(cache) {
  nonce_ = sasl::base64_encode(sasl::random_bytes(18));
}

std::string ScramClient::first() {
  client_first_bare_ = "n=" + saslname(user_) + ",r=" + nonce_;
  return "n,," + client_first_bare_;
}

Result<std::string, std::string> ScramClient::final(std::string_view server_first) {
  auto nonce = scram_attr(server_first, 'r');
  auto salt64 = scram_attr(server_first, 's');
  auto iter_text = scram_attr(server_first, 'i');
  if (!nonce || !salt64 || !iter_text) return unexpected(std::string("server-first-message lacks r, s or i"));
  if (nonce->substr(0, nonce_.size()) != nonce_ || nonce->size() == nonce_.size())
    return unexpected(std::string("server nonce does not extend ours"));
  auto salt = sasl::base64_decode(*salt64);
  if (!salt) return unexpected("bad salt: " + salt.error());
  uint32_t iterations = 0;
  auto [p, ec] = std::from_chars(iter_text->data(), iter_text->data() + iter_text->size(), iterations);
  if (ec != std::errc() || iterations == 0) return unexpected(std::string("bad iteration count"));

  const std::string salted = cache_.salted(hash_, password_, *salt, iterations);
  const std::string client_key = sasl::hmac(hash_, salted, "Client Key");
  const std::string stored_key = sasl::digest(hash_, client_key);
  server_key_ = sasl::hmac(hash_, salted, "Server Key");
  std::string without_proof = "c=biws,r=" + std::string(*nonce);  // biws = base64("n,,")
  auth_message_ = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  std::string proof = client_key;
  const std::string signature = sasl::hmac(hash_, stored_key, auth_message_);
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  return without_proof + ",p=" + sasl::base64_encode(proof);
}

bool ScramClient::verify(std::string_view server_final) const {
  auto v = scram_attr(server_final, 'v');
  if (!v) return false;
  return *v == sasl::base64_encode(sasl::hmac(hash_, server_key_, auth_message_));
}

}  // namespace parley::bench
