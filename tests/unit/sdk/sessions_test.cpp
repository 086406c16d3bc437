// The ABI 1.2 session entries in C++ (parley/sdk/host.hpp, trampolines.hpp)
// against the fake host: raw writes, releases through the later filters,
// closes, attaches with a completion, session states, session slots carried
// across a reload, hooks on the new events, and what an older host makes of them.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "fake_host.hpp"
#include "parley/module.hpp"

namespace {

struct Counts {
  int64_t out = 0;
  int64_t delivered = 0;
  static inline int live = 0;
  Counts() { ++live; }
  Counts(int64_t o, int64_t d) : out(o), delivered(d) { ++live; }
  ~Counts() { --live; }
};

class Stream : public parley::Module {
 public:
  using SessionData = Counts;

  parley::Result<std::string, std::string> save_session_data(parley_session_id session, const Counts& slot) {
    if (session == 13) throw std::runtime_error("save exploded");
    if (session == 14) return parley::unexpected(std::string("cannot save 14"));
    if (session == 15) return std::string();  // nothing worth keeping
    return std::to_string(slot.out) + "," + std::to_string(slot.delivered);
  }
  parley::Result<std::unique_ptr<Counts>, std::string> restore_session_data(parley_session_id session,
                                                                            std::string_view bytes) {
    if (session == 13) throw std::runtime_error("restore exploded");
    if (bytes == "bad") return parley::unexpected(std::string("bad bytes"));
    if (bytes == "none") return std::unique_ptr<Counts>();
    auto comma = bytes.find(',');
    return std::make_unique<Counts>(std::stoll(std::string(bytes.substr(0, comma))),
                                    std::stoll(std::string(bytes.substr(comma + 1))));
  }

  parley::Outcome on_nonza(const parley::Event& ev) {
    auto nonza = ev.stanza();
    if (!nonza || nonza->xmlns() != "urn:test") return parley::Outcome::pass;
    if (nonza->name() == "boom") throw std::runtime_error("nonza exploded");
    parley::Element answer = host().element("a", "urn:test");
    answer.set_attr("h", "1");
    host().session_write(ev.session(), answer);
    return parley::Outcome::handled;
  }
  parley::Outcome on_out(const parley::Event& ev) {
    auto stanza = ev.stanza();
    if (stanza && stanza->child("hold", "urn:test")) {
      held.push_back(stanza->clone());
      return parley::Outcome::handled;
    }
    if (stanza) stanza->set_attr("seen", "1");
    return parley::Outcome::pass;
  }
  parley::Outcome on_closing(const parley::Event& ev) {
    return ev.session() == 7 ? parley::Outcome::handled : parley::Outcome::pass;
  }
  std::vector<parley::Element> held;
};

class Plain : public parley::Module {};

}  // namespace

PARLEY_MODULE_DEF(stream_def, Stream, "mod_stream", "1.0",
                  parley::hook<&Stream::on_nonza>(PARLEY_EVENT_NONZA_IN),
                  parley::hook<&Stream::on_out>(PARLEY_EVENT_STANZA_OUT, 10),
                  parley::hook<&Stream::on_closing>(PARLEY_EVENT_SESSION_CLOSING),
                  parley::hook<+[](Stream&, const parley::Event&) {}>(PARLEY_EVENT_SESSION_REATTACHED));
PARLEY_MODULE_DEF(plain_def, Plain, "mod_plain", "1.0");

namespace {

struct Started {
  const parley_module_def& def;
  parley_module m;
  void* state = nullptr;
  std::string error;
  explicit Started(const parley_module_def& d = stream_def) : def(d) {}
  int start(const parley_host_api* api = fake::api()) {
    parley_sink sink{&error, [](void* c, const char* d, size_t n) { static_cast<std::string*>(c)->append(d, n); }};
    int rc = def.start(&m, api, &state, sink);
    m.state = state;
    m.starting = false;
    return rc;
  }
  ~Started() {
    if (state) def.stop(state);
  }
  Stream& mod() { return *static_cast<Stream*>(static_cast<parley::Module*>(state)); }
  int call(size_t hook, parley_event event, parley_session_id session, const char* xml) {
    parley_element* stanza = xml ? fake::parse(xml) : nullptr;
    parley_event_args args{sizeof(parley_event_args), static_cast<uint32_t>(event), session, stanza, nullptr,
                           {"alice", 5}, {"example.org", 11}, {"alice@example.org/pc", 20}};
    int rc = def.hooks[hook].fn(state, &args);
    if (stanza) last_stanza = fake::serialize(stanza);
    fake::api()->element_free(stanza);
    return rc;
  }
  std::string last_stanza;
};

struct Capture {
  std::string text;
  parley_sink sink() {
    return {this, [](void* ctx, const char* d, size_t n) { static_cast<Capture*>(ctx)->text.append(d, n); }};
  }
};

}  // namespace

