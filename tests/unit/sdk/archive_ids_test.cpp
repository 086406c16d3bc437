// parley/sdk/archive_ids.hpp: XEP-0313's unpredictable archive ids.
#include "parley/sdk/archive_ids.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

namespace {

const std::string kKey("0123456789abcdef", 16);

TEST_CASE("archive ids: a keyed id is 22 base64url characters and decodes back") {
  parley::ArchiveIds ids(kKey);
  REQUIRE(ids.keyed());
  std::set<std::string> seen;
  for (uint64_t id : {uint64_t{1}, uint64_t{2}, uint64_t{1733541234567890}, uint64_t{1733541234567891},
                      uint64_t{INT64_MAX}}) {
    const std::string text = ids.encode(id);
    CHECK(text.size() == parley::ArchiveIds::kTextSize);
    CHECK(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
    CHECK(ids.decode(text) == id);
    CHECK(seen.insert(text).second);
  }
}

TEST_CASE("archive ids: consecutive numbers give unrelated ids, and another key other ids") {
  parley::ArchiveIds ids(kKey);
  parley::ArchiveIds other(std::string("fedcba9876543210", 16));
  const std::string a = ids.encode(1733541234567890), b = ids.encode(1733541234567891);
  int same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  CHECK(same < 8);  // a block cipher: about one character in 64 agrees by chance
  CHECK(other.encode(1733541234567890) != a);
  CHECK(!other.decode(a));  // another key's id names nothing here (its zero half is not zero)
}

TEST_CASE("archive ids: texts that are no id of this archive") {
  parley::ArchiveIds ids(kKey);
  const std::string good = ids.encode(42);
  for (std::string bad : {std::string(), std::string("x1"), std::string("-2"), std::string("0"),
                          std::string("9223372036854775808"), good.substr(1), good + "A",
                          std::string(22, '='), std::string(21, 'A') + "B" /* nonzero tail bits */,
                          std::string("AAAAAAAAAAAAAAAAAAAAAA") /* the zero block: its plaintext is not ours */,
                          std::string("123e4567-e89b-12d3-a456-426614174000")}) {
    CHECK_MESSAGE(!ids.decode(bad), bad);
  }
  std::string flipped = good;
  flipped[3] = flipped[3] == 'A' ? 'B' : 'A';
  CHECK(!ids.decode(flipped));
}

TEST_CASE("archive ids: decimal ids of earlier versions still decode; without a key ids are decimal") {
  parley::ArchiveIds ids(kKey);
  CHECK(ids.decode("1733541234567890") == uint64_t{1733541234567890});
  parley::ArchiveIds plain;
  CHECK(!plain.keyed());
  CHECK(plain.encode(42) == "42");
  CHECK(plain.decode("42") == uint64_t{42});
  CHECK(!plain.decode(ids.encode(42)));
  CHECK(!parley::ArchiveIds(std::string("short")).keyed());
}

TEST_CASE("archive ids: encode_text gives encode's text in place, keyed or decimal, up to the largest id") {
  parley::ArchiveIds keyed(kKey);
  parley::ArchiveIds plain;
  for (uint64_t id : {uint64_t{0}, uint64_t{1}, uint64_t{9}, uint64_t{10}, uint64_t{1733541234567890},
                      uint64_t{INT64_MAX}, UINT64_MAX}) {
    CHECK(std::string(keyed.encode_text(id).view()) == keyed.encode(id));
    CHECK(keyed.encode_text(id).view().size() == parley::ArchiveIds::kTextSize);
    CHECK(plain.encode_text(id).view() == std::to_string(id));
  }
  CHECK(plain.encode_text(UINT64_MAX).view() == "18446744073709551615");  // 20 digits fit
}

}  // namespace
