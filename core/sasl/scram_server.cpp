#include "core/sasl/scram_server.hpp"

#include <optional>
#include <vector>

#include "core/addr/utf8.hpp"
#include "core/sasl/base64.hpp"
#include "core/sasl/saslprep.hpp"

namespace parley::sasl {
namespace {

constexpr size_t kServerNonceBytes = 18;  // 24 base64 characters

// Splits on ',' keeping empty fields (an empty field is malformed, and must be seen).
std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
}

// "x=value" with the expected attribute letter; returns value (may be empty).
std::optional<std::string_view> attribute(std::string_view field, char name) {
  if (field.size() < 2 || field[0] != name || field[1] != '=') return std::nullopt;
  return field.substr(2);
}

// saslname (RFC 5802): UTF-8 without NUL, ',' and '=' except as "=2C" / "=3D".
std::optional<std::string> decode_saslname(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '=') {
      if (s.substr(i + 1, 2) == "2C") {
        out.push_back(',');
      } else if (s.substr(i + 1, 2) == "3D") {
        out.push_back('=');
      } else {
        return std::nullopt;
      }
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  if (out.empty() || !is_clean_utf8(out)) return std::nullopt;
  return out;
}

// printable = %x21-2B / %x2D-7E
bool is_printable_nonce(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7E || c == ',') return false;
  }
  return true;
}

// extensions = attr-val *("," attr-val); attr-val = ALPHA "=" value; value = 1*value-char.
// Unknown optional extensions are ignored, but must be well-formed.
bool valid_extension(std::string_view field) {
  if (field.size() < 3 || field[1] != '=') return false;
  const char a = field[0];
  if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z'))) return false;
  return is_clean_utf8(field.substr(2));
}

// cb-name = 1*(ALPHA / DIGIT / "." / "-")
bool valid_cb_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

ScramServer::ScramServer(Hash hash, bool plus, ChannelBinding cb, bool server_supports_plus)
    : hash_(hash), plus_(plus), server_supports_plus_(server_supports_plus), cb_(std::move(cb)) {}

Result<std::string, Failure> ScramServer::fail(Failure f) {
  state_ = State::failed;
  stored_key_.clear();
  server_key_.clear();
  return unexpected(f);
}

Result<std::string, Failure> ScramServer::client_first(std::string_view message) {
  if (state_ != State::client_first) return fail(Failure::malformed_request);
  if (message.empty() || message.size() > kScramMessageMaxBytes) return fail(Failure::malformed_request);
  if (message.find('\0') != std::string_view::npos) return fail(Failure::malformed_request);

  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  const size_t c1 = message.find(',');
  if (c1 == std::string_view::npos) return fail(Failure::malformed_request);
  const size_t c2 = message.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return fail(Failure::malformed_request);
  const std::string_view flag = message.substr(0, c1);
  const std::string_view authzid_field = message.substr(c1 + 1, c2 - c1 - 1);
  gs2_header_ = std::string(message.substr(0, c2 + 1));
  const std::string_view bare = message.substr(c2 + 1);

  if (flag == "n") {
    if (plus_) return fail(Failure::malformed_request);  // -PLUS without binding
  } else if (flag == "y") {
    if (plus_) return fail(Failure::malformed_request);
    // The client could bind and believes we cannot, but we offered -PLUS: the
    // offer was stripped on the way (RFC 5802 section 6).
    if (server_supports_plus_) return fail(Failure::not_authorized);
  } else if (auto name = attribute(flag, 'p')) {
    if (!valid_cb_name(*name)) return fail(Failure::malformed_request);
    if (!plus_) return fail(Failure::malformed_request);  // binding requested with a non-PLUS mechanism
    if (*name == "tls-exporter") {
      cb_data_ = cb_.tls_exporter;
    } else if (*name == "tls-server-end-point") {
      cb_data_ = cb_.tls_server_end_point;
    } else if (*name == "tls-unique") {
      cb_data_ = cb_.tls_unique;
    } else {
      return fail(Failure::not_authorized);  // a type we do not know
    }
    if (cb_data_.empty()) return fail(Failure::not_authorized);  // not available on this connection
  } else {
    return fail(Failure::malformed_request);
  }

  if (!authzid_field.empty()) {
    auto value = attribute(authzid_field, 'a');
    if (!value || value->size() > kScramAuthzidMaxBytes) return fail(Failure::malformed_request);
    auto decoded = decode_saslname(*value);
    if (!decoded) return fail(Failure::malformed_request);
    authzid_ = std::move(*decoded);
  }

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  const auto fields = split_commas(bare);
  if (fields.size() < 2) return fail(Failure::malformed_request);
  if (attribute(fields[0], 'm')) return fail(Failure::malformed_request);  // mandatory extension we cannot know
  auto username = attribute(fields[0], 'n');
  auto nonce = attribute(fields[1], 'r');
  if (!username || !nonce) return fail(Failure::malformed_request);
  if (username->size() > kScramUsernameMaxBytes) return fail(Failure::malformed_request);
  for (size_t i = 2; i < fields.size(); ++i) {
    if (!valid_extension(fields[i])) return fail(Failure::malformed_request);
  }
  auto decoded = decode_saslname(*username);
  if (!decoded) return fail(Failure::malformed_request);
  auto prepared = saslprep(*decoded);
  if (!prepared || prepared->empty()) return fail(Failure::malformed_request);
  if (!is_printable_nonce(*nonce)) return fail(Failure::malformed_request);

  client_nonce_ = std::string(*nonce);
  client_first_bare_ = std::string(bare);
  authcid_ = std::move(*prepared);
  state_ = State::server_first;
  return authcid_;
}

