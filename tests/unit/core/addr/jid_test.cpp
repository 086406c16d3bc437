#include <doctest/doctest.h>

#include <string>
#include <unordered_map>

#include "core/addr/jid.hpp"

using parley::Jid;
using parley::JidError;
using parley::JidHash;

namespace {

Jid must_parse(std::string_view s) {
  auto r = Jid::parse(s);
  INFO("parsing ", std::string(s));
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("RFC 7622 section 3.5.1: valid JIDs") {
  struct Case {
    const char* text;
    const char* local;
    const char* domain;
    const char* resource;
  };
  // Nodeprep folds ß and ς where PRECIS would keep them; both forms stay valid.
  const Case cases[] = {
      {"juliet@example.com", "juliet", "example.com", ""},
      {"juliet@example.com/foo", "juliet", "example.com", "foo"},
      {"juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
      {"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
      {"foo\\20bar@example.com", "foo\\20bar", "example.com", ""},
      {"fussball@example.com", "fussball", "example.com", ""},
      {"fu\xC3\x9F" "ball@example.com", "fussball", "example.com", ""},
      {"\xCF\x80@example.com", "\xCF\x80", "example.com", ""},
      {"\xCE\xA3@example.com/foo", "\xCF\x83", "example.com", "foo"},
      {"\xCF\x83@example.com/foo", "\xCF\x83", "example.com", "foo"},
      {"\xCF\x82@example.com/foo", "\xCF\x83", "example.com", "foo"},
      {"king@example.com/\xE2\x99\x9A", "king", "example.com", "\xE2\x99\x9A"},
      {"example.com", "", "example.com", ""},
      {"example.com/foobar", "", "example.com", "foobar"},
      {"a.example.com/b@example.net", "", "a.example.com", "b@example.net"},
      // Erratum 4560 removed example 18 from the invalid list: a leading space is allowed.
      {"juliet@example.com/ foo", "juliet", "example.com", " foo"},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.text));
    const Jid j = must_parse(c.text);
    CHECK(j.local() == c.local);
    CHECK(j.domain() == c.domain);
    CHECK(j.resource() == c.resource);
    CHECK(must_parse(j.full()) == j);
  }
}

TEST_CASE("RFC 7622 section 3.5.2: invalid JIDs") {
  struct Case {
    const char* text;
    JidError error;
  };
  const Case cases[] = {
      {"\"juliet\"@example.com", JidError::bad_localpart},
      {"foo bar@example.com", JidError::bad_localpart},
      {"@example.com/", JidError::bad_localpart},
      {"henry\xE2\x85\xA3@example.com", JidError::bad_localpart},
      {"\xE2\x99\x9A@example.com", JidError::bad_localpart},
      {"juliet@", JidError::bad_domainpart},
      {"/foobar", JidError::bad_domainpart},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.text));
    auto r = Jid::parse(c.text);
    REQUIRE_FALSE(r);
    CHECK(r.error() == c.error);
  }
}

TEST_CASE("fragments and separators") {
  struct Case {
    std::string text;
    JidError error;
  };
  const Case cases[] = {
      {"", JidError::empty},
      {"@", JidError::bad_localpart},
      {"/", JidError::bad_domainpart},
      {"@/", JidError::bad_localpart},
      {"@domain", JidError::bad_localpart},
      {"@domain/res", JidError::bad_localpart},
      {"user@", JidError::bad_domainpart},
      {"user@/res", JidError::bad_domainpart},
      {"user@@domain", JidError::bad_domainpart},
      {"a@b@c", JidError::bad_domainpart},
      {"domain/", JidError::bad_resourcepart},
      {"user@domain/", JidError::bad_resourcepart},
      {".", JidError::bad_domainpart},
      {"user@.", JidError::bad_domainpart},
      {"user@domain..", JidError::bad_domainpart},
      {"user@conference..example.org", JidError::bad_domainpart},
      {"user@-do-main.com", JidError::bad_domainpart},
      {"user@do_main.com", JidError::bad_domainpart},
      {"user@[::1", JidError::bad_domainpart},
      {"user@::1]", JidError::bad_domainpart},
      {"user@[127.0.0.1]", JidError::bad_domainpart},
      {"jul\x01iet@example.com", JidError::bad_localpart},
      {std::string("foo\0bar@example.org", 19), JidError::bad_localpart},
      {std::string("foobar@ex\0ample.org", 19), JidError::bad_domainpart},
      {std::string("foobar@example.org/r\0", 21), JidError::bad_resourcepart},
      {"\xFF\xFE@example.com", JidError::bad_localpart},
      {"a\xC0\xAF" "b@example.com", JidError::bad_localpart},  // overlong '/'
      {"example.com/\xFF", JidError::bad_resourcepart},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    auto r = Jid::parse(c.text);
    REQUIRE_FALSE(r);
    CHECK(r.error() == c.error);
  }
}

