// The built modules (modules/ and tests/modules/), dlopen()ed into this test
// and driven through the fake host: the ABI as parleyd will see it.
#include <dlfcn.h>
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "fake_host.hpp"
#include "parley/module.h"

namespace {

struct Sink {
  std::string text;
  parley_sink sink() {
    return {this, [](void* ctx, const char* d, size_t n) { static_cast<Sink*>(ctx)->text.append(d, n); }};
  }
};

// One dlopen()ed module with one started instance.
class Loaded {
 public:
  explicit Loaded(const char* path) {
    handle_ = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    INFO(path << ": " << (handle_ ? "" : dlerror()));
    REQUIRE(handle_ != nullptr);
    auto entry = reinterpret_cast<parley_module_entry_fn>(dlsym(handle_, PARLEY_MODULE_ENTRY_SYMBOL));
    REQUIRE((entry != nullptr ? true : false));
    def_ = entry();
    REQUIRE(def_ != nullptr);
  }
  ~Loaded() {
    if (state_) def_->stop(state_);
    dlclose(handle_);
  }
  Loaded(const Loaded&) = delete;
  Loaded& operator=(const Loaded&) = delete;

  const parley_module_def& def() const { return *def_; }
  parley_module& m() { return m_; }
  int start() {
    int rc = def_->start(&m_, fake::api(), &state_, error_.sink());
    m_.state = state_;
    return rc;
  }
  const std::string& start_error() const { return error_.text; }
  void* state() const { return state_; }

  parley_result iq(uint32_t scope, std::string_view xml, std::string_view from = "alice@example.org/pc",
                   std::string_view to = "example.org") {
    std::unique_ptr<parley_element> stanza(fake::parse(xml));
    REQUIRE(stanza);
    const parley_element* payload = fake::api()->element_child_at(stanza.get(), 0);
    REQUIRE(payload);
    std::string ns(fake::api()->element_xmlns(payload).ptr, fake::api()->element_xmlns(payload).len);
    for (size_t i = 0; i < def_->iq_handler_count; ++i) {
      const parley_iq_decl& d = def_->iq_handlers[i];
      if (d.scope != scope || ns != d.xmlns) continue;
      parley_iq_request req{};
      req.size = sizeof req;
      req.iq = stanza.get();
      req.from = {from.data(), from.size()};
      req.to = {to.data(), to.size()};
      return static_cast<parley_result>(d.fn(state_, &req));
    }
    FAIL("no handler for " << ns);
    return PARLEY_ERROR;
  }

  parley_result hook(uint32_t event, std::string_view xml) {
    std::unique_ptr<parley_element> stanza(fake::parse(xml));
    REQUIRE(stanza);
    parley_result last = PARLEY_PASS;
    for (size_t i = 0; i < def_->hook_count; ++i) {
      if (def_->hooks[i].event != event) continue;
      parley_event_args args{};
      args.size = sizeof args;
      args.event = event;
      args.stanza = stanza.get();
      last = static_cast<parley_result>(def_->hooks[i].fn(state_, &args));
    }
    return last;
  }

  std::string save() {
    REQUIRE((def_->save_state != nullptr ? true : false));
    Sink out;
    REQUIRE(def_->save_state(state_, out.sink()) == 0);
    return out.text;
  }
  int restore(std::string_view bytes) { return def_->restore_state(state_, parley_str{bytes.data(), bytes.size()}); }

 private:
  void* handle_ = nullptr;
  const parley_module_def* def_ = nullptr;
  parley_module m_;
  void* state_ = nullptr;
  Sink error_;
};

std::vector<std::string> features_of(const parley_module_def& def) {
  std::vector<std::string> out;
  for (const char* const* f = def.disco_features; f && *f; ++f) out.emplace_back(*f);
  return out;
}

}  // namespace