std::string ScramServer::server_first(const ScramCredentials& creds) {
  if (state_ != State::server_first) {
    state_ = State::failed;
    return {};
  }
  if (server_nonce_.empty()) server_nonce_ = base64_encode(random_bytes(kServerNonceBytes));
  stored_key_ = creds.stored_key;
  server_key_ = creds.server_key;
  server_first_ = "r=" + client_nonce_ + server_nonce_ + ",s=" + base64_encode(creds.salt) +
                  ",i=" + std::to_string(creds.iterations);
  state_ = State::client_final;
  return server_first_;
}

Result<std::string, Failure> ScramServer::client_final(std::string_view message) {
  if (state_ != State::client_final) return fail(Failure::malformed_request);
  if (message.empty() || message.size() > kScramMessageMaxBytes) return fail(Failure::malformed_request);
  if (message.find('\0') != std::string_view::npos) return fail(Failure::malformed_request);

  // client-final-message = "c=" base64 "," "r=" nonce ["," extensions] "," "p=" base64
  const auto fields = split_commas(message);
  if (fields.size() < 3) return fail(Failure::malformed_request);
  auto cb = attribute(fields[0], 'c');
  auto nonce = attribute(fields[1], 'r');
  auto proof_b64 = attribute(fields.back(), 'p');
  if (!cb || !nonce || !proof_b64) return fail(Failure::malformed_request);
  for (size_t i = 2; i + 1 < fields.size(); ++i) {
    if (!valid_extension(fields[i])) return fail(Failure::malformed_request);
  }
  auto cb_bytes = base64_decode(*cb);
  auto proof = base64_decode(*proof_b64);
  if (!cb_bytes || !proof) return fail(Failure::incorrect_encoding);
  if (proof->size() != digest_size(hash_)) return fail(Failure::malformed_request);

  // c= must repeat our gs2 header and carry this connection's binding data: a
  // mismatch means the TLS session was terminated by someone else.
  if (!equal_constant_time(*cb_bytes, gs2_header_ + cb_data_)) return fail(Failure::not_authorized);
  if (*nonce != client_nonce_ + server_nonce_) return fail(Failure::not_authorized);

  const size_t without_proof_len = message.size() - fields.back().size() - 1;
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(message.substr(0, without_proof_len));

  // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); valid iff H(ClientKey) == StoredKey.
  const std::string signature = hmac(hash_, stored_key_, auth_message);
  std::string client_key = *proof;
  for (size_t i = 0; i < client_key.size() && i < signature.size(); ++i) client_key[i] ^= signature[i];
  if (stored_key_.size() != digest_size(hash_) || !equal_constant_time(digest(hash_, client_key), stored_key_)) {
    return fail(Failure::not_authorized);
  }

  const std::string server_signature = hmac(hash_, server_key_, auth_message);
  state_ = State::done;
  stored_key_.clear();
  server_key_.clear();
  return "v=" + base64_encode(server_signature);
}

}  // namespace parley::sasl
