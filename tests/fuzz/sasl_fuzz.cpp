// libFuzzer target: everything in parley_sasl that reads client bytes.
//
// Input layout: byte 0 picks the ScramServer set-up (bit 0: SHA-256, bit 1: the
// client chose -PLUS, bit 2: we offered -PLUS, bit 3: binding data available);
// the rest is "client-first-message \n client-final-message". The whole input
// also goes to parse_plain, base64_decode and saslprep.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/sasl/base64.hpp"
#include "core/sasl/plain.hpp"
#include "core/sasl/saslprep.hpp"
#include "core/sasl/scram_credentials.hpp"
#include "core/sasl/scram_server.hpp"

using namespace parley::sasl;

namespace {

const ScramCredentials& creds(Hash hash) {
  // Few iterations: the fuzzer should spend its time in the parsers, not in PBKDF2.
  static const ScramCredentials sha1 = derive_scram_credentials(Hash::sha1, "pencil", "salt", 2);
  static const ScramCredentials sha256 = derive_scram_credentials(Hash::sha256, "pencil", "salt", 2);
  return hash == Hash::sha1 ? sha1 : sha256;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);

  (void)parse_plain(all);
  (void)saslprep(all);
  if (auto decoded = base64_decode(all)) {
    // Strict decoding means one text per byte string: re-encoding gives the input back.
    if (base64_encode(*decoded) != all) std::abort();
  }

  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string_view rest = all.substr(1);
  const size_t nl = rest.find('\n');
  const std::string_view first = rest.substr(0, nl);
  const std::string_view final_msg = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);

  const Hash hash = (flags & 1) ? Hash::sha256 : Hash::sha1;
  ChannelBinding cb;
  if (flags & 8) cb = ChannelBinding{std::string(32, 'e'), std::string(32, 's'), std::string(12, 'u')};
  ScramServer server(hash, (flags & 2) != 0, cb, (flags & 4) != 0);
  auto authcid = server.client_first(first);
  if (!authcid) return 0;
  if (authcid->empty()) std::abort();
  server.set_server_nonce_for_test("snonce");
  const std::string challenge = server.server_first(creds(hash));
  if (challenge.empty()) std::abort();
  if (auto v = server.client_final(final_msg)) {
    // Reaching success would mean the fuzzer forged a proof for "pencil".
    std::abort();
  }
  return 0;
}
