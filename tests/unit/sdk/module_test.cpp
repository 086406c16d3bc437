// The generated definition and trampolines: sizes, ABI numbers, declared
// lists, and no exception ever crossing the C boundary.
#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>

#include "fake_host.hpp"
#include "parley/module.hpp"

using namespace std::chrono_literals;

namespace {

struct Probe {
  int constructed = 0;
  int destroyed = 0;
  int stopped = 0;
  std::string restored;
};
Probe probe;

struct StringCapture {
  std::string text;
  parley_sink sink() {
    return {this, [](void* ctx, const char* d, size_t n) { static_cast<StringCapture*>(ctx)->text.append(d, n); }};
  }
};

class Full : public parley::Module {
 public:
  Full() { ++probe.constructed; }
  ~Full() override { ++probe.destroyed; }

  parley::Result<void, std::string> start() override {
    auto mode = host().option_string("mode").value_or("ok");
    if (mode == "refuse") return parley::unexpected(std::string("refused by mode"));
    if (mode == "throw") throw std::runtime_error("start exploded");
    if (mode == "throw-int") throw 42;
    if (mode == "timer") host().start_timer(1000ms, [] {});
    return {};
  }
  void stop() override {
    ++probe.stopped;
    if (host().option_bool("stop_throws").value_or(false)) throw std::runtime_error("stop exploded");
  }
  parley::Result<std::string, std::string> save_state() override {
    if (n_ < 0) return parley::unexpected(std::string("negative"));
    return std::to_string(n_);
  }
  parley::Result<void, std::string> restore_state(std::string_view bytes) override {
    probe.restored = std::string(bytes);
    if (bytes == "garbage") throw std::invalid_argument("garbage state");
    n_ = std::stoi(std::string(bytes));
    return {};
  }

  parley_result on_filter(const parley::Event& ev) {
    auto stanza = ev.stanza();
    if (!stanza) return PARLEY_PASS;
    if (stanza->child_text("body") == "throw") throw std::runtime_error("hook exploded");
    if (stanza->child_text("body") == "throw-int") throw 7;
    if (stanza->child_text("body") == "null") (void)parley::ElementRef().name();
    if (stanza->child_text("body") == "stop") return PARLEY_STOP;
    stanza->set_attr("seen", "1");  // a filter may modify in place
    ++n_;
    return PARLEY_PASS;
  }
  parley::Outcome on_closed(const parley::Event& ev) const {
    return ev.session() == 1 ? parley::Outcome::handled : parley::Outcome::pass;
  }
  void on_iq(const parley::IqRequest& req) {
    if (req.payload()->name() == "boom") throw std::runtime_error("iq exploded");
    parley::Element reply = parley::make_iq_result(req.iq());
    reply.add_child("n", "urn:full").add_text(std::to_string(n_) + ":" + std::string(req.from()));
    host().route(std::move(reply));
  }
  parley_result on_account_iq(const parley::IqRequest&) noexcept { return PARLEY_PASS; }

  int n_ = 0;
};

// No save/restore override, no declarations: the def says so.
class Minimal : public parley::Module {};

}  // namespace

PARLEY_MODULE_DEF(full_def, Full, "mod_full", "2.1.0",
                  parley::hook<&Full::on_filter>(PARLEY_EVENT_STANZA_IN, 10),
                  parley::hook<&Full::on_closed>(PARLEY_EVENT_SESSION_CLOSED),
                  parley::hook<+[](Full& self, const parley::Event&) {
                    self.n_ += 100;
                    return parley::Outcome::stop;
                  }>(PARLEY_EVENT_PRESENCE_BROADCAST, -5),
                  parley::iq_handler<&Full::on_iq>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET, "urn:full"),
                  parley::iq_handler<&Full::on_account_iq>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET, "urn:full:account"),
                  parley::option("mode", PARLEY_OPT_STRING), parley::required_option("key", PARLEY_OPT_INT),
                  parley::option("stop_throws", PARLEY_OPT_BOOL), parley::depends("mod_a"),
                  parley::depends("mod_b"), parley::disco_feature("urn:full"),
                  parley::schema("CREATE TABLE mod_full_items(id INTEGER PRIMARY KEY, body TEXT)"),
                  parley::schema("CREATE INDEX mod_full_items_body ON mod_full_items(body)"));

