// The route table (core/router/router.cpp): where a destination domain goes,
// the bound of the routes between loops, and the cost of a look-up. A real
// ServerContext, Router and storage with two running loops; clients are real
// loopback sockets (tests/unit/core/test_server.hpp).
#include <doctest/doctest.h>

#include <cstdlib>
#include <mutex>
#include <new>

#include "core/modules/hooks.hpp"
#include "core/modules/module_manager.hpp"
#include "tests/unit/core/test_server.hpp"
#include "xml/element.hpp"

// GCC sees std::free() on what an inlined operator new returned; that new is
// the malloc() below, so the pair matches.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts the allocations of the thread that asks for it: the look-up test
// below proves a host or service look-up makes none. Replaces the global
// operator new of this test binary only.
namespace {
thread_local bool counting_allocations = false;
thread_local size_t allocations = 0;
}  // namespace

void* operator new(std::size_t size) {
  if (counting_allocations) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using namespace parley;
using namespace parley::test;

namespace {

// What the module services were given; written on the loops.
struct Services {
  struct Call {
    std::string service;  // which service's fn ran
    std::string from, to, domain;
  };
  std::mutex mutex;
  std::vector<Call> calls;

  std::vector<Call> of(std::string_view service) {
    std::lock_guard lock(mutex);
    std::vector<Call> out;
    for (const auto& c : calls)
      if (c.service == service) out.push_back(c);
    return out;
  }
};

void record(void* state, const parley_route_request* request, std::string service) {
  auto* s = static_cast<Services*>(state);
  std::lock_guard lock(s->mutex);
  s->calls.push_back({std::move(service), std::string(from_pstr(request->from)), std::string(from_pstr(request->to)),
                      std::string(from_pstr(request->domain))});
}

int muc_route(void* state, const parley_route_request* request) {
  record(state, request, "muc");
  return PARLEY_HANDLED;
}
int pass_route(void* state, const parley_route_request* request) {
  record(state, request, "pass");
  return PARLEY_PASS;  // not taken: the core answers
}
int host_route(void* state, const parley_route_request* request) {
  record(state, request, "host");
  return PARLEY_HANDLED;
}

// The loop an outgoing filter last ran on (-1: off the loops).
std::atomic<int> out_filter_loop{-2};
int note_out_loop(void*, const parley_event_args*) {
  LoopContext* here = LoopContext::current();
  out_filter_loop = here ? static_cast<int>(here->loop.index()) : -1;
  return PARLEY_PASS;
}

size_t count(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

}  // namespace

TEST_CASE("route table: a served host, then a module service, then remote-server-not-found") {
  Services services;
  std::unique_ptr<parley_module> module;
  TestServer server(2, {"alice", "bob"});
  module = fake_module(*server.ctx, &services);
  auto tables = std::make_shared<ModuleTables>();
  tables->services.emplace("muc.localhost", ServiceEntry{module.get(), &muc_route, "localhost", "Rooms"});
  tables->services.emplace("pass.localhost", ServiceEntry{module.get(), &pass_route, "localhost", "Nothing"});
  // A service entry under a served host's own name never shadows the host:
  // served hosts are resolved first.
  tables->services.emplace("localhost", ServiceEntry{module.get(), &host_route, "localhost", "Shadow"});
  for (auto& loop : server.ctx->loops) loop->modules = tables;
  server.start();

  Client bob(server.ports[0]);
  Client alice(server.ports[1]);
  REQUIRE(log_in(bob, "bob", "pc"));
  REQUIRE(log_in(alice, "alice", "phone"));

  // A served host: the session table (alice's session, on the other loop).
  REQUIRE(bob.send("<message to='alice@localhost/phone' type='chat'><body>to-alice</body></message>"));
  CHECK(alice.read_until("to-alice"));

  // A module service: the domain itself and any JID at it go to its route fn.
  REQUIRE(bob.send("<message to='room@muc.localhost/nick' type='groupchat'><body>to-room</body></message>"));
  REQUIRE(bob.send("<iq to='muc.localhost' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/>"
                   "</iq>"));
  REQUIRE(wait_until([&] { return services.of("muc").size() == 2; }));
  auto muc = services.of("muc");
  CHECK(muc[0].to == "room@muc.localhost/nick");
  CHECK(muc[0].domain == "muc.localhost");
  CHECK(muc[0].from == "bob@localhost/pc");
  CHECK(muc[1].to == "muc.localhost");
  CHECK(muc[1].domain == "muc.localhost");

  // A service that does not take an iq: the core answers service-unavailable.
  REQUIRE(bob.send("<iq to='pass.localhost' type='get' id='p1'><query xmlns='urn:test:nothing'/></iq>"));
  CHECK(bob.read_until("service-unavailable"));
  CHECK(services.of("pass").size() == 1);

  // Anything else: no route (no s2s yet), whether an unknown domain or a
  // subdomain of a service (a service matches its exact domain only).
  REQUIRE(bob.send("<message to='someone@elsewhere.example' type='chat' id='r1'><body>x</body></message>"));
  CHECK(bob.read_until("remote-server-not-found"));
  REQUIRE(bob.send("<message to='deeper.muc.localhost' type='chat' id='r2'><body>x</body></message>"));
  CHECK(bob.read_until("remote-server-not-found"));

  // A served host with no such account: the account rules (RFC 6121 §8.5.1,
  // asked of storage).
  REQUIRE(bob.send("<message to='nobody@localhost' type='chat' id='n1'><body>x</body></message>"));
  CHECK(bob.read_until("service-unavailable"));

  // Everything bob sent before this has been routed once it comes back.
  REQUIRE(bob.send("<message to='bob@localhost/pc' type='chat'><body>marker</body></message>"));
  CHECK(bob.read_until("marker"));
  CHECK(services.of("host").empty());
  CHECK(services.of("muc").size() == 2);
  CHECK(services.of("pass").size() == 1);
  CHECK(count(bob.received(), "remote-server-not-found") == 2);
  CHECK(count(alice.received(), "to-alice") == 1);
}

TEST_CASE("route table: the route to a busy loop is bounded by max_route_queue") {
  constexpr size_t kLimit = 8;
  constexpr int kSent = 20;
  TestServer server(2, {"alice", "bob"}, [](config::Config& c) { c.limits.max_route_queue = kLimit; });
  server.start();
  Client alice(server.ports[0]);
  Client bob(server.ports[1]);
  REQUIRE(log_in(alice, "alice", "phone"));
  REQUIRE(log_in(bob, "bob", "pc"));
  SessionId bob_id = server.session_of("bob@localhost", "pc");
  REQUIRE(loop_of(bob_id) == 1);

  // Loop 1 is busy (blocked in a task) until released, whatever happens below.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  struct Release {
    std::promise<void>& p;
    bool done = false;
    void now() {
      if (!done) p.set_value();
      done = true;
    }
    ~Release() { now(); }
  } releaser{release};
  server.ctx->loops[1]->loop.post([released] { released.wait(); });

  auto message = [](std::string body) {
    xml::Element m("message", "jabber:client");
    m.set_attr("from", "alice@localhost/phone");
    m.set_attr("to", "bob@localhost/pc");
    m.set_attr("type", "chat");
    m.add_child("body", "jabber:client").add_text(std::move(body));
    return m;
  };
  server.on_loop(0, [&] {
    for (int i = 0; i < kSent; ++i)
      server.router->deliver_to_session(bob_id, std::make_shared<Delivery>(message("n" + std::to_string(i) + ".")), 0);
  });
  // The route holds exactly the limit; the rest was refused, counted on the
  // sending loop and answered resource-constraint to the sender.
  CHECK(server.ctx->route_queue(1) == static_cast<int64_t>(kLimit));
  CHECK(server.ctx->loops[0]->metrics.stanzas_refused_route_full.get() == kSent - static_cast<int>(kLimit));
  CHECK(server.ctx->total(&LoopMetrics::stanzas_refused_route_full) == kSent - static_cast<int>(kLimit));
  CHECK(wait_until([&] {
    alice.read_until("</message>", 10ms);
    return count(alice.received(), "<resource-constraint") == kSent - kLimit;
  }));

  releaser.now();
  CHECK(wait_until([&] { return server.ctx->route_queue(1) == 0; }));
  // The ones the route took were delivered, in order; a last one sent after
  // them arrives after them (the route is FIFO), so nothing else is on its way.
  server.on_loop(0, [&] { server.router->deliver_to_session(bob_id, std::make_shared<Delivery>(message("end.")), 0); });
  REQUIRE(bob.read_until("end."));
  std::string got = bob.received();
  size_t last = 0;
  for (size_t i = 0; i < kLimit; ++i) {
    size_t at = got.find("n" + std::to_string(i) + ".");
    CHECK(at != std::string::npos);
    CHECK(at >= last);
    if (at != std::string::npos) last = at;
  }
  CHECK(count(got, "<body>n") == kLimit);
  // Counted received once handled: just after the write that bob read.
  CHECK(wait_until([&] { return server.ctx->route_queue(1) == 0; }));
}

TEST_CASE("route table: looking up a host or a service domain allocates nothing") {
  // Names longer than a std::string's inline buffer: a look-up that built a
  // std::string key would have to allocate.
  const std::string host = "a-served-host-with-a-long-name.example";
  const std::string service = "conference.a-served-host-with-a-long-name.example";
  const std::string neither = "nothing-here.a-served-host-with-a-long-name.example";
  TestServer server(1, {}, {}, "[" + host + "]");
  ModuleTables tables;
  tables.services.emplace(service, ServiceEntry{nullptr, &muc_route, host, "Rooms"});
  std::string_view h = host, s = service, n = neither;

  allocations = 0;
  counting_allocations = true;
  bool host_found = server.ctx->is_local_host(h);
  bool service_is_host = server.ctx->is_local_host(s);
  const ServiceEntry* service_found = tables.service_for(s);
  const ServiceEntry* none = tables.service_for(n);
  const ServiceEntry* host_is_service = tables.service_for(h);
  counting_allocations = false;
  CHECK(allocations == 0);
  CHECK(host_found);
  CHECK_FALSE(service_is_host);
  CHECK(service_found != nullptr);
  CHECK(none == nullptr);
  CHECK(host_is_service == nullptr);

  // The counter sees an allocation when there is one (this test can fail).
  allocations = 0;
  counting_allocations = true;
  std::string copy(h);
  asm volatile("" : : "r"(copy.data()) : "memory");
  counting_allocations = false;
  CHECK(allocations >= 1);
}

TEST_CASE("route table: what a module sends from off the loops is routed on a loop") {
  // Module code may run off the worker loops (start() at load time, a thread
  // of its own). The router, a loop's sessions and its route counters are
  // touched only by their loop: such a send must hop onto one, as route()
  // does, not run the router on the caller's thread as if it were loop 0.
  Services services;
  std::unique_ptr<parley_module> module;
  TestServer server(2, {"alice"});
  module = fake_module(*server.ctx, &services);
  auto tables = std::make_shared<ModuleTables>();
  tables->hooks[PARLEY_EVENT_STANZA_OUT]["localhost"].push_back(HookEntry{0, module.get(), &note_out_loop});
  for (auto& loop : server.ctx->loops) loop->modules = tables;
  server.start();
  Client alice(server.ports[0]);
  REQUIRE(log_in(alice, "alice", "phone"));
  SessionId id = server.session_of("alice@localhost", "phone");
  REQUIRE(loop_of(id) == 0);

  auto* message = new xml::Element("message", "jabber:client");  // the host takes it
  message->set_attr("from", "localhost");
  message->set_attr("to", "alice@localhost/phone");
  message->add_child("body", "jabber:client").add_text("from-off-loop");
  REQUIRE(host_api()->send_to_session(module.get(), id, reinterpret_cast<parley_element*>(message)) == 1);
  CHECK(alice.read_until("from-off-loop"));
  CHECK(out_filter_loop.load() == 0);  // written from the session's loop

  out_filter_loop = -2;
  xml::Element request("iq", "jabber:client");
  request.set_attr("from", "alice@localhost/phone");
  request.set_attr("to", "localhost");
  request.set_attr("type", "get");
  request.set_attr("id", "q9");
  request.add_child("query", "urn:test:nothing");
  host_api()->bounce(module.get(), reinterpret_cast<const parley_element*>(&request), to_pstr("item-not-found"),
                     to_pstr(""));
  CHECK(alice.read_until("item-not-found"));
  CHECK(out_filter_loop.load() == 0);
}
