// Per-session outgoing filters (hook_mode PARLEY_HOOKS_PER_SESSION and
// session_filter_out): a filter declared per session runs only for the
// sessions that turned it on; a session none turned on is written without any
// dispatch; the flag goes with the module's slot (unload, reload). A filter
// for every session (a module that never called hook_mode: ABI 1.0 to 1.2)
// still runs for every session, next to a per-session one.
#include <doctest/doctest.h>

#include <atomic>
#include <string>

#include "core/modules/hooks.hpp"
#include "core/modules/module_instance.hpp"
#include "core/modules/module_manager.hpp"
#include "core/session/session.hpp"
#include "tests/unit/core/test_server.hpp"
#include "xml/element.hpp"

using namespace parley;
using namespace parley::test;

namespace {

struct Counts {
  std::atomic<int> per_session{0};
  std::atomic<int> always{0};
};

// Each filter marks what it saw with a child of its own.
int per_session_filter(void* state, const parley_event_args* args) {
  static_cast<Counts*>(state)->per_session.fetch_add(1);
  reinterpret_cast<xml::Element*>(args->stanza)->add_child("per", "urn:test:filter");
  return PARLEY_PASS;
}

int always_filter(void* state, const parley_event_args* args) {
  static_cast<Counts*>(state)->always.fetch_add(1);
  reinterpret_cast<xml::Element*>(args->stanza)->add_child("always", "urn:test:filter");
  return PARLEY_PASS;
}

void route_message(TestServer& server, std::string_view body) {
  server.on_loop(0, [&] {
    xml::Element message("message", "jabber:client");
    message.set_attr("from", "bob@localhost/desk");
    message.set_attr("to", "alice@localhost/phone");
    message.set_attr("type", "chat");
    message.add_child("body", "jabber:client").add_text(std::string(body));
    server.router->route(std::move(message), 0);
  });
}

// The whole <message/> whose body is `body`, as the client got it ("" if none
// came): what the filters left in it.
std::string receive(Client& client, std::string_view body) {
  std::string needle = "<body>" + std::string(body) + "</body>";
  if (!client.read_until(needle) || !client.read_until("</message>")) return {};
  const std::string& all = client.received();
  size_t end = all.find("</message>", all.find(needle));
  size_t begin = all.rfind("<message", all.find(needle));
  return all.substr(begin, end + 10 - begin);
}

bool has(const std::string& message, std::string_view child) {
  return message.find("<" + std::string(child) + " xmlns='urn:test:filter'") != std::string::npos;
}

int set_filter(TestServer& server, parley_module* module, SessionId id, int on) {
  int result = -1;
  server.on_loop(0, [&] { result = host_api()->session_filter_out(module, id, on); });
  return result;
}

}  // namespace

