#include <doctest/doctest.h>

#include <string>

#include "core/sasl/base64.hpp"
#include "core/sasl/scram_server.hpp"
#include "scram_client.hpp"

using namespace parley::sasl;
using parley::sasl::test::ScramClient;

namespace {

const ChannelBinding kCb{std::string(32, '\x11'), std::string(32, '\x22'), {}};

ScramCredentials creds_for(Hash hash, const std::string& password = "pencil") {
  return derive_scram_credentials(hash, password, "NaCl-NaCl-NaCl!!", 512);
}

// Runs a whole exchange; returns the failure, or nullopt when the client accepted
// the server's final message.
std::optional<Failure> exchange(ScramServer& server, ScramClient& client, const ScramCredentials& creds) {
  auto authcid = server.client_first(client.first());
  if (!authcid) return authcid.error();
  auto final_msg = client.final(server.server_first(creds));
  REQUIRE(final_msg);
  auto v = server.client_final(*final_msg);
  if (!v) return v.error();
  CHECK(client.verify(*v));
  return std::nullopt;
}

// A server that has accepted "n,,n=user,r=cnonce" and sent its first message.
struct Primed {
  ScramServer server{Hash::sha256, false, {}, false};
  std::string server_first;
  Primed() {
    REQUIRE(server.client_first("n,,n=user,r=cnonce"));
    server.set_server_nonce_for_test("snonce");
    server_first = server.server_first(creds_for(Hash::sha256));
  }
};

}  // namespace

