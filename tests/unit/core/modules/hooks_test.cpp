// Hook order and results (ejabberd's model): lower priority runs first; PASS
// goes on; STOP and HANDLED end the chain; ERROR ends it and is reported.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <cstddef>
#include <cstring>

#include "core/modules/hooks.hpp"
#include "core/modules/module_manager.hpp"
#include "core/modules/module_instance.hpp"
#include "xml/element.hpp"
#include "xml/serializer.hpp"

using namespace parley;

namespace {

std::vector<std::string> calls;

struct Probe {
  std::string name;
  int result;
};

int probe_hook(void* state, const parley_event_args* args) {
  auto* probe = static_cast<Probe*>(state);
  calls.push_back(probe->name + ":" + std::to_string(args->event));
  return probe->result;
}

int throwing_hook(void*, const parley_event_args*) { throw 42; }

struct Fixture {
  std::shared_ptr<ModuleLibrary> library = std::make_shared<ModuleLibrary>();
  std::vector<std::unique_ptr<parley_module>> instances;
  std::vector<std::unique_ptr<Probe>> probes;
  ModuleTables tables;

  Fixture() { library->name = "mod_probe"; }

  void add(parley_event event, int priority, std::string name, int result, const std::string& host = "h",
           parley_hook_fn fn = &probe_hook) {
    probes.push_back(std::make_unique<Probe>(Probe{std::move(name), result}));
    auto instance = std::make_unique<parley_module>();
    instance->library = library;
    instance->host = host;
    instance->state = probes.back().get();
    tables.hooks[event][host].push_back(HookEntry{priority, instance.get(), fn});
    instances.push_back(std::move(instance));
  }
  void sort() {
    for (auto& by_host : tables.hooks)
      for (auto& [host, list] : by_host)
        std::stable_sort(list.begin(), list.end(), [](const HookEntry& a, const HookEntry& b) { return a.priority < b.priority; });
  }
  parley_result run(parley_event event, const std::string& host = "h") {
    parley_event_args args{};
    return run_hooks(tables, event, host, args);
  }
};

}  // namespace

TEST_CASE("hooks run in priority order, lower first, and PASS goes on") {
  calls.clear();
  Fixture f;
  f.add(PARLEY_EVENT_STANZA_IN, 80, "late", PARLEY_PASS);
  f.add(PARLEY_EVENT_STANZA_IN, 10, "early", PARLEY_PASS);
  f.add(PARLEY_EVENT_STANZA_IN, 50, "middle", PARLEY_PASS);
  f.sort();
  CHECK(f.run(PARLEY_EVENT_STANZA_IN) == PARLEY_PASS);
  CHECK(calls == std::vector<std::string>{"early:1", "middle:1", "late:1"});
}

TEST_CASE("STOP and HANDLED end the chain and are returned") {
  for (parley_result ending : {PARLEY_STOP, PARLEY_HANDLED}) {
    calls.clear();
    Fixture f;
    f.add(PARLEY_EVENT_OFFLINE_MESSAGE, 10, "first", PARLEY_PASS);
    f.add(PARLEY_EVENT_OFFLINE_MESSAGE, 20, "ender", ending);
    f.add(PARLEY_EVENT_OFFLINE_MESSAGE, 30, "never", PARLEY_PASS);
    f.sort();
    CHECK(f.run(PARLEY_EVENT_OFFLINE_MESSAGE) == ending);
    CHECK(calls == std::vector<std::string>{"first:5", "ender:5"});
  }
}

TEST_CASE("ERROR, an unknown result, or an exception end the chain as ERROR") {
  calls.clear();
  Fixture f;
  f.add(PARLEY_EVENT_STANZA_IN, 10, "bad", 7);
  f.add(PARLEY_EVENT_STANZA_IN, 20, "never", PARLEY_PASS);
  f.sort();
  CHECK(f.run(PARLEY_EVENT_STANZA_IN) == PARLEY_ERROR);
  CHECK(calls == std::vector<std::string>{"bad:1"});

  Fixture g;
  g.add(PARLEY_EVENT_STANZA_IN, 10, "throws", PARLEY_PASS, "h", &throwing_hook);
  CHECK(g.run(PARLEY_EVENT_STANZA_IN) == PARLEY_ERROR);
}

