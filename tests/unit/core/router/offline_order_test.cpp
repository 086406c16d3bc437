// A sender's messages to one contact keep their order when the contact's
// session goes away with some of them still on the route to its loop
// (Router::fence_offline): the ones in flight reach the offline rules from
// the contact's loop, the later ones from the sender's, and the later ones
// must wait. A real ServerContext, Router and storage with two running loops
// (tests/unit/core/test_server.hpp); the offline hook records the order.
#include <doctest/doctest.h>

#include <future>
#include <mutex>

#include "core/modules/hooks.hpp"
#include "core/modules/module_manager.hpp"
#include "tests/unit/core/test_server.hpp"
#include "xml/element.hpp"

using namespace parley;
using namespace parley::test;

namespace {

// The bodies the offline hook took, in the order it took them (on either loop).
struct Stored {
  std::mutex mutex;
  std::vector<std::string> bodies;
  std::vector<std::string> taken() {
    std::lock_guard lock(mutex);
    return bodies;
  }
};

int store_offline(void* state, const parley_event_args* args) {
  auto* stored = static_cast<Stored*>(state);
  const auto* stanza = reinterpret_cast<const xml::Element*>(args->stanza);
  std::lock_guard lock(stored->mutex);
  stored->bodies.push_back(stanza->child_text("body"));
  return PARLEY_HANDLED;
}

xml::Element chat(std::string to, std::string body) {
  xml::Element m("message", "jabber:client");
  m.set_attr("from", "alice@localhost/phone");
  m.set_attr("to", std::move(to));
  m.set_attr("type", "chat");
  m.add_child("body", "jabber:client").add_text(std::move(body));
  return m;
}

}  // namespace

TEST_CASE("offline order: a message overtakes none still on the route to the contact's closing session") {
  Stored stored;
  TestServer server(2, {"alice", "bob"});
  std::unique_ptr<parley_module> module = fake_module(*server.ctx, &stored);
  auto tables = std::make_shared<ModuleTables>();
  tables->hooks[PARLEY_EVENT_OFFLINE_MESSAGE]["localhost"].push_back(HookEntry{0, module.get(), &store_offline});
  for (auto& loop : server.ctx->loops) loop->modules = tables;
  server.start();
  Client alice(server.ports[0]);
  Client bob(server.ports[1]);
  REQUIRE(log_in(alice, "alice", "phone"));
  REQUIRE(log_in(bob, "bob", "pc"));
  SessionId bob_id = server.session_of("bob@localhost", "pc");
  REQUIRE(loop_of(bob_id) == 1);
  REQUIRE(loop_of(server.session_of("alice@localhost", "phone")) == 0);

  // Loop 1 is busy until released; then, first thing, bob's session closes
  // (as a cut connection would): what the route brought meanwhile finds it gone.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  LoopContext* bob_loop = server.ctx->loops[1].get();
  bob_loop->loop.post([released, bob_loop, bob_id] {
    released.wait();
    if (Session* s = bob_loop->find(bob_id)) s->close("system-shutdown");
  });

  // "first" goes onto the route to loop 1 (bob's session is in the table).
  server.on_loop(0, [&] {
    server.router->route(chat("bob@localhost/pc", "first"), Jid::parse("alice@localhost/phone").value(),
                         Jid::parse("bob@localhost/pc").value(), 0);
  });
  REQUIRE(server.ctx->route_queue(1) == 1);
  // Loop 0 now sees bob gone (loop 1 is about to remove him), and routes
  // "second" to the offline rules from here, while "first" is still queued.
  server.ctx->sessions.unbind("bob@localhost", "pc", bob_id);
  server.on_loop(0, [&] {
    server.router->route(chat("bob@localhost/pc", "second"), Jid::parse("alice@localhost/phone").value(),
                         Jid::parse("bob@localhost/pc").value(), 0);
  });
  // Not stored ahead of "first" (before the fence, it was stored here at once).
  CHECK(stored.taken().empty());

  release.set_value();
  REQUIRE(wait_until([&] { return stored.taken().size() == 2; }));
  CHECK(stored.taken() == std::vector<std::string>{"first", "second"});
  // The sender's input, held while "second" waited, flows again.
  REQUIRE(alice.send("<message to='alice@localhost/phone' type='chat'><body>still-here</body></message>"));
  CHECK(alice.read_until("still-here"));
}
