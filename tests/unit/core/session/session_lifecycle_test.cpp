// The life of a session apart from its connection, with two running loops and
// real loopback sockets: attach (a c2s stream accepted, authenticated, bound),
// detach (its client vanishes while a module keeps the session), re-attach on
// the OTHER loop (session_attach migrates the connection to the session's
// loop), and the detach timeout.
//
// The "module" is a fake instance whose hooks are installed in a ModuleTables
// on each loop, as the module manager would: SESSION_CLOSING keeps the
// session (XEP-0198 style), NONZA_IN takes a <resume/> and calls
// start_session_attach, OFFLINE_MESSAGE stores what reaches offline rules.
#include <doctest/doctest.h>

#include <mutex>
#include <set>

#include "core/session/session_attach.hpp"
#include "tests/unit/core/test_server.hpp"
#include "xml/element.hpp"

using namespace parley;
using namespace parley::test;

namespace {

// What the hooks saw; written on the loops, read by the test thread.
struct Recorder {
  std::mutex mutex;
  std::vector<SessionId> closing, detached, reattached, closed;
  std::vector<std::string> offline_bodies;
  struct Attach {
    SessionId session;
    int attached;
    int loop;  // the loop the completion ran on
  };
  std::vector<Attach> attaches;
  std::atomic<SessionId> resume_target{0};  // what a <resume/> asks for
  parley_module* module = nullptr;