TEST_CASE("per-session outgoing filter: runs only for the sessions that turned it on") {
  Counts counts;
  TestServer server(1, {"alice"});
  std::unique_ptr<parley_module> module = fake_module(*server.ctx, &counts);
  auto tables = std::make_shared<ModuleTables>();
  tables->hooks[PARLEY_EVENT_STANZA_OUT]["localhost"].push_back(
      HookEntry{40, module.get(), &per_session_filter, /*per_session=*/true});
  for (auto& loop : server.ctx->loops) loop->modules = tables;
  server.start();
  Client alice(server.ports[0]);
  REQUIRE(log_in(alice, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");
  REQUIRE(id != 0);

  // Off (the default): written without the filter.
  route_message(server, "m1");
  std::string m1 = receive(alice, "m1");
  REQUIRE(!m1.empty());
  CHECK_FALSE(has(m1, "per"));
  CHECK(counts.per_session.load() == 0);

  // On: filtered.
  CHECK(set_filter(server, module.get(), id, 1) == 1);
  route_message(server, "m2");
  std::string m2 = receive(alice, "m2");
  CHECK(has(m2, "per"));
  CHECK(counts.per_session.load() == 1);
  // Turning it on twice counts once: one off turns it off.
  CHECK(set_filter(server, module.get(), id, 1) == 1);

  // Off again: not filtered.
  CHECK(set_filter(server, module.get(), id, 0) == 1);
  route_message(server, "m3");
  std::string m3 = receive(alice, "m3");
  REQUIRE(!m3.empty());
  CHECK_FALSE(has(m3, "per"));
  CHECK(counts.per_session.load() == 1);

  // On, then the module's slot dropped (what unload and reload do): off.
  CHECK(set_filter(server, module.get(), id, 1) == 1);
  server.on_loop(0, [&] { server.ctx->loops[0]->find(id)->drop_module_data(module.get()); });
  route_message(server, "m4");
  std::string m4 = receive(alice, "m4");
  REQUIRE(!m4.empty());
  CHECK_FALSE(has(m4, "per"));
  CHECK(counts.per_session.load() == 1);

  // A session that is not there.
  CHECK(set_filter(server, module.get(), id + 1000, 1) == 0);
}

TEST_CASE("per-session outgoing filter: next to a filter for every session, only the turned-on one is skipped") {
  Counts per_counts, always_counts;
  TestServer server(1, {"alice"});
  std::unique_ptr<parley_module> per = fake_module(*server.ctx, &per_counts);
  std::unique_ptr<parley_module> always = fake_module(*server.ctx, &always_counts);
  auto tables = std::make_shared<ModuleTables>();
  auto& out = tables->hooks[PARLEY_EVENT_STANZA_OUT]["localhost"];
  out.push_back(HookEntry{40, per.get(), &per_session_filter, true});
  out.push_back(HookEntry{50, always.get(), &always_filter});  // an ABI 1.2 module's: no hook_mode
  for (auto& loop : server.ctx->loops) loop->modules = tables;
  server.start();
  Client alice(server.ports[0]);
  REQUIRE(log_in(alice, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");

  route_message(server, "n1");
  std::string n1 = receive(alice, "n1");
  CHECK(has(n1, "always"));
  CHECK_FALSE(has(n1, "per"));

  CHECK(set_filter(server, per.get(), id, 1) == 1);
  route_message(server, "n2");
  std::string n2 = receive(alice, "n2");
  CHECK(has(n2, "always"));
  CHECK(has(n2, "per"));
  CHECK(per_counts.per_session.load() == 1);
  CHECK(always_counts.always.load() >= 2);
}

TEST_CASE("hook_mode: from start() only, PER_SESSION for the outgoing filter only") {
  TestServer server(1, {"alice"});
  std::unique_ptr<parley_module> module = fake_module(*server.ctx, nullptr);
  const parley_host_api* api = host_api();
  REQUIRE(PARLEY_HOST_HAS(api, session_filter_out));
  // Started: refused (the tables are built from what start() said).
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_STANZA_OUT, PARLEY_HOOKS_PER_SESSION) == 0);
  module->started = false;  // as during start()
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_STANZA_OUT, PARLEY_HOOKS_PER_SESSION) == 1);
  CHECK(module->hooks_per_session.load() == (1u << PARLEY_EVENT_STANZA_OUT));
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_STANZA_IN, PARLEY_HOOKS_PER_SESSION) == 0);
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_STANZA_IN, PARLEY_HOOKS_OFF) == 1);
  CHECK(module->hooks_off.load() == (1u << PARLEY_EVENT_STANZA_IN));
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_STANZA_IN, PARLEY_HOOKS_ALWAYS) == 1);
  CHECK(module->hooks_off.load() == 0);
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_STANZA_IN, 7) == 0);
  CHECK(api->hook_mode(module.get(), 0, PARLEY_HOOKS_OFF) == 0);
  CHECK(api->hook_mode(module.get(), PARLEY_EVENT_COUNT_, PARLEY_HOOKS_OFF) == 0);
}

TEST_CASE("a session's module slots grow one at a time (issue 18, idle memory)") {
  // Doubling gave a session with five modules' slots room for eight (256 B
  // where 160 do): every module slot is kept for the session's whole life.
  TestServer server(1, {"alice"});
  std::vector<std::unique_ptr<parley_module>> modules;
  for (int i = 0; i < 5; ++i) modules.push_back(fake_module(*server.ctx, nullptr));
  server.start();
  Client alice(server.ports[0]);
  REQUIRE(log_in(alice, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");
  REQUIRE(id != 0);
  static int data[5];
  std::vector<size_t> capacities;
  size_t with_filter = 0;
  server.on_loop(0, [&] {
    Session& session = *server.ctx->loops[0]->sessions.at(id);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(host_api()->session_set_data(modules[i].get(), id, &data[i], nullptr) == 1);
      capacities.push_back(session.module_slots().capacity());
    }
    // A slot made by the filter flag alone grows the same way.
    std::unique_ptr<parley_module> flagged = fake_module(*server.ctx, nullptr);
    REQUIRE(host_api()->session_filter_out(flagged.get(), id, 1) == 1);
    with_filter = session.module_slots().capacity();
    REQUIRE(host_api()->session_filter_out(flagged.get(), id, 0) == 1);
  });
  CHECK(capacities == std::vector<size_t>{1, 2, 3, 4, 5});
  CHECK(with_filter == 6);
}
