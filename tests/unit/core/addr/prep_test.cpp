#include <doctest/doctest.h>

#include <string>

#include "core/addr/jid.hpp"
#include "core/addr/prep.hpp"

using parley::JidError;
using parley::nameprep_domain;
using parley::nodeprep;
using parley::resourceprep;

TEST_CASE("nodeprep folds case and normalizes") {
  CHECK(nodeprep("Juliet").value() == "juliet");
  CHECK(nodeprep("J\xC3\xBCrgen").value() == "j\xC3\xBCrgen");
  CHECK(nodeprep("Ju\xCC\x88rgen").value() == "j\xC3\xBCrgen");      // combining diaeresis composed
  CHECK(nodeprep("\xEF\xBC\xAA\xEF\xBD\x95\xEF\xBD\x8C").value() == "jul");  // fullwidth mapped
  CHECK(nodeprep("fu\xC3\x9F" "ball").value() == "fussball");
  CHECK(nodeprep("\xCE\xA3").value() == "\xCF\x83");                 // Σ -> σ
}

TEST_CASE("nodeprep refuses what RFC 7622 refuses") {
  for (const char* bad : {"", "\"juliet\"", "foo bar", "a&b", "a'b", "a/b", "a:b", "a<b", "a>b", "a@b",
                          "henry\xE2\x85\xA3",    // ROMAN NUMERAL FOUR (compatibility)
                          "\xE2\x99\x9A",         // ♚ (symbol)
                          "a\xE2\x80\x94" "b",    // em dash (punctuation)
                          "\xC2\xBD",             // ½
                          "\xEF\xAC\x81",         // ﬁ ligature
                          "\xC2\xAD",             // soft hyphen (punctuation in Unicode 3.2)
                          "\xE2\x80\x8B",         // zero width space: maps to nothing -> empty
                          "a\x07", "a\x7F", "\xC2\xA0", "a\xFF", "\xC0\xAF",
                          "\xF0\x9F\x8D\xBA",     // emoji: unassigned in Unicode 3.2
                          "\xD8\xA7" "a"}) {      // bidi: RandALCat with LCat
    CAPTURE(std::string(bad));
    auto r = nodeprep(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == JidError::bad_localpart);
  }
  CHECK_FALSE(nodeprep(std::string("a\0b", 3)));
}

TEST_CASE("nodeprep length limits") {
  CHECK(nodeprep(std::string(1023, 'a')));
  CHECK(nodeprep(std::string(1024, 'a')).error() == JidError::too_long);
  CHECK(nodeprep(std::string(100000, 'a')).error() == JidError::too_long);
  // "ü" is two bytes: 511 of them plus 'a' = 1023 bytes, 512 of them = 1024
  std::string u;
  for (int i = 0; i < 511; ++i) u += "\xC3\xBC";
  CHECK(nodeprep(u + "a"));
  CHECK(nodeprep(u + "\xC3\xBC").error() == JidError::too_long);
  // a raw part longer than 1023 that shrinks under preparation is fine
  std::string shrinking, composed;
  for (int i = 0; i < 400; ++i) {
    shrinking += "e\xCC\x81";  // e + combining acute: 3 bytes, composed to 2
    composed += "\xC3\xA9";
  }
  REQUIRE(shrinking.size() == 1200);
  CHECK(nodeprep(shrinking).value() == composed);
}

TEST_CASE("nameprep_domain") {
  CHECK(nameprep_domain("Example.COM").value() == "example.com");
  CHECK(nameprep_domain("example.com.").value() == "example.com");
  CHECK(nameprep_domain("localhost").value() == "localhost");
  CHECK(nameprep_domain("B\xC3\xBC" "cher.de").value() == "b\xC3\xBC" "cher.de");
  CHECK(nameprep_domain("xn--bcher-kva.de").value() == "b\xC3\xBC" "cher.de");
  CHECK(nameprep_domain("XN--BCHER-KVA.DE").value() == "b\xC3\xBC" "cher.de");
  CHECK(nameprep_domain("a\xE3\x80\x82" "b").value() == "a.b");  // ideographic full stop separates labels
  CHECK(nameprep_domain("[::1]").value() == "[::1]");
  CHECK(nameprep_domain("[2001:db8::ABCD]").value() == "[2001:db8::ABCD]");
  CHECK(nameprep_domain("192.168.1.1").value() == "192.168.1.1");
  CHECK(nameprep_domain("192.168.1.1.").value() == "192.168.1.1");
  CHECK(nameprep_domain(std::string(63, 'a') + ".com"));
  CHECK(nameprep_domain("1.2.3.999").value() == "1.2.3.999");  // not an IPv4 literal, but valid LDH labels
}

TEST_CASE("nameprep_domain refuses") {
  for (const char* bad : {"", ".", "..", "example.com..", ".example.com", "a..b", "do_main.com", "-a.com",
                          "a-.com", "a b.com", "a@b", "a/b", "a:b", "[::1", "::1]", "[127.0.0.1]",
                          "[::1%eth0]", "[]", "[example.com]", "xn--zz", "xn--a.com", "a\xFF.com",
                          "\xC0\xAE" "com", "a\x01.com", "b\xC3\xBC" "cher.xn--a"}) {
    CAPTURE(std::string(bad));
    auto r = nameprep_domain(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == JidError::bad_domainpart);
  }
  CHECK_FALSE(nameprep_domain(std::string(64, 'a') + ".com"));
  CHECK_FALSE(nameprep_domain(std::string("exa\0mple.com", 12)));
}

