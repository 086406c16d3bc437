// tests/unit/core/sasl/scram_client.hpp - a minimal SCRAM client, enough to drive
// ScramServer through whole exchanges (random nonces, every gs2 flag).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "core/sasl/base64.hpp"
#include "core/sasl/crypto.hpp"

namespace parley::sasl::test {

class ScramClient {
 public:
  ScramClient(Hash hash, std::string user, std::string password, std::string gs2_header = "n,,",
              std::string cb_data = {}, std::string nonce = {})
      : hash_(hash), user_(std::move(user)), password_(std::move(password)),
        gs2_(std::move(gs2_header)), cb_data_(std::move(cb_data)), nonce_(std::move(nonce)) {
    if (nonce_.empty()) nonce_ = base64_encode(random_bytes(18));
  }

  std::string first() {
    bare_ = "n=" + user_ + ",r=" + nonce_;
    return gs2_ + bare_;
  }

  // nullopt if the server-first message is unacceptable to a client.
  std::optional<std::string> final(const std::string& server_first, const std::string& extensions = {}) {
    auto attrs = parse(server_first);
    if (!attrs.count('r') || !attrs.count('s') || !attrs.count('i')) return std::nullopt;
    if (attrs['r'].rfind(nonce_, 0) != 0) return std::nullopt;
    auto salt = base64_decode(attrs['s']);
    if (!salt) return std::nullopt;
    const auto iterations = static_cast<uint32_t>(std::stoul(attrs['i']));
    const std::string salted = pbkdf2(hash_, password_, *salt, iterations);
    const std::string client_key = hmac(hash_, salted, "Client Key");
    const std::string stored_key = digest(hash_, client_key);
    server_key_ = hmac(hash_, salted, "Server Key");
    std::string without_proof = "c=" + base64_encode(gs2_ + cb_data_) + ",r=" + attrs['r'] + extensions;
    auth_message_ = bare_ + "," + server_first + "," + without_proof;
    std::string proof = client_key;
    const std::string signature = hmac(hash_, stored_key, auth_message_);
    for (size_t i = 0; i < proof.size(); ++i) proof[i] ^= signature[i];
    return without_proof + ",p=" + base64_encode(proof);
  }

  bool verify(const std::string& server_final) const {
    return server_final == "v=" + base64_encode(hmac(hash_, server_key_, auth_message_));
  }

  const std::string& nonce() const { return nonce_; }

 private:
  static std::map<char, std::string> parse(const std::string& msg) {
    std::map<char, std::string> out;
    size_t start = 0;
    while (start <= msg.size()) {
      size_t comma = msg.find(',', start);
      if (comma == std::string::npos) comma = msg.size();
      const std::string field = msg.substr(start, comma - start);
      if (field.size() >= 2 && field[1] == '=') out[field[0]] = field.substr(2);
      start = comma + 1;
    }
    return out;
  }

  Hash hash_;
  std::string user_, password_, gs2_, cb_data_, nonce_, bare_, auth_message_, server_key_;
};

}  // namespace parley::sasl::test
