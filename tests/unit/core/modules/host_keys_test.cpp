// ABI 1.9 derive_key (core/modules/host_api_keys.hpp): a module's keys from the
// server's secret.
#include "core/modules/host_api_keys.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using parley::host_keys::derive;

const std::string kSecret(32, 's');

TEST_CASE("derive_key: the same inputs give the same key, each input changes it") {
  const std::string key = derive(kSecret, "mod_mam", "example.org", "archive ids", 16);
  CHECK(key.size() == 16);
  CHECK(derive(kSecret, "mod_mam", "example.org", "archive ids", 16) == key);
  CHECK(derive(std::string(32, 't'), "mod_mam", "example.org", "archive ids", 16) != key);
  CHECK(derive(kSecret, "mod_muc", "example.org", "archive ids", 16) != key);
  CHECK(derive(kSecret, "mod_mam", "example.net", "archive ids", 16) != key);
  CHECK(derive(kSecret, "mod_mam", "example.org", "other", 16) != key);
  // The names are kept apart: moving a character from one to the next is another key.
  CHECK(derive(kSecret, "mod_ma", "mexample.org", "archive ids", 16) != key);
  CHECK(derive(kSecret, "mod_mam", "example.org", "archive ids", 32).substr(0, 16) == key);
  CHECK(derive(kSecret, "mod_mam", "example.org", "archive ids", 64).size() == 32);
}

TEST_CASE("derive_key: the host entry refuses what it cannot fill") {
  uint8_t out[32] = {};
  const parley_str label{"x", 1};
  CHECK(parley::host_keys::derive_key(nullptr, label, out, 16) == 0);
}

}  // namespace
