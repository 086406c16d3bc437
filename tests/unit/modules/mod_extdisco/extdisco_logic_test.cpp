// mod_extdisco's pure logic: the service URIs of the `services` option, which
// services a <credentials/> request names, and the TURN REST credentials
// (HMAC-SHA1 against RFC 2202, base64 against RFC 4648).
#include "extdisco_logic.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace parley::mod_extdisco;

namespace {

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

Service ok(std::string_view uri) {
  auto s = parse_service(uri);
  REQUIRE_MESSAGE(s.has_value(), (s ? std::string() : s.error()));
  return *s;
}

std::string refused(std::string_view uri) {
  auto s = parse_service(uri);
  REQUIRE_FALSE(s.has_value());
  return s.error();
}

}  // namespace

TEST_CASE("a bare URI takes the RFC 7064/7065 default port and transport") {
  Service stun = ok("stun:stun.example.org");
  CHECK(stun.type == "stun");
  CHECK(stun.host == "stun.example.org");
  CHECK(stun.port == 3478);
  CHECK(stun.transport == "udp");
  CHECK_FALSE(stun.restricted);
  CHECK_FALSE(stun.has_static_credentials());
  Service turns = ok("turns:turn.example.org");
  CHECK(turns.port == 5349);
  CHECK(turns.transport == "tcp");
  CHECK(turns.is_turn());
  CHECK(ok("stuns:stun.example.org").port == 5349);
  CHECK(ok("TURN:turn.example.org").type == "turn");  // a URI scheme is case-insensitive
}

TEST_CASE("port, transport, name, restricted and static credentials") {
  Service s = ok("turn:192.0.2.1:3479?transport=tcp&name=Relay%20one&username=bob&password=p%26ss%3D1&restricted=true");
  CHECK(s.host == "192.0.2.1");
  CHECK(s.port == 3479);
  CHECK(s.transport == "tcp");
  CHECK(s.name == "Relay one");
  CHECK(s.username == "bob");
  CHECK(s.password == "p&ss=1");
  CHECK(s.restricted);
  Service v6 = ok("turn:[2001:db8::1]:3478?transport=udp");
  CHECK(v6.host == "2001:db8::1");
  CHECK(v6.port == 3478);
  CHECK(ok("stun:[::1]").port == 3478);
  CHECK_FALSE(ok("turn:t.example.org?restricted=false").restricted);
}

TEST_CASE("what is refused says why") {
  CHECK(refused("ftp:files.example.org").find("unknown type 'ftp'") != std::string::npos);
  CHECK(refused("stun.example.org").find("not TYPE:HOST") != std::string::npos);
  CHECK(refused("stun:").find("no host") != std::string::npos);
  CHECK(refused("stun::3478").find("no host") != std::string::npos);
  CHECK(refused("stun:a b").find("not a host name") != std::string::npos);
  CHECK(refused("stun:-bad.example").find("not a host name") != std::string::npos);
  CHECK(refused("stun:bad..example").find("not a host name") != std::string::npos);
  CHECK(refused("stun:example.org:0").find("1-65535") != std::string::npos);
  CHECK(refused("stun:example.org:65536").find("1-65535") != std::string::npos);
  CHECK(refused("stun:example.org:34x").find("1-65535") != std::string::npos);
  CHECK(refused("stun:example.org:").find("empty port") != std::string::npos);
  CHECK(refused("stun:[2001:db8::1").find("']'") != std::string::npos);
  CHECK(refused("stun:[zz::1]").find("IPv6") != std::string::npos);
  CHECK(refused("stun:[::1]x").find("':PORT'") != std::string::npos);
  CHECK(refused("turn:t.example.org?transport=sctp").find("udp or tcp") != std::string::npos);
  CHECK(refused("turn:t.example.org?transport=udp&transport=tcp").find("twice") != std::string::npos);
  CHECK(refused("turn:t.example.org?username=bob").find("go together") != std::string::npos);
  CHECK(refused("turn:t.example.org?password=x").find("go together") != std::string::npos);
  CHECK(refused("turn:t.example.org?username=&password=x").find("empty username") != std::string::npos);
  CHECK(refused("turn:t.example.org?secret=x").find("unknown parameter 'secret'") != std::string::npos);
  CHECK(refused("turn:t.example.org?transport").find("without a value") != std::string::npos);
  CHECK(refused("turn:t.example.org?name=%zz").find("malformed") != std::string::npos);
  CHECK(refused("turn:t.example.org?name=%4").find("malformed") != std::string::npos);
  CHECK(refused("turn:t.example.org?name=a%0Ab").find("control character") != std::string::npos);
  CHECK(refused("turn:t.example.org?restricted=yes").find("true or false") != std::string::npos);
  // The reason names the URI, for the log line that names the option.
  CHECK(refused("ftp:files.example.org").rfind("'ftp:files.example.org': ", 0) == 0);
}

TEST_CASE("a credentials request names services by type, host (any case) and, if given, port") {
  Service s = ok("turn:Turn.Example.org:3478");
  CHECK(names(s, "turn", "turn.example.org", 0));
  CHECK(names(s, "turn", "TURN.EXAMPLE.ORG", 3478));
  CHECK_FALSE(names(s, "turn", "turn.example.org", 3479));
  CHECK_FALSE(names(s, "turns", "turn.example.org", 0));
  CHECK_FALSE(names(s, "turn", "turn.example.or", 0));
  CHECK_FALSE(names(s, "turn", "turn.example.orgx", 0));
}

TEST_CASE("a request's port") {
  CHECK(parse_port("1") == uint16_t{1});
  CHECK(parse_port("65535") == uint16_t{65535});
  CHECK_FALSE(parse_port("0"));
  CHECK_FALSE(parse_port("65536"));
  CHECK_FALSE(parse_port(""));
  CHECK_FALSE(parse_port("-1"));
  CHECK_FALSE(parse_port("080000"));
}

TEST_CASE("HMAC-SHA1 against RFC 2202 and base64 against RFC 4648") {
  CHECK(hex(hmac_sha1("Jefe", "what do ya want for nothing?")) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(hex(hmac_sha1(std::string(20, '\x0b'), "Hi There")) == "b617318655057264e28bc0b6fb378c8ef146be00");
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foob") == "Zm9vYg==");
  CHECK(base64("fooba") == "Zm9vYmE=");
  CHECK(base64("foobar") == "Zm9vYmFy");
}

TEST_CASE("TURN REST credentials: expiry and user in the username, its HMAC as the password") {
  // Checked against Python: base64(hmac.new(b"north", b"1700000000:alice@example.org", sha1).digest()).
  Credentials c = turn_rest_credentials("north", 1700000000, "alice@example.org");
  CHECK(c.username == "1700000000:alice@example.org");
  CHECK(c.password == "PZI+z4ibN1IQ7v4pzuL4fO8lnhI=");
  Credentials plain = turn_rest_credentials("north", 1700000000, "");
  CHECK(plain.username == "1700000000");
  CHECK(plain.password == "CWyHi3zCeWqXBir9thl4m+iZPRY=");
}