PARLEY_MODULE_DEF(minimal_def, Minimal, "mod_minimal", "0.1");

namespace {

// Starts one instance of a def against the fake host.
struct Instance {
  const parley_module_def& def;
  parley_module m;
  void* state = nullptr;
  StringCapture error;
  int status = -1;

  explicit Instance(const parley_module_def& d) : def(d) {}
  int start(const parley_host_api* api = fake::api()) {
    status = def.start(&m, api, &state, error.sink());
    m.state = state;
    return status;
  }
  void stop() {
    if (state) def.stop(state);
    state = nullptr;
  }
  ~Instance() { stop(); }

  parley_result hook(size_t i, parley_element* stanza, parley_session_id session = 0) {
    parley_event_args args{};
    args.size = sizeof args;
    args.event = def.hooks[i].event;
    args.session = session;
    args.stanza = stanza;
    return static_cast<parley_result>(def.hooks[i].fn(state, &args));
  }
  parley_result iq(size_t i, const parley_element* stanza, std::string_view from = "alice@example.org/pc") {
    parley_iq_request req{};
    req.size = sizeof req;
    req.iq = stanza;
    req.from = {from.data(), from.size()};
    req.to = {"example.org", 11};
    return static_cast<parley_result>(def.iq_handlers[i].fn(state, &req));
  }
};

std::unique_ptr<parley_element> xml(std::string_view text) {
  parley_element* e = fake::parse(text);
  REQUIRE(e);
  return std::unique_ptr<parley_element>(e);
}

}  // namespace

TEST_CASE("the generated def: sizes, ABI numbers, names") {
  CHECK(full_def.size == sizeof(parley_module_def));
  CHECK(full_def.abi_major == PARLEY_ABI_MAJOR);
  CHECK(full_def.abi_minor == PARLEY_ABI_MINOR);
  CHECK(std::string(full_def.name) == "mod_full");
  CHECK(std::string(full_def.version) == "2.1.0");
  CHECK((full_def.start != nullptr ? true : false));
  CHECK((full_def.stop != nullptr ? true : false));
  CHECK((full_def.save_state != nullptr ? true : false));
  CHECK((full_def.restore_state != nullptr ? true : false));
}

TEST_CASE("the generated def: hooks, iq handlers, options, depends, features") {
  REQUIRE(full_def.hook_count == 3);
  CHECK(full_def.hooks[0].event == PARLEY_EVENT_STANZA_IN);
  CHECK(full_def.hooks[0].priority == 10);
  CHECK(full_def.hooks[1].event == PARLEY_EVENT_SESSION_CLOSED);
  CHECK(full_def.hooks[1].priority == 50);
  CHECK(full_def.hooks[2].event == PARLEY_EVENT_PRESENCE_BROADCAST);
  CHECK(full_def.hooks[2].priority == -5);
  for (size_t i = 0; i < full_def.hook_count; ++i) CHECK((full_def.hooks[i].fn != nullptr ? true : false));

  REQUIRE(full_def.iq_handler_count == 2);
  CHECK(full_def.iq_handlers[0].scope == PARLEY_IQ_SERVER);
  CHECK(full_def.iq_handlers[0].types == (PARLEY_IQ_GET | PARLEY_IQ_SET));
  CHECK(std::string(full_def.iq_handlers[0].xmlns) == "urn:full");
  CHECK(full_def.iq_handlers[1].scope == PARLEY_IQ_ACCOUNT);
  CHECK(full_def.iq_handlers[1].types == PARLEY_IQ_GET);

  REQUIRE(full_def.option_count == 3);
  CHECK(std::string(full_def.options[0].name) == "mode");
  CHECK(full_def.options[0].type == PARLEY_OPT_STRING);
  CHECK(full_def.options[0].required == 0);
  CHECK(std::string(full_def.options[1].name) == "key");
  CHECK(full_def.options[1].type == PARLEY_OPT_INT);
  CHECK(full_def.options[1].required != 0);

  REQUIRE(full_def.depends != nullptr);
  CHECK(std::string(full_def.depends[0]) == "mod_a");
  CHECK(std::string(full_def.depends[1]) == "mod_b");
  CHECK(full_def.depends[2] == nullptr);
  REQUIRE(full_def.disco_features != nullptr);
  CHECK(std::string(full_def.disco_features[0]) == "urn:full");
  CHECK(full_def.disco_features[1] == nullptr);
  REQUIRE(full_def.schema_count == 2);
  CHECK(std::string(full_def.schema[0]).starts_with("CREATE TABLE mod_full_items"));
  CHECK(std::string(full_def.schema[1]).starts_with("CREATE INDEX"));
}