TEST_CASE("supports_1_2 means every 1.2 entry, up to session_state") {
  parley_module m;
  CHECK(parley::Host(&m, fake::api()).supports_1_2());
  parley_host_api metrics_only = fake::api_with_size(PARLEY_HOST_ENTRY_END(metric_record));
  CHECK_FALSE(parley::Host(&m, &metrics_only).supports_1_2());
  parley_host_api no_state = fake::api_with_size(PARLEY_HOST_ENTRY_END(session_attach));
  CHECK_FALSE(parley::Host(&m, &no_state).supports_1_2());
}

TEST_CASE("session_write borrows the element; a detached or unknown session refuses it") {
  parley_module m;
  m.sessions = {1, 2};
  m.states[2] = PARLEY_SESSION_DETACHED;
  parley::Host host(&m, fake::api());
  long before = fake::live_elements();
  parley::Element a = host.element("a", "urn:test");
  a.set_attr("h", "3");
  CHECK(host.session_write(1, a));
  CHECK(a.attr("h") == "3");  // still the caller's, unchanged
  CHECK(fake::live_elements() == before + 1);
  CHECK_FALSE(host.session_write(2, a));
  CHECK_FALSE(host.session_write(9, a));
  REQUIRE(m.written.size() == 1);
  CHECK(m.written[0] == std::pair<parley_session_id, std::string>{1, "<a xmlns='urn:test' h='3'/>"});
  CHECK_THROWS_AS(host.session_write(1, parley::ElementView()), std::logic_error);
}

TEST_CASE("session_send_after takes the stanza, accepted or not; session_close passes the condition") {
  parley_module m;
  m.sessions = {1, 2};
  parley::Host host(&m, fake::api());
  long before = fake::live_elements();
  CHECK(host.session_send_after(1, host.element("message", "jabber:client")));
  CHECK_FALSE(host.session_send_after(9, host.element("message", "jabber:client")));
  CHECK(fake::live_elements() == before);
  REQUIRE(m.sent_after.size() == 1);
  CHECK(m.sent_after[0].second == "<message xmlns='jabber:client'/>");
  CHECK_THROWS_AS(host.session_send_after(1, parley::Element()), std::logic_error);

  CHECK(host.session_close(1));
  CHECK(host.session_close(2, "policy-violation"));
  CHECK_FALSE(host.session_close(2));  // gone already
  CHECK(m.closed == std::vector<std::pair<parley_session_id, std::string>>{{1, ""}, {2, "policy-violation"}});
}

TEST_CASE("session_state maps the host's answer, and anything unknown to gone") {
  parley_module m;
  m.sessions = {1, 2, 3, 4};
  m.states = {{2, PARLEY_SESSION_DETACHED}, {3, PARLEY_SESSION_UNBOUND}, {4, 42}};
  parley::Host host(&m, fake::api());
  using S = parley::Host::SessionState;
  CHECK(host.session_state(1) == S::bound);
  CHECK(host.session_state(2) == S::detached);
  CHECK(host.session_state(3) == S::unbound);
  CHECK(host.session_state(4) == S::gone);  // a state a newer host would add
  CHECK(host.session_state(9) == S::gone);
}

TEST_CASE("session_cut: a bound session's connection, not a detached or unknown one; absent on a 1.2 host") {
  parley_module m;
  m.sessions = {1, 2};
  m.states = {{2, PARLEY_SESSION_DETACHED}};
  parley::Host host(&m, fake::api());
  CHECK(host.supports(PARLEY_HOST_ENTRY_END(session_cut)));
  CHECK(host.session_cut(1));
  CHECK_FALSE(host.session_cut(2));
  CHECK_FALSE(host.session_cut(9));
  CHECK(m.cut == std::vector<parley_session_id>{1});
  // A 1.2 host ends at session_state: no session_cut.
  parley_host_api older = fake::api_with_size(PARLEY_HOST_ENTRY_END(session_state));
  parley::Host old_host(&m, &older);
  CHECK(old_host.supports_1_2());
  CHECK_FALSE(old_host.supports(PARLEY_HOST_ENTRY_END(session_cut)));
  CHECK_THROWS_AS(old_host.session_cut(1), std::logic_error);
}

