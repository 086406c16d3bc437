// mod_test_reload: which code handles each event across hot reloads (the
// reload storm tests). It counts every session event and iq it handles, and
// carries the counts and a generation (1 at load, +1 per restore) through
// save_state/restore_state. Once an instance has saved its state, any entry
// into it (hook, iq, posted task, timer) is a bug of the host: it is logged
// as "mod_test_reload: ran after save_state: WHAT" for the test to find, and
// its count is lost with the old instance, so the totals stop adding up.
//
//   iq get <query xmlns='urn:parley:test:reload'/>   (PARLEY_IQ_SERVER) the
//       counts, at once: <query><generation/><opened/><bound/><closed/>
//       <iqs/><preauth/><later/></query>
//   iq set <later xmlns='urn:parley:test:reload' ms='N'/>   answered from a
//       posted task (a completion), which answers from a timer of N ms
//       (another one; default 1)
//   iq get <query xmlns='urn:parley:test:reload:preauth'/> (PARLEY_IQ_PREAUTH)
//       answered before authentication with session_reply
// Option save_delay_ms: save_state takes that long (a slow save widens the
// window in which an unpaused host would still call the old code).
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_reload = "urn:parley:test:reload";
constexpr const char* ns_preauth = "urn:parley:test:reload:preauth";

class ModTestReload : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    save_delay_ms_ = host().option_int("save_delay_ms").value_or(0);
    return {};
  }

  void on_opened(const parley::Event&) { count(opened_, "SESSION_OPENED"); }
  void on_bound(const parley::Event&) { count(bound_, "SESSION_BOUND"); }
  void on_closed(const parley::Event&) { count(closed_, "SESSION_CLOSED"); }
  // Asked synchronously as a stream closes (ABI 1.12): not counted, only checked.
  void on_stream_closing(const parley::Event&) { check("STREAM_CLOSING"); }

  void on_query(const parley::IqRequest& request) {
    count(iqs_, "iq");
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef query = reply.add_child("query", ns_reload);
    auto add = [&](const char* name, uint64_t value) { query.add_child(name, ns_reload).add_text(std::to_string(value)); };
    add("generation", generation_);
    add("opened", opened_.load());
    add("bound", bound_.load());
    add("closed", closed_.load());
    add("iqs", iqs_.load());
    add("preauth", preauth_.load());
    add("later", later_.load());
    host().route(std::move(reply));
  }

  // A completion chain: a posted task on this loop, then a timer on it.
  void on_later(const parley::IqRequest& request) {
    count(iqs_, "iq (later)");
    auto reply = std::make_shared<parley::Element>(parley::make_iq_result(request.iq()));
    int64_t ms = 1;
    if (auto text = request.payload()->attr("ms")) ms = std::stoll(std::string(*text));
    int32_t loop = parley::current_loop(host());
    bool posted = parley::post(host(), static_cast<uint32_t>(loop), [this, reply, ms] {
      check("posted task");
      uint64_t timer = host().start_timer(std::chrono::milliseconds(ms), [this, reply] {
        count(later_, "timer");
        host().route(std::move(*reply));
      });
      if (timer == 0) host().error("no timer for a later answer");
    });
    if (!posted) host().error("could not post a later answer");
  }

  void on_preauth(const parley::IqRequest& request) {
    count(preauth_, "pre-auth iq");
    parley::Element reply = parley::make_iq_result(request.iq());
    reply.add_child("query", ns_preauth).add_child("generation", ns_preauth).add_text(std::to_string(generation_));
    if (!host().session_reply(request.session(), std::move(reply))) host().warn("pre-auth answer: stream gone");
  }

  parley::Result<std::string, std::string> save_state() override {
    // From here on this instance must not be entered again (nor while it saves).
    saved_.store(true);
    host().info("saving state");
    if (save_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(save_delay_ms_));
    std::string out;
    for (uint64_t v : {generation_, opened_.load(), bound_.load(), closed_.load(), iqs_.load(), preauth_.load(),
                       later_.load()})
      out += std::to_string(v) + ",";
    return out;
  }

  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    std::vector<uint64_t> values;
    uint64_t v = 0;
    for (char c : bytes) {
      if (c == ',') {
        values.push_back(v);
        v = 0;
      } else if (c >= '0' && c <= '9') {
        v = v * 10 + static_cast<uint64_t>(c - '0');
      } else {
        return parley::unexpected(std::string("not a mod_test_reload state"));
      }
    }
    if (values.size() != 7) return parley::unexpected(std::string("not a mod_test_reload state"));
    generation_ = values[0] + 1;
    opened_ = values[1];
    bound_ = values[2];
    closed_ = values[3];
    iqs_ = values[4];
    preauth_ = values[5];
    later_ = values[6];
    return {};
  }

 private:
  void check(const char* what) {
    if (saved_.load()) host().error(std::string("ran after save_state: ") + what);
  }
  void count(std::atomic<uint64_t>& counter, const char* what) {
    check(what);
    counter.fetch_add(1);
  }

  int64_t save_delay_ms_ = 0;
  uint64_t generation_ = 1;  // written by start/restore only, before any event
  std::atomic<bool> saved_{false};
  std::atomic<uint64_t> opened_{0}, bound_{0}, closed_{0}, iqs_{0}, preauth_{0}, later_{0};
};

}  // namespace

PARLEY_MODULE(ModTestReload, "mod_test_reload", "1.0.0", parley::option("save_delay_ms", PARLEY_OPT_INT),
              parley::hook<&ModTestReload::on_opened>(PARLEY_EVENT_SESSION_OPENED),
              parley::hook<&ModTestReload::on_bound>(PARLEY_EVENT_SESSION_BOUND),
              parley::hook<&ModTestReload::on_closed>(PARLEY_EVENT_SESSION_CLOSED),
              parley::hook<&ModTestReload::on_stream_closing>(PARLEY_EVENT_STREAM_CLOSING),
              parley::iq_handler<&ModTestReload::on_query>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_reload),
              parley::iq_handler<&ModTestReload::on_later>(PARLEY_IQ_SERVER, PARLEY_IQ_SET, ns_reload),
              parley::iq_handler<&ModTestReload::on_preauth>(PARLEY_IQ_PREAUTH, PARLEY_IQ_GET, ns_preauth))
