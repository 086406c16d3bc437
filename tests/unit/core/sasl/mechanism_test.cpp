#include <doctest/doctest.h>

#include <string>

#include "core/sasl/crypto.hpp"
#include "core/sasl/failure.hpp"
#include "core/sasl/mechanism.hpp"

using namespace parley::sasl;

TEST_CASE("mechanism names") {
  for (auto m : {Mechanism::scram_sha1, Mechanism::scram_sha1_plus, Mechanism::scram_sha256,
                 Mechanism::scram_sha256_plus, Mechanism::plain}) {
    CHECK(parse_mechanism(mechanism_name(m)) == m);
  }
  CHECK(mechanism_name(Mechanism::scram_sha256_plus) == "SCRAM-SHA-256-PLUS");
  CHECK_FALSE(parse_mechanism("scram-sha-1"));
  CHECK_FALSE(parse_mechanism("DIGEST-MD5"));
  CHECK_FALSE(parse_mechanism(""));
  CHECK_FALSE(parse_mechanism("PLAIN "));
  CHECK(is_plus(Mechanism::scram_sha1_plus));
  CHECK_FALSE(is_plus(Mechanism::scram_sha256));
  CHECK_FALSE(is_scram(Mechanism::plain));
  CHECK(scram_hash(Mechanism::scram_sha1_plus) == Hash::sha1);
  CHECK(scram_hash(Mechanism::scram_sha256) == Hash::sha256);
}

TEST_CASE("RFC 6120 section 6.5 condition names") {
  CHECK(condition_name(Failure::aborted) == "aborted");
  CHECK(condition_name(Failure::account_disabled) == "account-disabled");
  CHECK(condition_name(Failure::credentials_expired) == "credentials-expired");
  CHECK(condition_name(Failure::encryption_required) == "encryption-required");
  CHECK(condition_name(Failure::incorrect_encoding) == "incorrect-encoding");
  CHECK(condition_name(Failure::invalid_authzid) == "invalid-authzid");
  CHECK(condition_name(Failure::invalid_mechanism) == "invalid-mechanism");
  CHECK(condition_name(Failure::malformed_request) == "malformed-request");
  CHECK(condition_name(Failure::mechanism_too_weak) == "mechanism-too-weak");
  CHECK(condition_name(Failure::not_authorized) == "not-authorized");
  CHECK(condition_name(Failure::temporary_auth_failure) == "temporary-auth-failure");
}

TEST_CASE("random_bytes") {
  CHECK(random_bytes(0).empty());
  CHECK(random_bytes(32).size() == 32);
  CHECK(random_bytes(32) != random_bytes(32));
}