TEST_CASE("session_attach: the completion runs once with the outcome; a refused attach never calls it") {
  parley_module m;
  m.sessions = {5, 6, 7};
  m.states = {{5, PARLEY_SESSION_UNBOUND}, {6, PARLEY_SESSION_UNBOUND}, {7, PARLEY_SESSION_DETACHED}};
  parley::Host host(&m, fake::api());
  std::vector<std::pair<parley_session_id, bool>> done;
  CHECK(host.session_attach(7, 5, [&](parley_session_id s, bool ok) { done.emplace_back(s, ok); }));
  CHECK_FALSE(host.session_attach(7, 5, [&](parley_session_id, bool) { FAIL("refused: never called"); }));
  CHECK_FALSE(host.session_attach(7, 1, [&](parley_session_id, bool) { FAIL("not a stream: never called"); }));
  CHECK(host.session_attach(99, 6, [&](parley_session_id s, bool ok) { done.emplace_back(s, ok); }));
  CHECK(host.pending_attaches() == 2);
  CHECK(host.pending_storage_calls() == 0);  // attaches are neither storage calls nor timers
  CHECK(host.pending_timers() == 0);
  REQUIRE(m.attaches.size() == 2);
  m.attach_done(0, true);
  m.attach_done(1, false);
  CHECK(done == std::vector<std::pair<parley_session_id, bool>>{{7, true}, {6, false}});
  CHECK(host.pending_attaches() == 0);
  m.attach_done(0, true);  // a second completion for the same key finds nothing
  CHECK(done.size() == 2);
}

TEST_CASE("session_attach: a throwing completion is logged; a Host that is gone ignores completions") {
  parley_module m;
  m.sessions = {5, 6, 7};
  m.states = {{5, PARLEY_SESSION_UNBOUND}, {6, PARLEY_SESSION_UNBOUND}};
  {
    parley::Host host(&m, fake::api());
    CHECK(host.session_attach(7, 5, [](parley_session_id, bool) { throw std::runtime_error("attach exploded"); }));
    m.attach_done(0, true);
    CHECK(m.logged("attach completion threw: attach exploded"));
    CHECK(host.session_attach(7, 6, [](parley_session_id, bool) { FAIL("the Host is gone"); }));
  }
  m.attach_done(1, true);
}

TEST_CASE("the session entries on an older host, or a null entry, are exceptions, not calls") {
  parley_module m;
  m.sessions = {1};
  m.states[1] = PARLEY_SESSION_UNBOUND;
  parley_host_api older = fake::api_with_size(PARLEY_HOST_ENTRY_END(metric_record));
  parley::Host host(&m, &older);
  parley::Element a = host.element("a");
  CHECK_THROWS_AS(host.session_write(1, a), std::logic_error);
  CHECK_THROWS_AS(host.session_send_after(1, host.element("message")), std::logic_error);
  CHECK_THROWS_AS(host.session_close(1), std::logic_error);
  CHECK_THROWS_AS(host.session_attach(2, 1, [](parley_session_id, bool) {}), std::logic_error);
  CHECK_THROWS_AS(host.session_state(1), std::logic_error);
  CHECK(host.pending_attaches() == 0);  // nothing left behind by the refused attach

  // A host whose table is long enough but left an entry empty.
  parley_host_api holes = fake::api_with_size(sizeof(parley_host_api));
  holes.session_write = nullptr;
  holes.session_attach = nullptr;
  parley::Host holey(&m, &holes);
  CHECK_THROWS_AS(holey.session_write(1, a), std::logic_error);
  CHECK_THROWS_AS(holey.session_attach(2, 1, [](parley_session_id, bool) {}), std::logic_error);
  CHECK(holey.pending_attaches() == 0);
  CHECK(m.written.empty());
  CHECK(m.attaches.empty());
}

TEST_CASE("session data: declared only by a class with SessionData; bytes out and the slot back in") {
  CHECK((stream_def.save_session_data != nullptr ? true : false));
  CHECK((stream_def.restore_session_data != nullptr ? true : false));
  CHECK((plain_def.save_session_data == nullptr ? true : false));
  CHECK((plain_def.restore_session_data == nullptr ? true : false));

  int live = Counts::live;
  Started old;
  REQUIRE(old.start() == 0);
  old.m.sessions = {1, 2};
  REQUIRE(old.mod().host().set_session_slot(1, std::make_unique<Counts>(3, 2)));
  Capture saved;
  CHECK(stream_def.save_session_data(old.state, 1, old.m.slots.at(1)->data, saved.sink()) == 0);
  CHECK(saved.text == "3,2");
  Capture none;
  CHECK(stream_def.save_session_data(old.state, 2, nullptr, none.sink()) == 0);  // no slot: no bytes
  CHECK(none.text.empty());

  Started fresh;
  REQUIRE(fresh.start() == 0);
  fresh.m.sessions = {1, 2, 3};
  CHECK(stream_def.restore_session_data(fresh.state, 1, parley_str{saved.text.data(), saved.text.size()}) == 0);
  auto* restored = fresh.mod().host().session_slot<Counts>(1);
  REQUIRE(restored != nullptr);
  CHECK(restored->out == 3);
  CHECK(restored->delivered == 2);
  CHECK(stream_def.restore_session_data(fresh.state, 2, parley_str{"", 0}) == 0);  // empty: no slot
  CHECK(stream_def.restore_session_data(fresh.state, 3, parley_str{"none", 4}) == 0);
  CHECK(fresh.m.slots.count(2) == 0);
  CHECK(fresh.m.slots.count(3) == 0);
  // A session that went away meanwhile: the host refuses the slot, the object is freed.
  CHECK(stream_def.restore_session_data(fresh.state, 9, parley_str{"1,1", 3}) != 0);
  CHECK(fresh.m.logged("refused the slot"));
  old.m.slots.clear();
  fresh.m.slots.clear();
  CHECK(Counts::live == live);
}