  template <class F>
  auto locked(F&& f) {
    std::lock_guard lock(mutex);
    return f();
  }
};

int on_closing(void* state, const parley_event_args* args) {
  auto* r = static_cast<Recorder*>(state);
  r->locked([&] { r->closing.push_back(args->session); });
  return PARLEY_HANDLED;  // keep the session: it detaches
}

int on_detached(void* state, const parley_event_args* args) {
  auto* r = static_cast<Recorder*>(state);
  r->locked([&] { r->detached.push_back(args->session); });
  return PARLEY_PASS;
}

int on_reattached(void* state, const parley_event_args* args) {
  auto* r = static_cast<Recorder*>(state);
  r->locked([&] { r->reattached.push_back(args->session); });
  return PARLEY_PASS;
}

int on_closed(void* state, const parley_event_args* args) {
  auto* r = static_cast<Recorder*>(state);
  r->locked([&] { r->closed.push_back(args->session); });
  return PARLEY_PASS;
}

int on_offline(void* state, const parley_event_args* args) {
  auto* r = static_cast<Recorder*>(state);
  const auto* stanza = reinterpret_cast<const xml::Element*>(args->stanza);
  r->locked([&] { r->offline_bodies.push_back(stanza->child_text("body")); });
  return PARLEY_HANDLED;  // stored
}

void attach_done(void* state, void* arg, parley_session_id session, int attached) {
  auto* r = static_cast<Recorder*>(state);
  LoopContext* here = LoopContext::current();
  r->locked([&] {
    r->attaches.push_back({session, attached, here ? static_cast<int>(here->loop.index()) : -1});
  });
  if (!attached) return;
  // On the session's loop, before what waited is written: the answer goes first.
  if (Session* s = here->find(session)) s->write_element(xml::Element("resumed", "urn:test:resume"));
}

int on_nonza(void* state, const parley_event_args* args) {
  auto* r = static_cast<Recorder*>(state);
  const auto* element = reinterpret_cast<const xml::Element*>(args->stanza);
  if (element->name() != "resume") return PARLEY_PASS;
  if (start_session_attach(r->module, r->resume_target.load(), args->session, &attach_done, nullptr) != 1)
    return PARLEY_ERROR;
  return PARLEY_HANDLED;
}

// The module's tables on every loop (what ModuleManager installs).
void install_module(TestServer& server, Recorder& recorder, std::unique_ptr<parley_module>& module) {
  module = fake_module(*server.ctx, &recorder);
  recorder.module = module.get();
  auto tables = std::make_shared<ModuleTables>();
  auto hook = [&](parley_event event, parley_hook_fn fn) {
    tables->hooks[event]["localhost"].push_back(HookEntry{0, module.get(), fn});
  };
  hook(PARLEY_EVENT_SESSION_CLOSING, &on_closing);
  hook(PARLEY_EVENT_SESSION_DETACHED, &on_detached);
  hook(PARLEY_EVENT_SESSION_REATTACHED, &on_reattached);
  hook(PARLEY_EVENT_SESSION_CLOSED, &on_closed);
  hook(PARLEY_EVENT_OFFLINE_MESSAGE, &on_offline);
  hook(PARLEY_EVENT_NONZA_IN, &on_nonza);
  for (auto& loop : server.ctx->loops) loop->modules = tables;
}

// The state of session `id` on loop `index`, or nothing if the loop does not own it.
std::optional<Session::State> state_on(TestServer& server, unsigned index, SessionId id) {
  std::optional<Session::State> state;
  server.on_loop(index, [&] {
    if (Session* s = server.ctx->loops[index]->find(id)) state = s->state();
  });
  return state;
}

bool contains(const std::vector<SessionId>& ids, SessionId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// A message from bob (who has no session) to alice/phone, routed on `loop`.
void route_message(TestServer& server, unsigned loop, std::string_view body) {
  server.on_loop(loop, [&] {
    xml::Element message("message", "jabber:client");
    message.set_attr("from", "bob@localhost/desk");
    message.set_attr("to", "alice@localhost/phone");
    message.set_attr("type", "chat");
    message.add_child("body", "jabber:client").add_text(std::string(body));
    server.router->route(std::move(message), loop);
  });
}

}  // namespace

TEST_CASE("session life cycle: attach, detach, re-attach on the other loop") {
  // The module outlives the server (its hooks run until the loops stop).
  Recorder recorder;
  std::unique_ptr<parley_module> module;
  TestServer server(2, {"alice"});
  install_module(server, recorder, module);
  server.start();

  // Attach: a stream accepted on loop 0, authenticated and bound.
  Client first(server.ports[0]);
  REQUIRE(log_in(first, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");
  REQUIRE(id != 0);
  CHECK(loop_of(id) == 0);
  CHECK(state_on(server, 0, id) == Session::State::bound);
  CHECK(server.connections_open(0) == 1);
  CHECK(server.connections_open(1) == 0);

  // Detach: the client vanishes; the CLOSING hook keeps the session.
  first.reset();
  REQUIRE(wait_until([&] { return state_on(server, 0, id) == Session::State::detached; }));
  CHECK(wait_until([&] { return server.connections_open(0) == 0; }));
  CHECK(server.session_of("alice@localhost", "phone") == id);  // still routable
  recorder.locked([&] {
    CHECK(recorder.closing == std::vector<SessionId>{id});
    CHECK(recorder.detached == std::vector<SessionId>{id});
    CHECK_FALSE(contains(recorder.closed, id));
  });

  // A stanza for it now waits (routed from the other loop: it crosses over).
  route_message(server, 1, "while-away");
  REQUIRE(wait_until([&] { return server.ctx->route_queue(0) == 0; }));
  CHECK(state_on(server, 0, id) == Session::State::detached);
  recorder.locked([&] { CHECK(recorder.offline_bodies.empty()); });  // not rerouted

  // Re-attach from loop 1: a new connection authenticates there and resumes.
  recorder.resume_target = id;
  Client second(server.ports[1]);
  REQUIRE(authenticate(second, "alice"));
  CHECK(server.connections_open(1) == 1);
  REQUIRE(second.send("<resume xmlns='urn:test:resume'/>"));
  // The completion's answer first, then what waited, on the new socket.
  REQUIRE(second.read_until("<resumed"));
  REQUIRE(second.read_until("while-away"));
  recorder.locked([&] {
    REQUIRE(recorder.attaches.size() == 1);
    CHECK(recorder.attaches[0].session == id);  // the same session id for modules
    CHECK(recorder.attaches[0].attached == 1);
    CHECK(recorder.attaches[0].loop == 0);  // completed on the session's loop
    CHECK(recorder.reattached == std::vector<SessionId>{id});
    CHECK_FALSE(contains(recorder.closed, id));
  });
  // The session never moved: loop 0 owns it, bound again, with the connection.
  CHECK(state_on(server, 0, id) == Session::State::bound);
  bool has_stream = false;
  size_t sessions_on_1 = 99;
  server.on_loop(0, [&] { has_stream = server.ctx->loops[0]->stream_of(id) != nullptr; });
  server.on_loop(1, [&] { sessions_on_1 = server.ctx->loops[1]->sessions.size(); });
  CHECK(has_stream);
  CHECK(sessions_on_1 == 0);  // the resuming stream's own session ended there
  CHECK(wait_until([&] { return server.connections_open(0) == 1 && server.connections_open(1) == 0; }));
  CHECK(server.session_of("alice@localhost", "phone") == id);

  // The migrated socket reads and writes on its new loop: a message to itself
  // comes back over it.
  REQUIRE(second.send("<message to='alice@localhost/phone' type='chat'><body>round-trip</body></message>"));
  CHECK(second.read_until("round-trip"));
  recorder.locked([&] { CHECK(recorder.offline_bodies.empty()); });
}

TEST_CASE("session life cycle: a detached session times out") {
  Recorder recorder;
  std::unique_ptr<parley_module> module;
  TestServer server(2, {"alice"}, [](config::Config& c) { c.limits.max_detached_seconds = 1; });
  install_module(server, recorder, module);
  server.start();

  Client client(server.ports[0]);
  REQUIRE(log_in(client, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");
  REQUIRE(id != 0);
  client.reset();
  REQUIRE(wait_until([&] { return state_on(server, 0, id) == Session::State::detached; }));
  route_message(server, 0, "left-waiting");

  // After max_detached_seconds: SESSION_CLOSED, out of the session table and
  // of its loop, and what waited goes as for a resource that is gone (here:
  // offline storage).
  CHECK(wait_until([&] { return recorder.locked([&] { return contains(recorder.closed, id); }); }));
  CHECK(wait_until([&] { return server.session_of("alice@localhost", "phone") == 0; }));
  CHECK(wait_until([&] { return !state_on(server, 0, id).has_value(); }));
  // Routed again from the loop, through the account check: it lands a little later.
  CHECK(wait_until([&] { return recorder.locked([&] { return !recorder.offline_bodies.empty(); }); }));
  recorder.locked([&] { CHECK(recorder.offline_bodies == std::vector<std::string>{"left-waiting"}); });
  CHECK(wait_until([&] { return server.connections_open(0) == 0; }));
}

TEST_CASE("session life cycle: a resume for a session that is not detached is refused, the stream goes on") {
  Recorder recorder;
  std::unique_ptr<parley_module> module;
  TestServer server(2, {"alice"});
  install_module(server, recorder, module);
  server.start();

  Client bound(server.ports[0]);
  REQUIRE(log_in(bound, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");
  REQUIRE(id != 0);

  // The target is online (bound, not detached): the attach fails on the
  // stream's loop and the stream stays an unbound stream that may bind.
  recorder.resume_target = id;
  Client second(server.ports[1]);
  REQUIRE(authenticate(second, "alice"));
  REQUIRE(second.send("<resume xmlns='urn:test:resume'/>"));
  REQUIRE(wait_until([&] { return recorder.locked([&] { return recorder.attaches.size() == 1; }); }));
  recorder.locked([&] {
    CHECK(recorder.attaches[0].attached == 0);
    CHECK(recorder.attaches[0].session != id);  // the stream's own session
    CHECK(recorder.attaches[0].loop == 1);      // on the loop that asked
  });
  REQUIRE(second.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<resource>laptop</resource></bind></iq>"));
  CHECK(second.read_until("alice@localhost/laptop</jid>"));
  CHECK(state_on(server, 0, id) == Session::State::bound);
  CHECK(server.session_of("alice@localhost", "laptop") != 0);
}