TEST_CASE("RFC 5802 section 5: SCRAM-SHA-1 example") {
  ScramServer server(Hash::sha1, false, {}, false);
  auto user = server.client_first("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
  REQUIRE(user);
  CHECK(*user == "user");
  CHECK(server.authzid().empty());
  server.set_server_nonce_for_test("3rfcNHYJY1ZVvWVs7j");
  const auto creds = derive_scram_credentials(Hash::sha1, "pencil", base64_decode("QSXCR+Q6sek8bf92").value(), 4096);
  CHECK(server.server_first(creds) == "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
  auto v = server.client_final(
      "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
  REQUIRE(v);
  CHECK(*v == "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

TEST_CASE("RFC 7677 section 3: SCRAM-SHA-256 example") {
  ScramServer server(Hash::sha256, false, {}, false);
  REQUIRE(server.client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").value() == "user");
  server.set_server_nonce_for_test("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  const auto creds =
      derive_scram_credentials(Hash::sha256, "pencil", base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value(), 4096);
  CHECK(server.server_first(creds) ==
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  auto v = server.client_final(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  REQUIRE(v);
  CHECK(*v == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST_CASE("RFC examples fail with a wrong proof") {
  ScramServer server(Hash::sha1, false, {}, false);
  REQUIRE(server.client_first("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"));
  server.set_server_nonce_for_test("3rfcNHYJY1ZVvWVs7j");
  (void)server.server_first(derive_scram_credentials(Hash::sha1, "pencil2", base64_decode("QSXCR+Q6sek8bf92").value(), 4096));
  auto v = server.client_final("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
  REQUIRE_FALSE(v);
  CHECK(v.error() == Failure::not_authorized);
}

TEST_CASE("full exchanges with random nonces, every hash and gs2 flag") {
  for (Hash h : {Hash::sha1, Hash::sha256}) {
    CAPTURE(static_cast<int>(h));
    const auto creds = creds_for(h);
    {
      ScramServer s(h, false, kCb, true);
      ScramClient c(h, "user", "pencil");
      CHECK_FALSE(exchange(s, c, creds));
    }
    {  // the client could bind, we did not offer -PLUS: fine
      ScramServer s(h, false, kCb, false);
      ScramClient c(h, "user", "pencil", "y,,");
      CHECK_FALSE(exchange(s, c, creds));
    }
    {
      ScramServer s(h, true, kCb, true);
      ScramClient c(h, "user", "pencil", "p=tls-exporter,,", kCb.tls_exporter);
      CHECK_FALSE(exchange(s, c, creds));
    }
    {
      ScramServer s(h, true, kCb, true);
      ScramClient c(h, "user", "pencil", "p=tls-server-end-point,,", kCb.tls_server_end_point);
      CHECK_FALSE(exchange(s, c, creds));
    }
    {  // tls-unique, as slixmpp 1.8 and gloox 1.0 bind
      ChannelBinding cb = kCb;
      cb.tls_unique = std::string(12, 'u');
      ScramServer s(h, true, cb, true);
      ScramClient c(h, "user", "pencil", "p=tls-unique,,", cb.tls_unique);
      CHECK_FALSE(exchange(s, c, creds));
    }
    {  // with an authzid
      ScramServer s(h, true, kCb, true);
      ScramClient c(h, "user", "pencil", "p=tls-exporter,a=juliet@example.com,", kCb.tls_exporter);
      CHECK_FALSE(exchange(s, c, creds));
      CHECK(s.authzid() == "juliet@example.com");
    }
    {  // wrong password
      ScramServer s(h, false, {}, false);
      ScramClient c(h, "user", "pencil2");
      CHECK(exchange(s, c, creds) == Failure::not_authorized);
    }
    {  // unknown user: dummy credentials, same shape of failure
      ScramServer s(h, false, {}, false);
      ScramClient c(h, "nobody", "pencil");
      CHECK(exchange(s, c, make_dummy_credentials(h, "nobody")) == Failure::not_authorized);
    }
  }
}

TEST_CASE("dummy credentials look the same on every attempt") {
  std::string firsts[2];
  for (auto& first : firsts) {
    ScramServer s(Hash::sha256, false, {}, false);
    REQUIRE(s.client_first("n,,n=ghost,r=abc"));
    s.set_server_nonce_for_test("xyz");
    first = s.server_first(make_dummy_credentials(Hash::sha256, "ghost"));
  }
  CHECK(firsts[0] == firsts[1]);
  CHECK(firsts[0].find(",i=4096") != std::string::npos);
}

TEST_CASE("a server nonce is random and long") {
  ScramServer a(Hash::sha256, false, {}, false), b(Hash::sha256, false, {}, false);
  REQUIRE(a.client_first("n,,n=u,r=c"));
  REQUIRE(b.client_first("n,,n=u,r=c"));
  const std::string fa = a.server_first(creds_for(Hash::sha256));
  const std::string fb = b.server_first(creds_for(Hash::sha256));
  CHECK(fa != fb);
  CHECK(fa.substr(0, fa.find(',')).size() >= 2 + 1 + 24);
}

TEST_CASE("channel binding failures") {
  const Hash h = Hash::sha256;
  const auto creds = creds_for(h);
  SUBCASE("binding data of another TLS connection (a TLS-terminating attacker)") {
    ScramServer s(h, true, kCb, true);
    ScramClient c(h, "user", "pencil", "p=tls-exporter,,", std::string(32, '\x33'));
    CHECK(exchange(s, c, creds) == Failure::not_authorized);
  }
  SUBCASE("end-point data sent for tls-exporter") {
    ScramServer s(h, true, kCb, true);
    ScramClient c(h, "user", "pencil", "p=tls-exporter,,", kCb.tls_server_end_point);
    CHECK(exchange(s, c, creds) == Failure::not_authorized);
  }
  SUBCASE("'y' downgrade: we offered -PLUS") {
    ScramServer s(h, false, kCb, true);
    ScramClient c(h, "user", "pencil", "y,,");
    CHECK(exchange(s, c, creds) == Failure::not_authorized);
  }
  SUBCASE("binding type not available on this connection") {
    ScramServer s(h, true, ChannelBinding{"", std::string(32, 'e'), {}}, true);
    ScramClient c(h, "user", "pencil", "p=tls-exporter,,", "");
    CHECK(exchange(s, c, creds) == Failure::not_authorized);
  }
  SUBCASE("unsupported binding type") {
    ScramServer s(h, true, kCb, true);
    ScramClient c(h, "user", "pencil", "p=tls-made-up,,", "x");
    CHECK(exchange(s, c, creds) == Failure::not_authorized);
  }
  SUBCASE("tls-unique not available on this connection") {
    ScramServer s(h, true, kCb, true);
    ScramClient c(h, "user", "pencil", "p=tls-unique,,", "x");
    CHECK(exchange(s, c, creds) == Failure::not_authorized);
  }
  SUBCASE("-PLUS chosen without binding") {
    ScramServer s(h, true, kCb, true);
    ScramClient c(h, "user", "pencil", "n,,");
    CHECK(exchange(s, c, creds) == Failure::malformed_request);
  }
  SUBCASE("-PLUS chosen with 'y'") {
    ScramServer s(h, true, kCb, true);
    ScramClient c(h, "user", "pencil", "y,,");
    CHECK(exchange(s, c, creds) == Failure::malformed_request);
  }
  SUBCASE("binding requested with a non-PLUS mechanism") {
    ScramServer s(h, false, kCb, true);
    ScramClient c(h, "user", "pencil", "p=tls-exporter,,", kCb.tls_exporter);
    CHECK(exchange(s, c, creds) == Failure::malformed_request);
  }
  SUBCASE("c= repeats a different gs2 header") {
    ScramServer s(h, false, kCb, false);
    REQUIRE(s.client_first("y,,n=user,r=abc"));
    ScramClient c(h, "user", "pencil", "n,,", "", "abc");
    c.first();
    auto f = c.final(s.server_first(creds));
    REQUIRE(f);
    auto r = s.client_final(*f);
    REQUIRE_FALSE(r);
    CHECK(r.error() == Failure::not_authorized);
  }
}

TEST_CASE("client-first: names and authzid") {
  struct Case {
    const char* message;
    const char* authcid;
    const char* authzid;
  };
  const Case cases[] = {
      {"n,,n=user,r=abc", "user", ""},
      {"n,,n=a=2Cb=3Dc,r=abc", "a,b=c", ""},
      {"n,,n=I\xC2\xAD" "X,r=abc", "IX", ""},
      {"n,,n=J\xC3\xBCrgen,r=abc", "J\xC3\xBCrgen", ""},
      {"n,a=juliet@example.com/balcony,n=juliet,r=abc", "juliet", "juliet@example.com/balcony"},
      {"n,a=a=2Cb,n=u,r=abc", "u", "a,b"},
      {"n,,n=user,r=abc,x=unknown-extension", "user", ""},
      {"n,,n=user,r=!\"#$%&'()*+-./09:;<=>?@AZ[\\]^_`az{|}~", "user", ""},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.message));
    ScramServer s(Hash::sha1, false, {}, false);
    auto r = s.client_first(c.message);
    REQUIRE(r);
    CHECK(*r == c.authcid);
    CHECK(s.authzid() == c.authzid);
  }
}

TEST_CASE("client-first: malformed messages") {
  auto nul = [](const char* a, const char* b) { return std::string(a) + std::string(1, '\0') + b; };
  const std::string cases[] = {
      "", "n", "n,", "n,,", "n,,n=user", "n,,r=abc", "n,,r=abc,n=user", "n,,n=,r=abc", "n,,n=user,r=",
      "n,,n=user,,r=abc", "n,,n=user,r=abc,", "n,,n=user,r=abc,x", "n,,n=user,r=abc,1=x", "n,,n=user,r=abc,x=",
      "x,,n=user,r=abc", "N,,n=user,r=abc", " n,,n=user,r=abc", "nn,,n=user,r=abc", "n,a,n=user,r=abc",
      "n,a=,n=user,r=abc", "n,b=x,n=user,r=abc", "n,a=x=41,n=user,r=abc", "n,,m=ext,n=user,r=abc",
      "n,,n=us=er,r=abc", "n,,n=us=2Xer,r=abc", "n,,n=us=2,r=abc", "n,,n=us=2c,r=abc", "n,,n=user,r=a b",
      "n,,n=user,r=ab\x7F", "n,,n=user,r=ab\xC3\xA9", "n,,n=us\xFF" "er,r=abc", "n,,n=\xC0\xAF,r=abc",
      "n,,n=a\x07,r=abc", "n,,n=\xC2\xAD,r=abc", "n,,n=user\n,r=abc", nul("n,,n=us", "er,r=abc"),
      nul("n,,n=user,r=abc", ""), "p,,n=user,r=abc", "p=,,n=user,r=abc", "p=tls exporter,,n=user,r=abc",
      "p=tls_exporter,,n=user,r=abc", "n,,N=user,r=abc", "n,,n=user,R=abc", "n,,n:user,r=abc",
      "n,,n=" + std::string(1024, 'u') + ",r=abc", "n,,n=user,r=" + std::string(9000, 'a'),
      "n,a=" + std::string(3072, 'z') + ",n=u,r=abc",
  };
  for (const auto& m : cases) {
    CAPTURE(m);
    ScramServer s(Hash::sha256, false, kCb, false);
    auto r = s.client_first(m);
    REQUIRE_FALSE(r);
    CHECK(r.error() == Failure::malformed_request);
    // After a failure nothing else is accepted.
    CHECK(s.server_first(creds_for(Hash::sha256)).empty());
    CHECK_FALSE(s.client_final("c=biws,r=abc,p=AAAA"));
  }
  ScramServer plus(Hash::sha256, true, kCb, true);
  CHECK(plus.client_first("p=tls-exporter,,n=" + std::string(1023, 'u') + ",r=abc"));
}

TEST_CASE("client-final: malformed messages") {
  const std::string nonce = "cnoncesnonce";
  const std::string good_proof = base64_encode(std::string(32, 'x'));
  struct Case {
    std::string message;
    Failure failure;
  };
  const Case cases[] = {
      {"", Failure::malformed_request},
      {"c=biws", Failure::malformed_request},
      {"c=biws,r=" + nonce, Failure::malformed_request},
      {"r=" + nonce + ",c=biws,p=" + good_proof, Failure::malformed_request},
      {"c=biws,p=" + good_proof + ",r=" + nonce, Failure::malformed_request},
      {"c=biws,r=" + nonce + ",p=", Failure::malformed_request},  // empty proof: wrong length
      {"c=biws,r=" + nonce + ",p=" + base64_encode("short"), Failure::malformed_request},
      {"c=biws,r=" + nonce + ",p=" + good_proof + ",", Failure::malformed_request},
      {"c=biws,r=" + nonce + ",,p=" + good_proof, Failure::malformed_request},
      {"c=biws,r=" + nonce + ",1=x,p=" + good_proof, Failure::malformed_request},
      {"c=biws,r=" + nonce + ",p=" + good_proof + std::string(1, '\0'), Failure::malformed_request},
      {"c=biws,r=" + nonce + ",p=" + std::string(9000, 'A'), Failure::malformed_request},
      {"c=bi ws,r=" + nonce + ",p=" + good_proof, Failure::incorrect_encoding},
      {"c=biws,r=" + nonce + ",p=" + good_proof.substr(1), Failure::incorrect_encoding},
      {"c=biws,r=" + nonce + ",p=!!!!", Failure::incorrect_encoding},
      {"c=biws=,r=" + nonce + ",p=" + good_proof, Failure::incorrect_encoding},
      {"c=biws,r=" + nonce + ",p=" + good_proof + "\n", Failure::incorrect_encoding},
      {"c=eSws,r=" + nonce + ",p=" + good_proof, Failure::not_authorized},  // "y,," instead of "n,,"
      {"c=,r=" + nonce + ",p=" + good_proof, Failure::not_authorized},
      {"c=biws,r=cnonce,p=" + good_proof, Failure::not_authorized},           // client part only
      {"c=biws,r=" + nonce + "x,p=" + good_proof, Failure::not_authorized},
      {"c=biws,r=,p=" + good_proof, Failure::not_authorized},
      {"c=biws,r=" + nonce + ",p=" + good_proof, Failure::not_authorized},    // wrong proof
      {"c=biws,r=" + nonce + ",x=ext,p=" + good_proof, Failure::not_authorized},
  };
  for (const auto& c : cases) {
    CAPTURE(c.message);
    Primed p;
    auto r = p.server.client_final(c.message);
    REQUIRE_FALSE(r);
    CHECK(r.error() == c.failure);
    CHECK_FALSE(p.server.client_final(c.message));  // and it stays failed
  }
}

TEST_CASE("client-final with an extension the client included in its proof") {
  ScramServer s(Hash::sha256, false, {}, false);
  ScramClient c(Hash::sha256, "user", "pencil");
  REQUIRE(s.client_first(c.first()));
  auto f = c.final(s.server_first(creds_for(Hash::sha256)), ",x=whatever");
  REQUIRE(f);
  auto v = s.client_final(*f);
  REQUIRE(v);
  CHECK(c.verify(*v));
}

TEST_CASE("steps out of order") {
  const auto creds = creds_for(Hash::sha256);
  SUBCASE("client_final first") {
    ScramServer s(Hash::sha256, false, {}, false);
    CHECK(s.client_final("c=biws,r=a,p=AAAA").error() == Failure::malformed_request);
    CHECK_FALSE(s.client_first("n,,n=user,r=abc"));
  }
  SUBCASE("server_first first") {
    ScramServer s(Hash::sha256, false, {}, false);
    CHECK(s.server_first(creds).empty());
    CHECK_FALSE(s.client_first("n,,n=user,r=abc"));
  }
  SUBCASE("client_first twice") {
    ScramServer s(Hash::sha256, false, {}, false);
    REQUIRE(s.client_first("n,,n=user,r=abc"));
    CHECK(s.client_first("n,,n=user,r=abc").error() == Failure::malformed_request);
  }
  SUBCASE("client_final before server_first") {
    ScramServer s(Hash::sha256, false, {}, false);
    REQUIRE(s.client_first("n,,n=user,r=abc"));
    CHECK(s.client_final("c=biws,r=abc,p=AAAA").error() == Failure::malformed_request);
  }
  SUBCASE("a replayed client_final after success") {
    ScramServer s(Hash::sha256, false, {}, false);
    ScramClient c(Hash::sha256, "user", "pencil");
    REQUIRE(s.client_first(c.first()));
    auto f = c.final(s.server_first(creds));
    REQUIRE(f);
    REQUIRE(s.client_final(*f));
    CHECK(s.client_final(*f).error() == Failure::malformed_request);
  }
}
