// mod_test_stream: the ABI 1.2 session seams in one test module, a miniature
// stream management in namespace urn:parley:test:stream. Nonzas:
//  - <enable/> (bound): the session becomes resumable; answers
//    <enabled id='SESSION' loop='L'/> (session_write);
//  - <r/>: answers <a h='N'/>, N = stanzas the outgoing filter saw for the session;
//  - <delivered/>: answers <delivered n='N'/>, N = MESSAGE_DELIVERED for the session;
//  - <release/>: sends what the filter held (session_send_after), then
//    answers <released n='K'/>;
//  - <where/> (any authenticated stream): answers <here id='ID' loop='L' state='S'/>;
//  - <resume previd='ID'/> (authenticated, unbound): session_attach(ID, this
//    stream); attached: <resumed previd='ID' h='N'/> written to the resumed
//    session; not: <failed/> to the stream;
//  - <close condition='C'/>: session_close on itself;
//  - (option nonza_hook_off: the nonza hook is left out, hook_mode OFF: none of these is taken)
//  - <filter on='1|0'/>: with the option filter_per_session (hook_mode
//    PER_SESSION for the outgoing filter), turns the filter on or off for the
//    session (session_filter_out); answers <filter ok='1|0'/>;
//  - <stalls/>: answers <stalls n='N'/>, N = stalls begun (below); <go/>
//    ends the current stall (answers <going/>);
//  - anything else in the namespace is left to the core (unsupported-stanza-type).
// A test-only knob that widens a window (option stall_on_unavailable): the
// outgoing filter, for a presence of type unavailable, holds its loop's
// thread until a <go/> (from a session of another loop) or 10 s: what other
// loops do meanwhile sees the server stopped at that point.
// The outgoing filter counts every stanza and, for a message with a child in
// the namespace: <drop/> drops it, <hold/> holds it until <release/>, <tag/>
// adds tagged='yes'. SESSION_CLOSING keeps resumable sessions (detach).
// An iq get <query/> to the server answers the module-wide counters as
// attributes: closing (asked), kept (detached by us), detached, reattached.
// An iq set <query><close id='SESSION'/></query> closes that session from
// its own loop (post_to_session, then session_close: a detached one too) and
// answers <query closed='1|0'/> from there.
// Session slots (counters, resumable) and the module counters survive a reload.
#include <atomic>
#include <chrono>
#include <thread>
#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "parley/module.hpp"

namespace {

constexpr const char* ns = "urn:parley:test:stream";

struct StreamSlot {
  bool resumable = false;
  int64_t out = 0;        // stanzas the outgoing filter saw
  int64_t delivered = 0;  // MESSAGE_DELIVERED
  // Held stanzas, serialized (not carried across a reload: a test module).
  std::vector<std::string> held;
};

std::optional<uint64_t> to_u64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

class ModTestStream : public parley::Module {
 public:
  using SessionData = StreamSlot;

  parley::Result<void, std::string> start() override {
    stall_ = host().option_bool("stall_on_unavailable").value_or(false);
    if (host().option_bool("filter_per_session").value_or(false) &&
        !host().hook_mode(PARLEY_EVENT_STANZA_OUT, PARLEY_HOOKS_PER_SESSION))
      return parley::unexpected(std::string("hook_mode refused"));
    // hook_mode OFF: the nonza hook is left out of the tables (no nonza of
    // the namespace is taken then: the core closes the stream).
    if (host().option_bool("nonza_hook_off").value_or(false) && !host().hook_mode(PARLEY_EVENT_NONZA_IN, PARLEY_HOOKS_OFF))
      return parley::unexpected(std::string("hook_mode refused"));
    // Refused: PER_SESSION is for the outgoing filter only.
    if (host().hook_mode(PARLEY_EVENT_NONZA_IN, PARLEY_HOOKS_PER_SESSION))
      return parley::unexpected(std::string("hook_mode took PER_SESSION for NONZA_IN"));
    return {};
  }