TEST_CASE("session data: errors are values and exceptions stay in the module") {
  Started s;
  REQUIRE(s.start() == 0);
  s.m.sessions = {13, 14, 15, 16};
  Counts slot(1, 1);
  Capture out;
  CHECK(stream_def.save_session_data(s.state, 13, &slot, out.sink()) != 0);
  CHECK(s.m.logged("save_session_data threw: save exploded"));
  CHECK(stream_def.save_session_data(s.state, 14, &slot, out.sink()) != 0);
  CHECK(s.m.logged("save_session_data failed: cannot save 14"));
  CHECK(stream_def.save_session_data(s.state, 15, &slot, out.sink()) == 0);
  CHECK(out.text.empty());
  CHECK(stream_def.restore_session_data(s.state, 13, parley_str{"1,1", 3}) != 0);
  CHECK(s.m.logged("restore_session_data threw: restore exploded"));
  CHECK(stream_def.restore_session_data(s.state, 16, parley_str{"bad", 3}) != 0);
  CHECK(s.m.logged("restore_session_data failed: bad bytes"));
  CHECK(stream_def.restore_session_data(s.state, 16, parley_str{"x", 1}) != 0);  // std::stoll throws
  CHECK(s.m.slots.empty());
  CHECK(stream_def.save_session_data(nullptr, 1, &slot, out.sink()) != 0);
  CHECK(stream_def.restore_session_data(nullptr, 1, parley_str{"1,1", 3}) != 0);
}

TEST_CASE("hooks on the 1.2 events: a nonza answered with session_write, a filter that holds and rewrites") {
  Started s;
  REQUIRE(s.start() == 0);
  s.m.sessions = {1, 7};
  REQUIRE(stream_def.hook_count == 4);
  CHECK(stream_def.hooks[0].event == PARLEY_EVENT_NONZA_IN);
  CHECK(stream_def.hooks[1].event == PARLEY_EVENT_STANZA_OUT);
  CHECK(stream_def.hooks[1].priority == 10);
  CHECK(stream_def.hooks[2].event == PARLEY_EVENT_SESSION_CLOSING);
  CHECK(stream_def.hooks[3].event == PARLEY_EVENT_SESSION_REATTACHED);

  CHECK(s.call(0, PARLEY_EVENT_NONZA_IN, 1, "<r xmlns='urn:test'/>") == PARLEY_HANDLED);
  REQUIRE(s.m.written.size() == 1);
  CHECK(s.m.written[0].second == "<a xmlns='urn:test' h='1'/>");
  CHECK(s.call(0, PARLEY_EVENT_NONZA_IN, 1, "<active xmlns='urn:xmpp:csi:0'/>") == PARLEY_PASS);
  CHECK(s.call(0, PARLEY_EVENT_NONZA_IN, 1, "<boom xmlns='urn:test'/>") == PARLEY_ERROR);
  CHECK(s.m.logged("hook threw: nonza exploded"));

  CHECK(s.call(1, PARLEY_EVENT_STANZA_OUT, 1, "<message><body>hi</body></message>") == PARLEY_PASS);
  CHECK(s.last_stanza == "<message seen='1'><body>hi</body></message>");  // rewritten in place
  CHECK(s.call(1, PARLEY_EVENT_STANZA_OUT, 1, "<message><hold xmlns='urn:test'/></message>") == PARLEY_HANDLED);
  REQUIRE(s.mod().held.size() == 1);  // a clone: the host's stanza was borrowed
  CHECK(s.mod().host().session_send_after(1, std::move(s.mod().held[0])));
  CHECK(s.m.sent_after.size() == 1);

  CHECK(s.call(2, PARLEY_EVENT_SESSION_CLOSING, 7, nullptr) == PARLEY_HANDLED);
  CHECK(s.call(2, PARLEY_EVENT_SESSION_CLOSING, 1, nullptr) == PARLEY_PASS);
  CHECK(s.call(3, PARLEY_EVENT_SESSION_REATTACHED, 7, nullptr) == PARLEY_PASS);
}