TEST_CASE("a module declaring nothing: empty lists and no state callbacks") {
  CHECK(minimal_def.size == sizeof(parley_module_def));
  CHECK(minimal_def.hooks == nullptr);
  CHECK(minimal_def.hook_count == 0);
  CHECK(minimal_def.iq_handlers == nullptr);
  CHECK(minimal_def.iq_handler_count == 0);
  CHECK(minimal_def.options == nullptr);
  CHECK(minimal_def.option_count == 0);
  CHECK(minimal_def.depends == nullptr);
  CHECK(minimal_def.disco_features == nullptr);
  CHECK(minimal_def.schema == nullptr);
  CHECK(minimal_def.schema_count == 0);
  CHECK((minimal_def.save_state == nullptr ? true : false));
  CHECK((minimal_def.restore_state == nullptr ? true : false));
  Instance i(minimal_def);
  CHECK(i.start() == 0);
  CHECK(i.state != nullptr);
}

TEST_CASE("start: success, refusal as a value, exceptions, incompatible hosts") {
  probe = {};
  {
    Instance ok(full_def);
    CHECK(ok.start() == 0);
    CHECK(ok.state != nullptr);
    ok.stop();
    CHECK(probe.stopped == 1);
    CHECK(probe.destroyed == 1);
  }
  for (auto [mode, text] : {std::pair{"refuse", "refused by mode"}, std::pair{"throw", "start threw: start exploded"},
                            std::pair{"throw-int", "start threw a non-standard exception"}}) {
    probe = {};
    Instance bad(full_def);
    bad.m.options["mode"] = std::string(mode);
    CHECK(bad.start() != 0);
    CHECK(bad.state == nullptr);
    CHECK(bad.error.text == text);
    CHECK(probe.constructed == 1);
    CHECK(probe.destroyed == 1);  // a refused start leaves nothing behind
    CHECK(probe.stopped == 0);
  }

  parley_host_api other_major = *fake::api();
  other_major.abi_major = PARLEY_ABI_MAJOR + 1;
  Instance wrong_major(full_def);
  CHECK(wrong_major.start(&other_major) != 0);
  CHECK(wrong_major.error.text.find("ABI") != std::string::npos);

  parley_host_api too_small = fake::api_with_size(offsetof(parley_host_api, counter_add));
  Instance old_host(full_def);
  CHECK(old_host.start(&too_small) != 0);
}

TEST_CASE("hooks: results map through; exceptions become PARLEY_ERROR and a log line") {
  Instance i(full_def);
  REQUIRE(i.start() == 0);
  auto* self = static_cast<Full*>(static_cast<parley::Module*>(i.state));

  auto ok = xml("<message><body>hi</body></message>");
  CHECK(i.hook(0, ok.get()) == PARLEY_PASS);
  CHECK(fake::serialize(ok.get()) == "<message seen='1'><body>hi</body></message>");
  CHECK(self->n_ == 1);

  auto stop = xml("<message><body>stop</body></message>");
  CHECK(i.hook(0, stop.get()) == PARLEY_STOP);
  CHECK(i.hook(0, nullptr) == PARLEY_PASS);

  for (auto [body, text] : {std::pair{"throw", "hook threw: hook exploded"},
                            std::pair{"throw-int", "hook threw: non-standard exception"},
                            std::pair{"null", "hook threw: parley: use of a null element"}}) {
    auto bad = xml(std::string("<message><body>") + body + "</body></message>");
    i.m.logs.clear();
    CHECK(i.hook(0, bad.get()) == PARLEY_ERROR);
    REQUIRE(i.m.logs.size() == 1);
    CHECK(i.m.logs[0].first == PARLEY_LOG_ERROR);
    CHECK(i.m.logs[0].second == text);
  }

  CHECK(i.hook(1, nullptr, 1) == PARLEY_HANDLED);  // Outcome, from a const member
  CHECK(i.hook(1, nullptr, 2) == PARLEY_PASS);
  CHECK(i.hook(2, nullptr) == PARLEY_STOP);  // the lambda
  CHECK(self->n_ == 101);

  // A null state or args never reaches the module.
  CHECK(full_def.hooks[0].fn(nullptr, nullptr) == PARLEY_ERROR);
}

