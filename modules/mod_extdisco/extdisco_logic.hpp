// mod_extdisco's pure logic (no host, no I/O): the services of the `services`
// option (STUN/TURN URIs, RFC 7064/7065), which of them a <credentials/>
// request names, and the TURN REST credentials a shared secret makes.
// Unit-tested in tests/unit/modules/mod_extdisco.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "parley/result.hpp"

namespace parley::mod_extdisco {

// One external service, as XEP-0215 section 2 describes it.
struct Service {
  std::string type;       // stun, stuns, turn or turns
  std::string host;       // a name or an address (an IPv6 one without brackets)
  uint16_t port = 0;      // 3478, or 5349 for stuns/turns, unless given
  std::string transport;  // udp or tcp (default udp, tcp for stuns/turns)
  std::string name;       // a label for people; empty: none
  std::string username;   // static credentials; empty: none (or made from the secret)
  std::string password;
  bool restricted = false;  // the credentials only on a <credentials/> request, not in the list

  bool is_turn() const { return type == "turn" || type == "turns"; }
  bool has_static_credentials() const { return !username.empty(); }
};

// "TYPE:HOST[:PORT][?KEY=VALUE&...]" with TYPE stun, stuns, turn or turns,
// HOST a name or an address ([...] for IPv6), and the keys transport (udp,
// tcp), username and password (both or neither), name, restricted (true,
// false); values percent-decoded. An error is the reason, for the log.
Result<Service, std::string> parse_service(std::string_view uri);

// Whether a <credentials/> request's <service type host [port]/> names it:
// the same type, the same host (ASCII case-insensitive), the same port if one
// was given (0: any).
bool names(const Service& service, std::string_view type, std::string_view host, uint16_t port);

// A request's 'port': 1-65535 in decimal; nullopt otherwise.
std::optional<uint16_t> parse_port(std::string_view s);

// TURN REST credentials (draft-uberti-behave-turn-rest, coturn's
// use-auth-secret): username "EXPIRES" or "EXPIRES:USER" (EXPIRES in Unix
// seconds), password base64(HMAC-SHA1(secret, username)).
struct Credentials {
  std::string username;
  std::string password;
};
Credentials turn_rest_credentials(std::string_view secret, int64_t expires, std::string_view user);

std::string hmac_sha1(std::string_view key, std::string_view data);  // 20 raw bytes
std::string base64(std::string_view bytes);                         // with padding (RFC 4648 section 4)

}  // namespace parley::mod_extdisco
