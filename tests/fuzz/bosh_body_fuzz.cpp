// libFuzzer target: BOSH framing (core/net/bosh_body.hpp, bosh_rids.hpp).
// First byte even: the bytes are an HTTP request body; beyond "no crash", a
// body that parses must give payloads that parse again, wrapped in a fresh
// <body/>, to the same payloads (what reaches the c2s stream is a fixed
// point: nothing the client sent is read two ways). First byte odd: the
// bytes drive the rid window (offsets from its next rid, repeats, answers,
// acks); it must hand out consecutive rids only, never hold more than its
// window nor keep more than its answers.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/net/bosh_body.hpp"
#include "core/net/bosh_rids.hpp"

namespace {

void body_case(std::string_view text) {
  parley::xml::Limits limits;
  limits.max_stanza_bytes = 4096;
  auto body = parley::bosh::parse_body(text, limits);
  if (!body) return;
  std::string again = "<body xmlns='http://jabber.org/protocol/httpbind'>";
  for (const std::string& p : body->payloads) again += p;
  again += "</body>";
  parley::xml::Limits roomy;  // a payload re-serialized may be a little longer
  auto reparsed = parley::bosh::parse_body(again, roomy);
  if (!reparsed || reparsed->payloads != body->payloads) std::abort();
  for (const std::string& p : body->payloads)
    if (p.empty() || p.front() != '<') std::abort();
}

void rids_case(const uint8_t* data, size_t size) {
  constexpr unsigned kWindow = 3, kKeep = 3;
  parley::bosh::RidWindow<int> w(1000, kWindow, kKeep);
  uint64_t expect = 1001;
  uint64_t held = 0;  // a processed rid not answered yet (0: none)
  std::optional<int> displaced;
  for (size_t i = 0; i < size; ++i) {
    uint8_t b = data[i];
    switch (b >> 6) {
      case 0: {  // a request at an offset around the next rid
        int64_t offset = static_cast<int64_t>(b & 15) - 8;
        int64_t rid = static_cast<int64_t>(w.last_processed()) + 1 + offset;
        if (rid <= 0) break;
        w.admit(static_cast<uint64_t>(rid), static_cast<int>(i), [&](uint64_t r) { return r == held; }, displaced);
        break;
      }
      case 1:  // process what is ready
        while (auto next = w.next_ready()) {
          if (next->first != expect) std::abort();
          ++expect;
          held = next->first;
        }
        break;
      case 2:  // answer the held one
        if (held != 0) {
          w.answered(held, std::to_string(held));
          const std::string* a = w.answer(held);
          if (a == nullptr || *a != std::to_string(held)) std::abort();
          held = 0;
        }
        break;
      default:  // an ack
        w.acknowledged(w.last_processed() - (b & 7));
        break;
    }
    if (w.waiting() > kWindow || w.kept() > kKeep) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if ((data[0] & 1) == 0)
    body_case(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  else
    rids_case(data + 1, size - 1);
  return 0;
}