TEST_CASE("iq handlers: void means handled; exceptions become PARLEY_ERROR") {
  Instance i(full_def);
  REQUIRE(i.start() == 0);
  auto get = xml("<iq type='get' id='1' from='alice@example.org/pc' to='example.org'><q xmlns='urn:full'/></iq>");
  CHECK(i.iq(0, get.get()) == PARLEY_HANDLED);
  REQUIRE(i.m.routed.size() == 1);
  CHECK(i.m.routed[0] ==
        "<iq type='result' id='1' from='example.org' to='alice@example.org/pc'><n xmlns='urn:full'>0:alice@example.org/pc</n></iq>");

  auto boom = xml("<iq type='set' id='2'><boom xmlns='urn:full'/></iq>");
  CHECK(i.iq(0, boom.get()) == PARLEY_ERROR);
  CHECK(i.m.logged("iq handler threw: iq exploded"));
  CHECK(i.iq(1, get.get()) == PARLEY_PASS);

  parley_iq_request no_iq{};
  no_iq.size = sizeof no_iq;
  CHECK(full_def.iq_handlers[0].fn(i.state, &no_iq) == PARLEY_ERROR);
}

TEST_CASE("save_state / restore_state carry bytes; failures are non-zero, never exceptions") {
  Instance a(full_def);
  REQUIRE(a.start() == 0);
  auto* self = static_cast<Full*>(static_cast<parley::Module*>(a.state));
  self->n_ = 41;
  StringCapture saved;
  CHECK(full_def.save_state(a.state, saved.sink()) == 0);
  CHECK(saved.text == "41");

  Instance b(full_def);
  REQUIRE(b.start() == 0);
  CHECK(full_def.restore_state(b.state, parley_str{saved.text.data(), saved.text.size()}) == 0);
  CHECK(static_cast<Full*>(static_cast<parley::Module*>(b.state))->n_ == 41);

  CHECK(full_def.restore_state(b.state, parley_str{"garbage", 7}) != 0);
  CHECK(b.m.logged("restore_state threw: garbage state"));
  CHECK(full_def.restore_state(b.state, parley_str{"x", 1}) != 0);  // std::stoi throws

  self->n_ = -1;
  StringCapture failed;
  CHECK(full_def.save_state(a.state, failed.sink()) != 0);
  CHECK(a.m.logged("save_state failed: negative"));
}

TEST_CASE("stop: runs stop(), cancels pending timers, destroys; a throwing stop is logged") {
  probe = {};
  {
    Instance i(full_def);
    i.m.options["mode"] = std::string("timer");
    REQUIRE(i.start() == 0);
    CHECK(i.m.timers.size() == 1);
    i.stop();
    CHECK(probe.stopped == 1);
    CHECK(probe.destroyed == 1);
    CHECK(i.m.timers.empty());
    CHECK(i.m.cancelled.size() == 1);
  }
  probe = {};
  Instance t(full_def);
  t.m.options["stop_throws"] = true;
  REQUIRE(t.start() == 0);
  t.stop();
  CHECK(probe.destroyed == 1);
  CHECK(t.m.logged("stop threw: stop exploded"));
}

TEST_CASE("Event and IqRequest read only what the host's struct holds") {
  parley_module m;
  auto iq = xml("<iq type='set' id='9'><x xmlns='urn:x'/></iq>");
  parley_iq_request old{};
  old.size = offsetof(parley_iq_request, session);  // a host from before `session`
  old.iq = iq.get();
  old.session = 99;
  parley::IqRequest req(fake::api(), &old);
  CHECK(req.session() == 0);
  CHECK(req.type() == "set");
  CHECK(req.payload()->xmlns() == "urn:x");
  (void)m;
}

TEST_CASE("Event::user_bare is user@host") {
  parley_event_args args{};
  args.user = parley_str{"a-fairly-long-user-name", 23};
  args.host = parley_str{"chat.example.org", 16};
  parley::Event event(fake::api(), &args);
  CHECK(event.user_bare() == "a-fairly-long-user-name@chat.example.org");
}
