// parley::Jid (parley/sdk/jid.hpp) against the fake host's jid_prepare:
// the SDK splits what the host prepared, reports refusals as values naming
// the part at fault, and never calls a host that lacks the entry.
#include <doctest/doctest.h>

#include <string>

#include "fake_host.hpp"
#include "parley/module.hpp"

namespace {

struct Fixture {
  parley_module m;
  parley::Host host{&m, fake::api()};
};

parley::JidError error_of(const parley::Host& host, std::string_view text) {
  auto jid = parley::Jid::parse(host, text);
  REQUIRE_FALSE(jid);
  return jid.error();
}

}  // namespace

TEST_CASE("Jid: parses and prepares through the host, split into its parts") {
  Fixture f;
  auto jid = parley::Jid::parse(f.host, "Juliet@Example.COM/Balcony");
  REQUIRE(jid);
  CHECK(jid->local() == "juliet");
  CHECK(jid->domain() == "example.com");
  CHECK(jid->resource() == "Balcony");
  CHECK(jid->full() == "juliet@example.com/Balcony");
  CHECK(jid->bare_str() == "juliet@example.com");
  CHECK(jid->bare() == parley::Jid::parse(f.host, "juliet@example.com").value());
  CHECK(jid->bare().is_bare());
  CHECK_FALSE(jid->is_bare());

  auto domain = parley::Jid::parse(f.host, "example.com.");  // RFC 7622 3.2: the trailing dot goes
  REQUIRE(domain);
  CHECK(domain->full() == "example.com");
  CHECK_FALSE(domain->has_local());
  auto domain_res = parley::Jid::parse(f.host, "example.com/a/b@c");  // the first '/' starts the resource
  REQUIRE(domain_res);
  CHECK(domain_res->domain() == "example.com");
  CHECK(domain_res->resource() == "a/b@c");
}

TEST_CASE("Jid: two spellings of one address compare equal; ordering and hashing follow the parts") {
  Fixture f;
  auto a = parley::Jid::parse(f.host, "ROMEO@montague.LIT");
  auto b = parley::Jid::parse(f.host, "romeo@Montague.lit");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a == *b);
  CHECK(parley::JidHash{}(*a) == parley::JidHash{}(*b));
  auto c = parley::Jid::parse(f.host, "romeo@montague.lit/orchard");
  REQUIRE(c);
  CHECK(*a != *c);
  CHECK(*a < *c);
  CHECK(parley::Jid().empty());
  CHECK(parley::Jid::prepared("romeo@montague.lit/orchard") == *c);
  CHECK(parley::Jid::prepared("montague.lit").domain() == "montague.lit");
}

TEST_CASE("Jid: malformed and fragmentary input is an error value naming the part") {
  Fixture f;
  CHECK(error_of(f.host, "") == parley::JidError::empty);
  CHECK(error_of(f.host, "@example.com") == parley::JidError::bad_localpart);  // '@' without a localpart
  CHECK(error_of(f.host, "@") == parley::JidError::bad_localpart);
  CHECK(error_of(f.host, "user@") == parley::JidError::bad_domainpart);
  CHECK(error_of(f.host, "user@/res") == parley::JidError::bad_domainpart);
  CHECK(error_of(f.host, "/res") == parley::JidError::bad_domainpart);
  CHECK(error_of(f.host, "user@example.com/") == parley::JidError::bad_resourcepart);  // trailing '/'
  CHECK(error_of(f.host, "example.com/") == parley::JidError::bad_resourcepart);
  CHECK(error_of(f.host, "us er@example.com") == parley::JidError::bad_localpart);
  CHECK(error_of(f.host, "a:b@example.com") == parley::JidError::bad_localpart);
  CHECK(error_of(f.host, "user@exa mple.com") == parley::JidError::bad_domainpart);
  CHECK(error_of(f.host, "user@example..com") == parley::JidError::bad_domainpart);
  CHECK(error_of(f.host, "user@example.com/\x01") == parley::JidError::bad_resourcepart);
}

TEST_CASE("Jid: 1023 bytes per part is the limit") {
  Fixture f;
  const std::string part(1023, 'a');
  const std::string over(1024, 'a');
  CHECK(parley::Jid::parse(f.host, part + "@example.com/" + part));
  CHECK(error_of(f.host, over + "@example.com") == parley::JidError::bad_localpart);
  CHECK(error_of(f.host, "user@example.com/" + over) == parley::JidError::bad_resourcepart);
  CHECK(error_of(f.host, "user@" + over) == parley::JidError::bad_domainpart);
  // Beyond what three prepared parts could come from: refused before the host is asked.
  CHECK(error_of(f.host, std::string(3 * 4 * 1023 + 3, 'a')) == parley::JidError::too_long);
}

TEST_CASE("Jid: bad UTF-8 anywhere is bad_utf8") {
  Fixture f;
  CHECK(error_of(f.host, "caf\xC3@example.com") == parley::JidError::bad_utf8);       // truncated sequence
  CHECK(error_of(f.host, "user@example.com/\xC0\xAF") == parley::JidError::bad_utf8);  // overlong '/'
  CHECK(error_of(f.host, "user@example.com/\xED\xA0\x80") == parley::JidError::bad_utf8);  // a surrogate
  CHECK(error_of(f.host, "\xFF@example.com") == parley::JidError::bad_utf8);
  CHECK(parley::Jid::parse(f.host, "caf\xC3\xA9@example.com/\xE2\x98\x83"));  // café, a snowman
  CHECK_FALSE(parley::detail::valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK(parley::detail::valid_utf8("\xF0\x9F\x98\x80"));
}

TEST_CASE("Jid: a host without jid_prepare is reported, never called") {
  parley_module m;
  parley_host_api old = fake::api_with_size(PARLEY_HOST_ENTRY_END(user_sessions));
  parley::Host host(&m, &old);
  CHECK(error_of(host, "user@example.com") == parley::JidError::unsupported);
  CHECK(parley::jid_error_text(parley::JidError::unsupported).size() > 0);
}
