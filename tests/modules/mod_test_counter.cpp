// mod_test_counter: state carried across a hot reload. Built twice from this
// file: v1 and v2 (-DPARLEY_TEST_COUNTER_V2). iq get urn:parley:test:counter
// counts the request and answers <query><count>N</count></query> with N the
// number of requests served so far, this one included (first answer: 1); v2
// adds <version>2</version>. save_state/restore_state carry N as decimal bytes.
#include <atomic>
#include <charconv>
#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_counter = "urn:parley:test:counter";
#ifdef PARLEY_TEST_COUNTER_V2
constexpr const char* version = "2.0.0";
#else
constexpr const char* version = "1.0.0";
#endif

class ModTestCounter : public parley::Module {
 public:
  void on_count(const parley::IqRequest& request) {
    uint64_t n = count_.fetch_add(1) + 1;
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef query = reply.add_child("query", ns_counter);
    query.add_child("count", ns_counter).add_text(std::to_string(n));
#ifdef PARLEY_TEST_COUNTER_V2
    query.add_child("version", ns_counter).add_text("2");
#endif
    host().route(std::move(reply));
  }

  parley::Result<std::string, std::string> save_state() override { return std::to_string(count_.load()); }

  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    if (bytes.empty()) return {};  // the old code saved nothing: start from 0
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + bytes.size(), n);
    if (ec != std::errc() || end != bytes.data() + bytes.size())
      return parley::unexpected(std::string("not a count: ") + std::string(bytes.substr(0, 32)));
    count_.store(n);
    return {};
  }

 private:
  std::atomic<uint64_t> count_{0};
};

}  // namespace

PARLEY_MODULE(ModTestCounter, "mod_test_counter", version,
              parley::iq_handler<&ModTestCounter::on_count>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_counter))