TEST_CASE("the first '/' starts the resource, the first '@' before it ends the localpart") {
  Jid j = must_parse("server/resource@foo/bar");
  CHECK(j.local().empty());
  CHECK(j.domain() == "server");
  CHECK(j.resource() == "resource@foo/bar");
  j = must_parse("u@server/a@b/c@d");
  CHECK(j.local() == "u");
  CHECK(j.domain() == "server");
  CHECK(j.resource() == "a@b/c@d");
}

TEST_CASE("case folding and unicode") {
  Jid j = must_parse("J\xC3\xBCrgen@Example.COM/Res");
  CHECK(j.local() == "j\xC3\xBCrgen");
  CHECK(j.domain() == "example.com");
  CHECK(j.resource() == "Res");
  CHECK(j.full() == "j\xC3\xBCrgen@example.com/Res");
  CHECK(must_parse("JULIET@EXAMPLE.COM") == must_parse("juliet@example.com"));
  CHECK(must_parse("a@example.com/R") != must_parse("a@example.com/r"));
  CHECK(must_parse("e\xCC\x81@example.com") == must_parse("\xC3\xA9@example.com"));
  CHECK(must_parse("user@example.com.") == must_parse("user@example.com"));
  CHECK(must_parse("user@xn--bcher-kva.example").domain() == "b\xC3\xBC" "cher.example");
  CHECK(must_parse("user@B\xC3\x9C" "CHER.example").domain() == "b\xC3\xBC" "cher.example");
  CHECK(must_parse("\xD0\xBC\xD0\xB5\xD0\xB4\xD0\xB2\xD0\xB5\xD0\xB4\xD1\x8C@"
                   "\xD1\x81-\xD0\xB1\xD0\xB0\xD0\xBB\xD0\xB0\xD0\xBB\xD0\xB0\xD0\xB9\xD0\xBA\xD0\xBE\xD0\xB9."
                   "\xD1\x80\xD1\x84")
            .has_local());
  CHECK(must_parse("user@example.org/\xF0\x9F\x8D\xBA").resource() == "\xF0\x9F\x8D\xBA");
}

TEST_CASE("localparts in many scripts") {
  for (const char* text : {"Pel\xC3\xA9@example.com",
                           "\xCE\xB4\xCE\xBF\xCE\xBA\xCE\xB9\xCE\xBC\xCE\xAE@example.com",  // δοκιμή
                           "\xE6\x88\x91\xE8\xB2\xB7@example.com",                              // 我買
                           "\xE4\xBA\x8C\xE3\x83\x8E\xE5\xAE\xAE@example.com",                  // 二ノ宮
                           "\xE0\xA4\xB8\xE0\xA4\x82\xE0\xA4\xAA\xE0\xA4\xB0\xE0\xA5\x8D\xE0\xA4\x95@example.com",  // संपर्क
                           "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D@example.com"}) {                  // שלום
    CAPTURE(std::string(text));
    const Jid j = must_parse(text);
    CHECK(j.has_local());
    CHECK(must_parse(j.full()) == j);
  }
}