TEST_CASE("mod_ping answers a ping with an empty result") {
  Loaded mod(PARLEY_MOD_PING);
  CHECK(std::string(mod.def().name) == "mod_ping");
  CHECK(mod.def().abi_major == PARLEY_ABI_MAJOR);
  CHECK(features_of(mod.def()) == std::vector<std::string>{"urn:xmpp:ping"});
  REQUIRE(mod.start() == 0);
  CHECK(mod.iq(PARLEY_IQ_SERVER, "<iq xmlns='jabber:client' type='get' id='p1' from='alice@example.org/pc' "
                                 "to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 1);
  CHECK(mod.m().routed[0] == "<iq xmlns='jabber:client' type='result' id='p1' from='example.org' to='alice@example.org/pc'/>");

  // At an account: answered for its owner only (RFC 6120 10.3.3); another
  // account gets what a missing one gets.
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, "<iq type='get' id='p2' from='alice@example.org/pc' to='alice@example.org'>"
                                  "<ping xmlns='urn:xmpp:ping'/></iq>",
               "alice@example.org/pc", "alice@example.org") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 2);
  CHECK(mod.m().routed[1] == "<iq type='result' id='p2' from='alice@example.org' to='alice@example.org/pc'/>");
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, "<iq type='get' id='p3' from='alice@example.org/pc' to='bob@example.org'>"
                                  "<ping xmlns='urn:xmpp:ping'/></iq>",
               "alice@example.org/pc", "bob@example.org") == PARLEY_HANDLED);
  CHECK(mod.m().routed.size() == 2);
  REQUIRE(mod.m().bounces.size() == 1);
  CHECK(mod.m().bounces[0].condition == "service-unavailable");
}

