#include "extdisco_logic.hpp"

#include "parley/sdk/percent.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

namespace parley::mod_extdisco {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool ipv6_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// %XX decoded; nullopt if malformed or if it decodes to a control character
// (the value ends up in an XML attribute, where those cannot go).
std::optional<std::string> decoded_value(std::string_view s) {
  auto out = parley::percent_decode(s);
  if (!out) return std::nullopt;
  for (char c : *out) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return std::nullopt;
  }
  return out;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

Result<Service, std::string> parse_service(std::string_view uri) {
  auto fail = [&](std::string why) -> Result<Service, std::string> {
    return unexpected(quoted(uri) + ": " + why);
  };
  Service s;
  std::size_t colon = uri.find(':');
  if (colon == std::string_view::npos) return fail("not TYPE:HOST (e.g. turn:turn.example.org:3478?transport=udp)");
  for (char c : uri.substr(0, colon)) s.type.push_back(lower(c));
  const bool secure = s.type == "stuns" || s.type == "turns";
  if (s.type != "stun" && s.type != "turn" && !secure)
    return fail("unknown type " + quoted(s.type) + " (stun, stuns, turn or turns)");
  std::string_view rest = uri.substr(colon + 1);
  std::string_view query;
  if (std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return fail("an IPv6 address without its ']'");
    std::string_view address = rest.substr(1, close - 1);
    if (address.empty()) return fail("an empty host");
    for (char c : address)
      if (!ipv6_char(c)) return fail("not an IPv6 address in [...]");
    s.host = address;
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail("only ':PORT' may follow the host");
      port = rest.substr(1);
      if (port.empty()) return fail("an empty port");
    }
  } else {
    std::size_t c = rest.find(':');
    std::string_view host = rest.substr(0, c);
    if (c != std::string_view::npos) {
      port = rest.substr(c + 1);
      if (port.empty()) return fail("an empty port");
    }
    if (host.empty()) return fail("no host");
    if (host.front() == '-' || host.front() == '.' || host.find("..") != std::string_view::npos)
      return fail("not a host name: " + quoted(host));
    for (char ch : host)
      if (!name_char(ch)) return fail("not a host name or address: " + quoted(host));
    s.host = host;
  }
  if (!port.empty()) {
    auto p = parse_port(port);
    if (!p) return fail("the port must be 1-65535");
    s.port = *p;
  } else {
    s.port = secure ? 5349 : 3478;  // RFC 7064 section 3.2, RFC 7065 section 3
  }
  s.transport = secure ? "tcp" : "udp";
  bool seen_transport = false, seen_username = false, seen_password = false, seen_name = false,
       seen_restricted = false;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return fail("a parameter without a value: " + quoted(pair));
    std::string_view key = pair.substr(0, eq);
    auto value = decoded_value(pair.substr(eq + 1));
    if (!value) return fail("a malformed value of " + quoted(key) + " (bad %XX or a control character)");
    auto once = [&](bool& seen) {
      bool first = !seen;
      seen = true;
      return first;
    };
    if (key == "transport") {
      if (!once(seen_transport)) return fail("transport given twice");
      if (*value != "udp" && *value != "tcp") return fail("transport must be udp or tcp");
      s.transport = *value;
    } else if (key == "username") {
      if (!once(seen_username)) return fail("username given twice");
      if (value->empty()) return fail("an empty username");
      s.username = *value;
    } else if (key == "password") {
      if (!once(seen_password)) return fail("password given twice");
      if (value->empty()) return fail("an empty password");
      s.password = *value;
    } else if (key == "name") {
      if (!once(seen_name)) return fail("name given twice");
      s.name = *value;
    } else if (key == "restricted") {
      if (!once(seen_restricted)) return fail("restricted given twice");
      if (*value != "true" && *value != "false") return fail("restricted must be true or false");
      s.restricted = *value == "true";
    } else {
      return fail("unknown parameter " + quoted(key) +
                  " (transport, username, password, name, restricted)");
    }
  }
  if (seen_username != seen_password) return fail("username and password go together");
  return s;
}

bool names(const Service& service, std::string_view type, std::string_view host, uint16_t port) {
  if (service.type != type || service.host.size() != host.size()) return false;
  for (std::size_t i = 0; i < host.size(); ++i)
    if (lower(service.host[i]) != lower(host[i])) return false;
  return port == 0 || service.port == port;
}

std::string hmac_sha1(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

Credentials turn_rest_credentials(std::string_view secret, int64_t expires, std::string_view user) {
  Credentials c;
  c.username = std::to_string(expires);
  if (!user.empty()) c.username.append(":").append(user);
  c.password = base64(hmac_sha1(secret, c.username));
  return c;
}

}  // namespace parley::mod_extdisco