TEST_CASE("IP literals") {
  Jid j = must_parse("user@[2001:db8::1]/r");
  CHECK(j.domain() == "[2001:db8::1]");
  CHECK(j.full() == "user@[2001:db8::1]/r");
  CHECK(must_parse("user@192.168.1.1").domain() == "192.168.1.1");
  CHECK(must_parse("[::1]").domain() == "[::1]");
}

TEST_CASE("length limits per part") {
  const std::string l1023(1023, 'l');
  const std::string r1023(1023, 'r');
  std::string d1023;
  for (int i = 0; i < 15; ++i) d1023 += std::string(63, 'd') + ".";
  d1023 += std::string(63, 'd');
  REQUIRE(d1023.size() == 1023);
  Jid j = must_parse(l1023 + "@" + d1023 + "/" + r1023);
  CHECK(j.full().size() == 3 * 1023 + 2);
  CHECK(Jid::parse(l1023 + "l@" + d1023).error() == JidError::too_long);
  CHECK(Jid::parse("a@" + d1023 + "/" + r1023 + "r").error() == JidError::too_long);
  CHECK(Jid::parse("a@d." + d1023).error() == JidError::too_long);
  CHECK(Jid::parse("a@" + d1023 + "d").error() == JidError::bad_domainpart);  // 64-octet label
  CHECK(Jid::parse(std::string(1 << 20, 'a')).error() == JidError::too_long);
}

TEST_CASE("make") {
  Jid j = Jid::make("Romeo", "Example.NET", "Orchard").value();
  CHECK(j.full() == "romeo@example.net/Orchard");
  CHECK(j == must_parse("romeo@example.net/Orchard"));
  CHECK(Jid::make("", "example.net").value().full() == "example.net");
  CHECK(Jid::make("romeo", "example.net").value().is_bare());
  CHECK(Jid::make("ro@meo", "example.net").error() == JidError::bad_localpart);
  CHECK(Jid::make("ro/meo", "example.net").error() == JidError::bad_localpart);
  CHECK(Jid::make("romeo", "").error() == JidError::bad_domainpart);
  CHECK(Jid::make("romeo", "exa/mple").error() == JidError::bad_domainpart);
  CHECK(Jid::make("romeo", "example.net", "a/b@c").value().resource() == "a/b@c");
  CHECK(Jid::make("romeo", "example.net", "\x01").error() == JidError::bad_resourcepart);
}

TEST_CASE("accessors, bare and with_resource") {
  Jid empty;
  CHECK(empty.empty());
  CHECK(empty.full().empty());
  CHECK(empty.is_bare());
  CHECK_FALSE(empty.has_local());

  Jid j = must_parse("juliet@example.com/balcony");
  CHECK_FALSE(j.empty());
  CHECK_FALSE(j.is_bare());
  CHECK(j.has_local());
  CHECK(j.bare_str() == "juliet@example.com");
  CHECK(j.bare().full() == "juliet@example.com");
  CHECK(j.bare().is_bare());
  CHECK(j.bare() == must_parse("juliet@example.com"));
  CHECK(j.with_resource("chamber").full() == "juliet@example.com/chamber");
  CHECK(j.bare().with_resource("balcony") == j);

  Jid d = must_parse("example.com/x");
  CHECK_FALSE(d.has_local());
  CHECK(d.bare_str() == "example.com");
}

TEST_CASE("JidHash and ordering") {
  std::unordered_map<Jid, int, JidHash> m;
  m[must_parse("juliet@example.com/balcony")] = 1;
  m[must_parse("juliet@example.com")] = 2;
  m[must_parse("example.com/juliet")] = 3;
  CHECK(m.size() == 3);
  CHECK(m.at(must_parse("JULIET@example.com/balcony")) == 1);
  CHECK(m.at(must_parse("Juliet@Example.com")) == 2);
  CHECK(JidHash{}(must_parse("a@b/c")) == JidHash{}(must_parse("A@B/c")));
  CHECK(must_parse("a@b") < must_parse("b@a"));
}

TEST_CASE("jid_error_name") {
  CHECK(parley::jid_error_name(JidError::bad_localpart) == "invalid localpart");
  CHECK_FALSE(parley::jid_error_name(JidError::empty).empty());
}
