// The ASCII fast paths of nodeprep, resourceprep and nameprep_domain against
// libidn (detail::*_idn): the same value or the same error for every ASCII
// character in every place a part can hold it, for the lengths at the limits,
// and for many random ASCII strings.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "core/addr/prep.hpp"

namespace {

using parley::JidError;
using Prep = parley::Result<std::string, JidError> (*)(std::string_view);

struct Profile {
  const char* name;
  Prep fast;
  Prep idn;
};

const Profile kProfiles[] = {
    {"nodeprep", &parley::nodeprep, &parley::detail::nodeprep_idn},
    {"resourceprep", &parley::resourceprep, &parley::detail::resourceprep_idn},
    {"nameprep_domain", &parley::nameprep_domain, &parley::detail::nameprep_domain_idn},
};

void same(const Profile& p, const std::string& in) {
  auto fast = p.fast(in);
  auto idn = p.idn(in);
  CAPTURE(p.name);
  CAPTURE(in);
  REQUIRE(fast.has_value() == idn.has_value());
  if (fast) CHECK(*fast == *idn);
  else CHECK(fast.error() == idn.error());
}

// The places a character can stand: alone, first, last, inside, next to a
// dot (labels), doubled, in upper and lower case neighbours.
std::vector<std::string> placements(char c) {
  const std::string s(1, c);
  return {s,           s + "a",       "a" + s,        "a" + s + "b",  "A" + s + "B", s + s,
          "x." + s,    s + ".x",      "x." + s + "y", "x" + s + ".y", "xn--" + s,    "ab--" + s,
          "127.0.0." + s, "[" + s + "]"};
}

}  // namespace

TEST_CASE("every ASCII character, in every place, prepares as libidn prepares it") {
  for (int c = 0; c < 128; ++c)
    for (const std::string& in : placements(static_cast<char>(c)))
      for (const Profile& p : kProfiles) same(p, in);
}

TEST_CASE("the ASCII paths agree at the length limits and with domain label rules") {
  for (const Profile& p : kProfiles) {
    for (size_t n : {1u, 15u, 16u, 63u, 64u, 1022u, 1023u, 1024u, 4092u, 4093u, 5000u}) {
      same(p, std::string(n, 'a'));
      same(p, std::string(n, 'Z'));
    }
    std::string labels;  // 16 labels of 63: 1023 bytes with the dots
    for (int i = 0; i < 16; ++i) labels += (i ? "." : "") + std::string(63, 'a' + i);
    same(p, labels);
    same(p, labels + ".b");
    same(p, labels + ".");
    for (const char* in : {"localhost", "Example.ORG", "example.org.", "a..b", ".a", "a.", "..", ".", "-a", "a-",
                           "a-b", "a--b", "xn--", "xn--a", "XN--bcher-kva.example", "xn--bcher-kva.example",
                           "1.2.3.4", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "[::1]", "[::1", "::1", "[]",
                           "a_b", "under_score.example", "sp ace", "juliet", "Juliet", "balcony", "Bal cony",
                           "a@b", "a/b", "a:b", "a&b", "a'b", "a\"b", "a<b", "a>b"})
      same(p, in);
  }
}

TEST_CASE("random ASCII strings prepare alike on both paths") {
  std::mt19937 rng(20261206);
  // Mostly letters and digits, with the separators and the characters the
  // profiles treat specially mixed in.
  const std::string alphabet = "abcXYZ019-._ @/:&'\"<>\x01\x7f\t[]xn";
  for (int i = 0; i < 20000; ++i) {
    std::string in;
    const size_t len = 1 + rng() % 24;
    for (size_t k = 0; k < len; ++k) in += alphabet[rng() % alphabet.size()];
    for (const Profile& p : kProfiles) same(p, in);
  }
}