TEST_CASE("hooks are per host and per event") {
  calls.clear();
  Fixture f;
  f.add(PARLEY_EVENT_STANZA_IN, 10, "a", PARLEY_PASS, "a.example");
  f.add(PARLEY_EVENT_STANZA_IN, 10, "b", PARLEY_PASS, "b.example");
  f.add(PARLEY_EVENT_SESSION_BOUND, 10, "bound", PARLEY_PASS, "a.example");
  CHECK(f.run(PARLEY_EVENT_STANZA_IN, "b.example") == PARLEY_PASS);
  CHECK(calls == std::vector<std::string>{"b:1"});
  CHECK(f.run(PARLEY_EVENT_PRESENCE_BROADCAST, "a.example") == PARLEY_PASS);
  CHECK(calls.size() == 1);
}

TEST_CASE("the host table is complete: every entry up to its size is set") {
  // Regression: an entry appended to parley_host_api but not filled in would
  // be a call through null in any module that checks host->size.
  const parley_host_api* api = host_api();
  REQUIRE(api->size == sizeof(parley_host_api));
  CHECK(api->abi_major == PARLEY_ABI_MAJOR);
  CHECK(api->abi_minor == PARLEY_ABI_MINOR);
  const char* base = reinterpret_cast<const char*>(api);
  for (size_t offset = offsetof(parley_host_api, log); offset + sizeof(void*) <= api->size; offset += sizeof(void*)) {
    void* entry = nullptr;
    std::memcpy(&entry, base + offset, sizeof(void*));
    CAPTURE(offset);
    CHECK(entry != nullptr);
  }
}

TEST_CASE("a presence kept as its serialized bytes comes back byte-identical on the wire") {
  // Issue 18 (idle memory): mod_presence keeps each session's last presence as
  // element_serialize's bytes and parses them again (element_parse) for a probe
  // or a new resource. What a client then receives must be what it would have
  // received from the element itself, in a c2s and an s2s stream.
  const parley_host_api* api = host_api();
  auto sink_string = [](void* arg, const char* data, size_t len) { static_cast<std::string*>(arg)->append(data, len); };
  const char* presences[] = {
      "<presence from='juliet@example.com/balcony'/>",
      "<presence from='juliet@example.com/balcony' xml:lang='de' id='p&amp;1'><show>dnd</show>"
      "<status>r&#233;union &lt;3 &amp; &quot;more&quot; ]]&gt;\r\nnext</status><priority>-5</priority>"
      "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' "
      "ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/><x xmlns='vcard-temp:x:update'><photo/></x>"
      "<x xmlns='urn:example:a' xmlns:b='urn:example:b' b:attr='v'><b:child>t</b:child><inner/></x>"
      "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-12-06T20:00:00Z'/></presence>",
  };
  for (const char* text : presences) {
    CAPTURE(text);
    parley_element* original = api->element_parse(to_pstr(text));
    REQUIRE(original != nullptr);
    std::string compact;
    api->element_serialize(original, parley_sink{&compact, sink_string});
    parley_element* again = api->element_parse(to_pstr(compact));
    REQUIRE(again != nullptr);
    const auto& a = *reinterpret_cast<const xml::Element*>(original);
    const auto& b = *reinterpret_cast<const xml::Element*>(again);
    CHECK(a == b);
    for (std::string_view ns : {"jabber:client", "jabber:server"}) {
      xml::SerializeContext ctx;
      ctx.default_ns = ns;
      CHECK(xml::serialize(a, ctx) == xml::serialize(b, ctx));
    }
    std::string twice;
    api->element_serialize(again, parley_sink{&twice, sink_string});
    CHECK(twice == compact);
    api->element_free(original);
    api->element_free(again);
  }
}
