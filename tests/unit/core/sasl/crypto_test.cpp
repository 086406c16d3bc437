// core/sasl/crypto: the digests and HMACs SCRAM is built from, against published
// vectors and values computed elsewhere: calls that alternate keys and hashes on
// one thread (an implementation that kept a context per thread and the key of the
// call before would show), the empty key, keys longer than a block, and other
// threads' calls.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "core/sasl/crypto.hpp"
#include "tests/unit/core/sasl/hex.hpp"

using namespace parley::sasl;
using parley::sasl::test::hex;

TEST_CASE("digest: FIPS 180 vectors for SHA-1 and SHA-256, alternating") {
  for (int round = 0; round < 2; ++round) {
    CHECK(hex(digest(Hash::sha1, "abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(hex(digest(Hash::sha256, "abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex(digest(Hash::sha256, "")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
}

TEST_CASE("hmac: RFC 2202 and RFC 4231 vectors, keys and hashes alternating on one thread") {
  const std::string key20(20, '\x0b');
  const std::string key131(131, '\xaa');  // longer than a block: hashed first
  for (int round = 0; round < 2; ++round) {
    // RFC 4231 test case 1.
    CHECK(hex(hmac(Hash::sha256, key20, "Hi There")) ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    // RFC 2202 test case 2 (SHA-1): another key and hash right after.
    CHECK(hex(hmac(Hash::sha1, "Jefe", "what do ya want for nothing?")) ==
          "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    // RFC 4231 test case 2.
    CHECK(hex(hmac(Hash::sha256, "Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // RFC 4231 test case 6.
    CHECK(hex(hmac(Hash::sha256, key131, "Test Using Larger Than Block-Size Key - Hash Key First")) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    // RFC 2202 test case 1 (SHA-1).
    CHECK(hex(hmac(Hash::sha1, key20, "Hi There")) == "b617318655057264e28bc0b6fb378c8ef146be00");
  }
}

TEST_CASE("hmac: the empty key and empty data, whatever key came before (values from Python's hmac)") {
  for (int round = 0; round < 2; ++round) {
    (void)hmac(Hash::sha1, "a key that must not stay", "data");
    CHECK(hex(hmac(Hash::sha1, "", "data")) == "257d2c35443af1e2fe590bcf71d7cfc2e7253310");
    CHECK(hex(hmac(Hash::sha1, "key", "")) == "f42bb0eeb018ebbd4597ae7213711ec60760843f");
    CHECK(hex(hmac(Hash::sha1, "", "")) == "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
    (void)hmac(Hash::sha256, "a key that must not stay", "data");
    CHECK(hex(hmac(Hash::sha256, "", "data")) ==
          "e528c4d99e6177f5841f712a143b90843299a4aa181a06501422d9ca862bd2a5");
    CHECK(hex(hmac(Hash::sha256, "key", "")) ==
          "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
    CHECK(hex(hmac(Hash::sha256, "", "")) ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  }
}

TEST_CASE("hmac and digest give the same results on other threads") {
  const std::string expected = hmac(Hash::sha256, "Jefe", "what do ya want for nothing?");
  const std::string expected_digest = digest(Hash::sha1, "abc");
  std::vector<std::string> got(4), got_digest(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      got[i] = hmac(Hash::sha256, "Jefe", "what do ya want for nothing?");
      got_digest[i] = digest(Hash::sha1, "abc");
    });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i] == expected);
    CHECK(got_digest[i] == expected_digest);
  }
}
