// core/sasl/scram_server.hpp - the server side of one SCRAM exchange: RFC 5802,
// RFC 7677 (SHA-256), channel binding per RFC 5056, 5929 (tls-server-end-point)
// and 9266 (tls-exporter).
//
//   client_first(msg)   -> authcid      (the caller looks up the credentials, off-loop)
//   server_first(creds) -> challenge
//   client_final(msg)   -> "v=..."      (the caller sends it in <success/>)
//
// Every step returns the RFC 6120 failure to send. Once a step has failed, or the
// steps are called out of order, every later step fails (or, for server_first,
// returns "").
#pragma once

#include <string>
#include <string_view>

#include "core/sasl/crypto.hpp"
#include "core/sasl/failure.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "parley/result.hpp"

namespace parley::sasl {

// Raw channel-binding data of this TLS connection; empty = not available.
struct ChannelBinding {
  std::string tls_exporter;          // RFC 9266: 32 bytes, label "EXPORTER-Channel-Binding", no context
  std::string tls_server_end_point;  // RFC 5929: hash of the server certificate
  // RFC 5929 tls-unique: the first Finished message of the handshake. Defined
  // below TLS 1.3 only (RFC 9266): empty on a TLS 1.3 connection, so a client
  // asking for it there fails with not-authorized.
  std::string tls_unique;
};

inline constexpr size_t kScramMessageMaxBytes = 8192;
inline constexpr size_t kScramUsernameMaxBytes = 1023;
inline constexpr size_t kScramAuthzidMaxBytes = 3071;

class ScramServer {
 public:
  // plus: the client chose the -PLUS mechanism. server_supports_plus: we offered
  // -PLUS mechanisms, so a client saying "y" (I could bind, but you cannot) was
  // downgraded by someone in the middle and must fail.
  ScramServer(Hash hash, bool plus, ChannelBinding cb, bool server_supports_plus);

  // Returns the authcid: "=2C"/"=3D" decoded, SASLprep'd, never empty.
  Result<std::string, Failure> client_first(std::string_view message);
  // The authzid of the gs2 header ("=2C"/"=3D" decoded, not prepared); empty if none.
  const std::string& authzid() const { return authzid_; }
  // The authcid client_first returned (empty before it): for the operator's log.
  const std::string& authcid() const { return authcid_; }

  // For an unknown user pass make_dummy_credentials(hash, username), so the reply
  // is indistinguishable and the failure comes only at client_final.
  std::string server_first(const ScramCredentials& creds);

  // Checks channel binding, nonce and proof; returns the server-final message.
  Result<std::string, Failure> client_final(std::string_view message);

  // Tests only: replaces the random server part of the nonce (call before server_first).
  void set_server_nonce_for_test(std::string nonce) { server_nonce_ = std::move(nonce); }

 private:
  enum class State { client_first, server_first, client_final, done, failed };

  Result<std::string, Failure> fail(Failure f);

  Hash hash_;
  bool plus_;
  bool server_supports_plus_;
  ChannelBinding cb_;
  State state_ = State::client_first;

  std::string cb_data_;  // binding data the client asked for (empty for 'n'/'y')
  std::string gs2_header_;
  std::string client_first_bare_;
  std::string client_nonce_;
  std::string server_nonce_;
  std::string server_first_;
  std::string authcid_;
  std::string authzid_;
  std::string stored_key_;
  std::string server_key_;
};

}  // namespace parley::sasl