TEST_CASE("nameprep_domain length limit") {
  std::string d;
  while (d.size() < 1020) d += std::string(62, 'a') + ".";
  d += "com";
  CHECK(nameprep_domain(d).error() == JidError::too_long);
  std::string ok;
  for (int i = 0; i < 15; ++i) ok += std::string(63, 'b') + ".";  // 960 bytes
  ok += std::string(62, 'c');                                      // 1022 bytes
  CHECK(nameprep_domain(ok).value().size() == 1022);
  CHECK(nameprep_domain(ok + "c").value().size() == 1023);
  CHECK(nameprep_domain("c." + ok).error() == JidError::too_long);
}

TEST_CASE("resourceprep keeps case and allows what the resource may hold") {
  CHECK(resourceprep("Balcony").value() == "Balcony");
  CHECK(resourceprep("foo bar").value() == "foo bar");
  CHECK(resourceprep(" foo").value() == " foo");
  CHECK(resourceprep("foo@bar/baz").value() == "foo@bar/baz");
  CHECK(resourceprep("\xE2\x99\x9A").value() == "\xE2\x99\x9A");
  CHECK(resourceprep("\xF0\x9F\x8D\xBA").value() == "\xF0\x9F\x8D\xBA");  // emoji
  CHECK(resourceprep("\xEF\xBC\xB2").value() == "R");                     // fullwidth R, NFKC
  CHECK(resourceprep(std::string(1023, 'r')));
  CHECK(resourceprep(std::string(1024, 'r')).error() == JidError::too_long);
  CHECK(resourceprep("\xC2\xA0").value() == " ");  // NBSP normalized to space before the prohibition check
  for (const char* bad : {"", "a\x01", "\xE1\x9A\x80x", "a\xFF", "\xC2\xAD", "a\xE2\x80\x8E", "\xEF\xBF\xBF"}) {
    CAPTURE(std::string(bad));
    auto r = resourceprep(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == JidError::bad_resourcepart);
  }
  CHECK_FALSE(resourceprep(std::string("a\0b", 3)));
}

// PR-29 (Unicode Corrigendum #5): libidn's NFKC composes a Hangul L+V pair
// across a combining mark and leaves the marks out of canonical order, so a
// second preparation changes the string again. Found with a small search
// program over libidn's stringprep_profile; each of these changes on a second
// pass under Nodeprep, Resourceprep and SASLprep.
namespace {
constexpr const char* kUnstable[] = {
    "\xE1\x84\x80\xCC\x81\xE1\x85\xA1\xCC\xA3",          // U+1100 U+0301 U+1161 U+0323 -> U+AC00 U+0301 U+0323
    "x\xE1\x84\x80\xCC\x81\xE1\x85\xA1\xCC\xA3",         // the same after a letter
    "\xE1\x84\x92\xCC\x88\xE1\x85\xA2\xE3\x82\x99",      // U+1112 U+0308 U+1162 U+3099
    "\xE1\x84\x92\xCC\x81\xE3\x85\x8F\xCC\xA3",          // U+1112 U+0301 U+314F (compatibility jamo) U+0323
};
}  // namespace

TEST_CASE("preparation that is not idempotent is refused (PR-29 sequences)") {
  for (const char* s : kUnstable) {
    CAPTURE(s);
    CHECK(nodeprep(s).error() == JidError::bad_localpart);
    CHECK(resourceprep(s).error() == JidError::bad_resourcepart);
    CHECK_FALSE(parley::Jid::parse(std::string(s) + "@example.org"));
    CHECK_FALSE(parley::Jid::parse(std::string("juliet@example.org/") + s));
  }
  // The same marks in canonical order, or without the jamo pair, are fine.
  CHECK(resourceprep("\xEA\xB0\x80\xCC\xA3\xCC\x81").value() == "\xEA\xB0\x80\xCC\xA3\xCC\x81");
  CHECK(nodeprep("\xE1\x84\x80\xE1\x85\xA1").value() == "\xEA\xB0\x80");  // L+V composes to U+AC00
}

TEST_CASE("every accepted preparation prepares to itself") {
  for (const char* s : {"Juliet", "J\xC3\xBCrgen", "Ju\xCC\x88rgen", "fu\xC3\x9F" "ball", "\xCE\xA3",
                        "\xEF\xBC\xAA\xEF\xBD\x95\xEF\xBD\x8C", "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8",
                        "a\xCC\x81\xCC\xA3", "\xE0\xAD\x87\xCC\x80\xE0\xAC\xBE"}) {
    CAPTURE(s);
    if (auto once = nodeprep(s)) CHECK(nodeprep(*once).value() == *once);
    if (auto once = resourceprep(s)) CHECK(resourceprep(*once).value() == *once);
  }
}