TEST_CASE("mod_disco: server info, items, nodes, accounts") {
  Loaded mod(PARLEY_MOD_DISCO);
  CHECK(std::string(mod.def().name) == "mod_disco");
  CHECK(features_of(mod.def()) ==
        std::vector<std::string>{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"});
  mod.m().features = {"http://jabber.org/protocol/disco#info", "urn:xmpp:ping", "http://jabber.org/protocol/disco#items",
                      "urn:xmpp:ping"};
  REQUIRE(mod.start() == 0);

  const char* info = "<iq type='get' id='d1' from='alice@example.org/pc' to='example.org'>"
                     "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_SERVER, info) == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 1);
  CHECK(mod.m().routed[0] ==
        "<iq type='result' id='d1' from='example.org' to='alice@example.org/pc'>"
        "<query xmlns='http://jabber.org/protocol/disco#info'>"
        "<identity category='server' type='im' name='Parley'/>"
        "<feature var='http://jabber.org/protocol/disco#info'/>"
        "<feature var='http://jabber.org/protocol/disco#items'/>"
        "<feature var='urn:xmpp:ping'/></query></iq>");

  const char* items = "<iq type='get' id='d2' from='alice@example.org/pc' to='example.org'>"
                      "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_SERVER, items) == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 2);
  CHECK(mod.m().routed[1] == "<iq type='result' id='d2' from='example.org' to='alice@example.org/pc'>"
                             "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
  // Module services of the host (ABI 1.2) are its items.
  mod.m().routes.push_back({"rooms.example.org", "Rooms", nullptr});
  CHECK(mod.iq(PARLEY_IQ_SERVER, items) == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 3);
  CHECK(mod.m().routed[2] == "<iq type='result' id='d2' from='example.org' to='alice@example.org/pc'>"
                             "<query xmlns='http://jabber.org/protocol/disco#items'>"
                             "<item jid='rooms.example.org' name='Rooms'/></query></iq>");
  mod.m().routed.pop_back();
  mod.m().routes.clear();

  for (const char* ns : {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"}) {
    std::string node = std::string("<iq type='get' id='d3' from='alice@example.org/pc' to='example.org'><query xmlns='") +
                       ns + "' node='x'/></iq>";
    CHECK(mod.iq(PARLEY_IQ_SERVER, node) == PARLEY_HANDLED);
    REQUIRE(!mod.m().bounces.empty());
    CHECK(mod.m().bounces.back().condition == "item-not-found");
  }
  CHECK(mod.m().routed.size() == 2);

  const char* own = "<iq type='get' id='a1' from='alice@example.org/pc' to='alice@example.org'>"
                    "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, own, "alice@example.org/pc", "alice@example.org") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 3);
  CHECK(mod.m().routed[2] == "<iq type='result' id='a1' from='alice@example.org' to='alice@example.org/pc'>"
                             "<query xmlns='http://jabber.org/protocol/disco#info'>"
                             "<identity category='account' type='registered'/>"
                             "<feature var='http://jabber.org/protocol/disco#info'/>"
                             "<feature var='http://jabber.org/protocol/disco#items'/></query></iq>");

  size_t bounces = mod.m().bounces.size();
  const char* other = "<iq type='get' id='a2' from='alice@example.org/pc' to='bob@example.org'>"
                      "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, other, "alice@example.org/pc", "bob@example.org") == PARLEY_HANDLED);
  REQUIRE(mod.m().bounces.size() == bounces + 1);
  CHECK(mod.m().bounces.back().condition == "service-unavailable");
  CHECK(mod.m().routed.size() == 3);

  // disco#items at an account: its owner gets its sessions (the fake host has
  // none) or item-not-found for a node; anyone else an empty result, the node
  // mirrored (XEP-0030 section 7: the same as for an account that does not exist).
  const char* own_items = "<iq type='get' id='a3' from='alice@example.org/pc' to='alice@example.org'>"
                          "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, own_items, "alice@example.org/pc", "alice@example.org") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 4);
  CHECK(mod.m().routed[3] == "<iq type='result' id='a3' from='alice@example.org' to='alice@example.org/pc'>"
                             "<query xmlns='http://jabber.org/protocol/disco#items'/></iq>");
  const char* own_node = "<iq type='get' id='a4' from='alice@example.org/pc' to='alice@example.org'>"
                         "<query xmlns='http://jabber.org/protocol/disco#items' node='x'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, own_node, "alice@example.org/pc", "alice@example.org") == PARLEY_HANDLED);
  REQUIRE(mod.m().bounces.size() == bounces + 2);
  CHECK(mod.m().bounces.back().condition == "item-not-found");
  const char* other_node = "<iq type='get' id='a5' from='alice@example.org/pc' to='bob@example.org'>"
                           "<query xmlns='http://jabber.org/protocol/disco#items' node='x'/></iq>";
  CHECK(mod.iq(PARLEY_IQ_ACCOUNT, other_node, "alice@example.org/pc", "bob@example.org") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 5);
  CHECK(mod.m().routed[4] == "<iq type='result' id='a5' from='bob@example.org' to='alice@example.org/pc'>"
                             "<query xmlns='http://jabber.org/protocol/disco#items' node='x'/></iq>");
}

TEST_CASE("mod_test_echo echoes the payload") {
  Loaded mod(PARLEY_MOD_TEST_ECHO);
  REQUIRE(mod.start() == 0);
  CHECK(mod.iq(PARLEY_IQ_SERVER, "<iq type='get' id='e' from='a@example.org/r' to='example.org'>"
                                 "<echo xmlns='urn:parley:test:echo' k='v'><x>1</x></echo></iq>") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 1);
  CHECK(mod.m().routed[0] == "<iq type='result' id='e' from='example.org' to='a@example.org/r'>"
                             "<echo xmlns='urn:parley:test:echo' k='v'><x>1</x></echo></iq>");
  CHECK(mod.m().counters["echoes"] == 1);
}

TEST_CASE("mod_test_throws: exceptions stop at the boundary") {
  Loaded mod(PARLEY_MOD_TEST_THROWS);
  REQUIRE(mod.start() == 0);
  CHECK(mod.hook(PARLEY_EVENT_STANZA_IN, "<message><body>hello</body></message>") == PARLEY_PASS);
  CHECK(mod.hook(PARLEY_EVENT_STANZA_IN, "<message><body>throw</body></message>") == PARLEY_ERROR);
  CHECK(mod.m().logged("asked to throw by a message"));
  CHECK(mod.iq(PARLEY_IQ_SERVER, "<iq type='set' id='t'><x xmlns='urn:parley:test:throws'/></iq>") == PARLEY_ERROR);
  CHECK(mod.m().logged("asked to throw by an iq"));
}

TEST_CASE("mod_test_counter: v1's state reaches v2 through save/restore, both loaded at once") {
  Loaded v1(PARLEY_MOD_TEST_COUNTER);
  Loaded v2(PARLEY_MOD_TEST_COUNTER_V2);
  CHECK(std::string(v1.def().name) == "mod_test_counter");
  CHECK(std::string(v2.def().name) == "mod_test_counter");
  CHECK(std::string(v1.def().version) != std::string(v2.def().version));
  REQUIRE(v1.start() == 0);
  const char* get = "<iq type='get' id='c' from='a@example.org/r' to='example.org'><query xmlns='urn:parley:test:counter'/></iq>";
  for (int i = 0; i < 3; ++i) CHECK(v1.iq(PARLEY_IQ_SERVER, get) == PARLEY_HANDLED);
  CHECK(v1.m().routed.back() == "<iq type='result' id='c' from='example.org' to='a@example.org/r'>"
                                "<query xmlns='urn:parley:test:counter'><count>3</count></query></iq>");
  std::string state = v1.save();
  CHECK(state == "3");

  REQUIRE(v2.start() == 0);
  CHECK(v2.restore(state) == 0);
  CHECK(v2.iq(PARLEY_IQ_SERVER, get) == PARLEY_HANDLED);
  CHECK(v2.m().routed.back() == "<iq type='result' id='c' from='example.org' to='a@example.org/r'>"
                                "<query xmlns='urn:parley:test:counter'><count>4</count><version>2</version></query></iq>");
  // Each .so keeps its own code: v1 still answers without a version.
  CHECK(v1.iq(PARLEY_IQ_SERVER, get) == PARLEY_HANDLED);
  CHECK(v1.m().routed.back().find("<version>") == std::string::npos);

  CHECK(v2.restore("not a number") != 0);
  CHECK(v2.m().logged("not a count"));
}

TEST_CASE("mod_test_new_major declares the next major") {
  Loaded mod(PARLEY_MOD_TEST_NEW_MAJOR);
  CHECK(mod.def().abi_major == PARLEY_ABI_MAJOR + 1);
  CHECK(std::string(mod.def().name) == "mod_test_new_major");
}

TEST_CASE("mod_test_old_minor: a smaller def that still works") {
  Loaded mod(PARLEY_MOD_TEST_OLD_MINOR);
  CHECK(mod.def().size < sizeof(parley_module_def));
  CHECK(mod.def().size == offsetof(parley_module_def, disco_features));
  CHECK(mod.def().abi_major == PARLEY_ABI_MAJOR);
  CHECK(mod.def().abi_minor == 0);
  REQUIRE(mod.start() == 0);
  CHECK(mod.iq(PARLEY_IQ_SERVER, "<iq xmlns='jabber:client' type='get' id='o' from='a@example.org/r' to='example.org'>"
                                 "<old xmlns='urn:parley:test:old'/></iq>") == PARLEY_HANDLED);
  REQUIRE(mod.m().routed.size() == 1);
  CHECK(mod.m().routed[0] == "<iq xmlns='jabber:client' type='result' id='o' from='example.org' to='a@example.org/r'>"
                             "<old xmlns='urn:parley:test:old'/></iq>");
}

TEST_CASE("mod_test_not_a_module has no entry symbol") {
  void* handle = dlopen(PARLEY_MOD_TEST_NOT_A_MODULE, RTLD_NOW | RTLD_LOCAL);
  REQUIRE(handle != nullptr);
  CHECK(dlsym(handle, PARLEY_MODULE_ENTRY_SYMBOL) == nullptr);
  dlclose(handle);
}

TEST_CASE("mod_test_bad_option declares a required option and refuses to start without it") {
  Loaded mod(PARLEY_MOD_TEST_BAD_OPTION);
  REQUIRE(mod.def().option_count == 2);
  CHECK(std::string(mod.def().options[0].name) == "secret");
  CHECK(mod.def().options[0].type == PARLEY_OPT_STRING);
  CHECK(mod.def().options[0].required != 0);
  CHECK(mod.def().options[1].required == 0);
  CHECK(mod.start() != 0);
  CHECK(mod.start_error().find("secret") != std::string::npos);

  Loaded ok(PARLEY_MOD_TEST_BAD_OPTION);
  ok.m().options["secret"] = std::string("s3cret");
  CHECK(ok.start() == 0);
}