  parley::Outcome on_nonza(const parley::Event& ev) {
    auto nonza = ev.stanza();
    if (!nonza || nonza->xmlns() != ns) return parley::Outcome::pass;
    std::string_view name = nonza->name();
    parley_session_id session = ev.session();
    if (name == "enable") {
      if (host().session_state(session) != parley::Host::SessionState::bound) return parley::Outcome::pass;
      slot(session).resumable = true;
      write(session, answer("enabled").set_attr("id", std::to_string(session)).set_attr("loop", loop_of(session)));
    } else if (name == "r") {
      write(session, answer("a").set_attr("h", std::to_string(slot(session).out)));
    } else if (name == "delivered") {
      write(session, answer("delivered").set_attr("n", std::to_string(slot(session).delivered)));
    } else if (name == "release") {
      std::vector<std::string> held = std::move(slot(session).held);
      slot(session).held.clear();
      int64_t released = 0;
      for (const std::string& xml : held) {
        auto stanza = host().parse(xml);
        if (stanza && host().session_send_after(session, std::move(*stanza))) ++released;
      }
      write(session, answer("released").set_attr("n", std::to_string(released)));
    } else if (name == "detach-refused") {
      // session_detach with the condition the client names: answered only if
      // refused (a detached session has no connection to answer on).
      std::string condition(nonza->attr("condition").value_or(""));
      if (!host().session_detach(session, condition)) write(session, answer("not-detached"));
    } else if (name == "stalls") {
      write(session, answer("stalls").set_attr("n", std::to_string(stalls_.load())));
    } else if (name == "go") {
      go_.store(true);
      write(session, answer("going"));
    } else if (name == "where") {
      write(session, answer("here")
                         .set_attr("id", std::to_string(session))
                         .set_attr("loop", loop_of(session))
                         .set_attr("state", std::to_string(static_cast<int>(host().session_state(session)))));
    } else if (name == "resume") {
      resume(session, nonza->attr("previd").value_or(""));
    } else if (name == "filter") {
      bool ok = host().filter_out(session, nonza->attr("on").value_or("") == "1");
      write(session, answer("filter").set_attr("ok", ok ? "1" : "0"));
    } else if (name == "close") {
      host().session_close(session, nonza->attr("condition").value_or(""));
    } else {
      return parley::Outcome::pass;
    }
    return parley::Outcome::handled;
  }

  parley::Outcome on_out(const parley::Event& ev) {
    auto stanza = ev.stanza();
    if (!stanza) return parley::Outcome::pass;
    StreamSlot& s = slot(ev.session());
    ++s.out;
    if (stall_ && stanza->name() == "presence" && stanza->attr("type").value_or("") == "unavailable") {
      go_.store(false);
      stalls_.fetch_add(1);
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!go_.load() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (stanza->name() != "message") return parley::Outcome::pass;
    if (stanza->child("drop", ns)) return parley::Outcome::handled;
    if (stanza->child("hold", ns)) {
      s.held.push_back(stanza->serialize());
      return parley::Outcome::handled;
    }
    if (stanza->child("tag", ns)) stanza->set_attr("tagged", "yes");
    return parley::Outcome::pass;
  }

  void on_delivered(const parley::Event& ev) { ++slot(ev.session()).delivered; }

  parley::Outcome on_closing(const parley::Event& ev) {
    closing_.fetch_add(1);
    auto* s = host().session_slot<StreamSlot>(ev.session());
    if (!s || !s->resumable) return parley::Outcome::pass;
    kept_.fetch_add(1);
    return parley::Outcome::handled;
  }
  void on_detached(const parley::Event&) { detached_.fetch_add(1); }
  void on_reattached(const parley::Event&) { reattached_.fetch_add(1); }

  void on_close_request(const parley::IqRequest& req) {
    auto close = req.payload() ? req.payload()->child("close", ns) : std::nullopt;
    auto id = close ? to_u64(close->attr("id").value_or("")) : std::nullopt;
    if (!id) {
      host().bounce(req.iq(), "bad-request");
      return;
    }
    parley::Element result = parley::make_iq_result(req.iq());
    // The answer is built here and routed from the session's loop once the
    // close ran there (routing works from any loop).
    auto answer = std::make_shared<parley::Element>(std::move(result));
    parley_session_id session = *id;
    bool posted = parley::post_to_session(host(), session, [this, session, answer] {
      bool closed = host().session_close(session);
      answer->add_child("query", ns).set_attr("closed", closed ? "1" : "0");
      host().route(std::move(*answer));
    });
    if (!posted) {
      answer->add_child("query", ns).set_attr("closed", "0");
      host().route(std::move(*answer));
    }
  }

  void on_query(const parley::IqRequest& req) {
    parley::Element result = parley::make_iq_result(req.iq());
    result.add_child("query", ns)
        .set_attr("closing", std::to_string(closing_.load()))
        .set_attr("kept", std::to_string(kept_.load()))
        .set_attr("detached", std::to_string(detached_.load()))
        .set_attr("reattached", std::to_string(reattached_.load()));
    host().route(std::move(result));
  }

  // Session slots across a reload: "resumable,out,delivered".
  parley::Result<std::string, std::string> save_session_data(parley_session_id, const StreamSlot& s) {
    return std::string(s.resumable ? "1" : "0") + "," + std::to_string(s.out) + "," + std::to_string(s.delivered);
  }
  parley::Result<std::unique_ptr<StreamSlot>, std::string> restore_session_data(parley_session_id,
                                                                                std::string_view bytes) {
    auto first = bytes.find(',');
    auto second = first == std::string_view::npos ? first : bytes.find(',', first + 1);
    if (second == std::string_view::npos) return parley::unexpected(std::string("malformed slot"));
    auto out = to_u64(bytes.substr(first + 1, second - first - 1));
    auto delivered = to_u64(bytes.substr(second + 1));
    if (!out || !delivered) return parley::unexpected(std::string("malformed slot"));
    auto s = std::make_unique<StreamSlot>();
    s->resumable = bytes.substr(0, first) == "1";
    s->out = static_cast<int64_t>(*out);
    s->delivered = static_cast<int64_t>(*delivered);
    return s;
  }

  // The module counters across a reload: "closing,kept,detached,reattached".
  parley::Result<std::string, std::string> save_state() override {
    return std::to_string(closing_.load()) + "," + std::to_string(kept_.load()) + "," +
           std::to_string(detached_.load()) + "," + std::to_string(reattached_.load());
  }
  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    std::atomic<int64_t>* fields[] = {&closing_, &kept_, &detached_, &reattached_};
    for (auto* field : fields) {
      auto comma = bytes.find(',');
      auto value = to_u64(bytes.substr(0, comma));
      if (!value) return parley::unexpected(std::string("malformed state"));
      field->store(static_cast<int64_t>(*value));
      bytes = comma == std::string_view::npos ? std::string_view() : bytes.substr(comma + 1);
    }
    return {};
  }

