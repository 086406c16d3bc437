#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "core/sasl/base64.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "tests/unit/core/sasl/hex.hpp"

using namespace parley::sasl;
using parley::sasl::test::hex;

TEST_CASE("derive_scram_credentials: RFC 5802 and RFC 7677 example users") {
  auto c1 = derive_scram_credentials(Hash::sha1, "pencil", base64_decode("QSXCR+Q6sek8bf92").value(), 4096);
  CHECK(c1.hash == Hash::sha1);
  CHECK(c1.iterations == 4096);
  CHECK(base64_encode(c1.salt) == "QSXCR+Q6sek8bf92");
  CHECK(hex(c1.stored_key) == "e9d94660c39d65c38fbad91c358f14da0eef2bd6");
  CHECK(hex(c1.server_key) == "0fe09258b3ac852ba502cc62ba903eaacdbf7d31");

  auto c256 =
      derive_scram_credentials(Hash::sha256, "pencil", base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").value(), 4096);
  CHECK(hex(c256.stored_key) == "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6");
  CHECK(hex(c256.server_key) == "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5");
}

TEST_CASE("pbkdf2: RFC 6070 vectors") {
  CHECK(hex(pbkdf2(Hash::sha1, "password", "salt", 1)) == "0c60c80f961f0e71f3a9b524af6012062fe037a6");
  CHECK(hex(pbkdf2(Hash::sha1, "password", "salt", 4096)) == "4b007901b765489abead49d926f721d065a429c1");
}

TEST_CASE("verify_password") {
  auto c = derive_scram_credentials(Hash::sha256, "pencil", "saltsaltsalt", 128);
  CHECK(verify_password(c, "pencil"));
  CHECK_FALSE(verify_password(c, "pencil2"));
  CHECK_FALSE(verify_password(c, "Pencil"));
  CHECK_FALSE(verify_password(c, ""));
  CHECK_FALSE(verify_password(c, "penci\xFF"));
  // The password is SASLprep'd before the comparison, as it was before storing.
  auto u = derive_scram_credentials(Hash::sha1, "IX", "s", 16);
  CHECK(verify_password(u, "I\xC2\xAD" "X"));
  CHECK(verify_password(u, "\xE2\x85\xA8"));
  ScramCredentials broken = c;
  broken.stored_key.pop_back();
  CHECK_FALSE(verify_password(broken, "pencil"));
}

TEST_CASE("make_dummy_credentials is stable per user and differs between users") {
  auto a1 = make_dummy_credentials(Hash::sha256, "alice");
  auto a2 = make_dummy_credentials(Hash::sha256, "alice");
  auto b = make_dummy_credentials(Hash::sha256, "bob");
  CHECK(a1.salt == a2.salt);
  CHECK(a1.stored_key == a2.stored_key);
  CHECK(a1.salt != b.salt);
  CHECK(a1.salt.size() == 16);
  CHECK(a1.iterations == kDefaultScramIterations);
  CHECK(a1.stored_key.size() == 32);
  CHECK(make_dummy_credentials(Hash::sha1, "alice").stored_key.size() == 20);
  CHECK(make_dummy_credentials(Hash::sha1, "alice", 10000).iterations == 10000);
  CHECK_FALSE(verify_password(a1, "alice"));
  CHECK_FALSE(verify_password(a1, ""));
}

TEST_CASE("dummy salts differ per mechanism, follow the salt length asked, and derive from the server secret") {
  // A real account has one random salt per mechanism: a missing one must too.
  auto sha1 = make_dummy_credentials(Hash::sha1, "ghost");
  auto sha256 = make_dummy_credentials(Hash::sha256, "ghost");
  CHECK(sha1.salt != sha256.salt);
  CHECK(sha1.salt.size() == sha256.salt.size());
  CHECK(make_dummy_credentials(Hash::sha1, "ghost").salt == sha1.salt);
  CHECK(make_dummy_credentials(Hash::sha1, "ghost", 4096, 40).salt.size() == 40);
  CHECK(make_dummy_credentials(Hash::sha1, "ghost", 4096, 40).salt.substr(0, 16) == sha1.salt);

  // The same secret (a restart reading it back) gives the same salts; another one does not.
  set_dummy_secret(std::string(kDummySecretBytes, 'a'));
  auto a = make_dummy_credentials(Hash::sha256, "ghost");
  set_dummy_secret(std::string(kDummySecretBytes, 'b'));
  CHECK(make_dummy_credentials(Hash::sha256, "ghost").salt != a.salt);
  set_dummy_secret(std::string(kDummySecretBytes, 'a'));
  CHECK(make_dummy_credentials(Hash::sha256, "ghost").salt == a.salt);
}

TEST_CASE("the server secret is created once, owner-only, and read back") {
  char dir_template[] = "/tmp/parley-secret-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string path = std::string(dir_template) + "/sasl_secret";
  auto first = load_or_create_secret(path);
  REQUIRE(first);
  CHECK(first->size() == kDummySecretBytes);
  struct stat st{};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = load_or_create_secret(path);
  REQUIRE(again);
  CHECK(*again == *first);
  // A damaged file is an error, not a silently new secret.
  REQUIRE(truncate(path.c_str(), 5) == 0);
  CHECK_FALSE(load_or_create_secret(path));
  CHECK_FALSE(load_or_create_secret(std::string(dir_template) + "/no/such/dir/sasl_secret"));
  unlink(path.c_str());
  rmdir(dir_template);
}