 private:
  void resume(parley_session_id stream, std::string_view previd_text) {
    auto previd = to_u64(previd_text);
    std::string previd_copy(previd_text);
    // The completion may run on the detached session's loop: it captures only
    // values and uses the host calls that are valid there.
    bool started = previd && host().session_attach(*previd, stream, [this, previd_copy](parley_session_id session,
                                                                                         bool attached) {
      if (!attached) {
        write(session, answer("failed").set_attr("previd", previd_copy));
        return;
      }
      auto* s = host().session_slot<StreamSlot>(session);
      write(session, answer("resumed").set_attr("previd", previd_copy).set_attr("h", std::to_string(s ? s->out : 0)));
    });
    if (!started) write(stream, answer("failed").set_attr("previd", previd_copy).set_attr("refused", "yes"));
  }

  StreamSlot& slot(parley_session_id session) {
    if (auto* s = host().session_slot<StreamSlot>(session)) return *s;
    if (auto* s = host().set_session_slot(session, std::make_unique<StreamSlot>())) return *s;
    // Not this loop's session (cannot happen from its own events): a scratch
    // slot of this thread keeps the hook total; its counts are lost.
    thread_local StreamSlot scratch;
    scratch = StreamSlot();
    return scratch;
  }
  parley::Element answer(std::string_view name) const { return host().element(name, ns); }
  void write(parley_session_id session, const parley::ElementView& element) const {
    if (!host().session_write(session, element)) host().debug("session_write refused");
  }
  static std::string loop_of(parley_session_id session) { return std::to_string(session >> 48); }

  std::atomic<int64_t> closing_{0}, kept_{0}, detached_{0}, reattached_{0};
  bool stall_ = false;
  std::atomic<int64_t> stalls_{0};
  std::atomic<bool> go_{false};
};

}  // namespace

PARLEY_MODULE(ModTestStream, "mod_test_stream", "1.0.0",
              parley::option("filter_per_session", PARLEY_OPT_BOOL),
              parley::option("nonza_hook_off", PARLEY_OPT_BOOL),
              parley::option("stall_on_unavailable", PARLEY_OPT_BOOL),
              parley::hook<&ModTestStream::on_nonza>(PARLEY_EVENT_NONZA_IN),
              parley::hook<&ModTestStream::on_out>(PARLEY_EVENT_STANZA_OUT),
              parley::hook<&ModTestStream::on_delivered>(PARLEY_EVENT_MESSAGE_DELIVERED),
              parley::hook<&ModTestStream::on_closing>(PARLEY_EVENT_SESSION_CLOSING),
              parley::hook<&ModTestStream::on_detached>(PARLEY_EVENT_SESSION_DETACHED),
              parley::hook<&ModTestStream::on_reattached>(PARLEY_EVENT_SESSION_REATTACHED),
              parley::iq_handler<&ModTestStream::on_query>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns),
              parley::iq_handler<&ModTestStream::on_close_request>(PARLEY_IQ_SERVER, PARLEY_IQ_SET, ns))
