// parley::Host over a fake host table: options, stanzas, timers, version checks.
#include <doctest/doctest.h>

#include <stdexcept>

#include "fake_host.hpp"
#include "parley/module.hpp"

using namespace std::chrono_literals;

TEST_CASE("options: set, unset, and of another type") {
  parley_module m;
  m.options["greeting"] = std::string("hi");
  m.options["rounds"] = int64_t{3};
  m.options["loud"] = true;
  m.options["names"] = std::vector<std::string>{"a", "b"};
  m.options["empty_list"] = std::vector<std::string>{};
  parley::Host host(&m, fake::api());

  CHECK(host.option_string("greeting") == "hi");
  CHECK(host.option_int("rounds") == 3);
  CHECK(host.option_bool("loud") == true);
  CHECK(host.option_string_list("names") == std::vector<std::string>{"a", "b"});
  CHECK(host.option_string_list("empty_list") == std::vector<std::string>{});

  CHECK_FALSE(host.option_string("missing").has_value());
  CHECK(host.option_string("missing").value_or("default") == "default");
  CHECK_FALSE(host.option_int("greeting").has_value());  // wrong type: -1 from the host
  CHECK_FALSE(host.option_bool("rounds").has_value());
  CHECK_FALSE(host.option_string_list("greeting").has_value());
  CHECK(host.module_host() == "example.org");
}

TEST_CASE("log carries level and text") {
  parley_module m;
  parley::Host host(&m, fake::api());
  host.warn("careful");
  host.log(PARLEY_LOG_DEBUG, "details");
  REQUIRE(m.logs.size() == 2);
  CHECK(m.logs[0] == std::pair<int, std::string>{PARLEY_LOG_WARN, "careful"});
  CHECK(m.logs[1].first == PARLEY_LOG_DEBUG);
}

TEST_CASE("route, send_to_session: the host takes the stanza; bounce only borrows it") {
  parley_module m;
  m.sessions.insert(7);
  parley::Host host(&m, fake::api());
  long before = fake::live_elements();

  parley::Element msg = host.element("message", "jabber:client");
  msg.set_attr("to", "bob@example.org");
  host.route(std::move(msg));
  CHECK_FALSE(msg);
  CHECK(m.routed == std::vector<std::string>{"<message xmlns='jabber:client' to='bob@example.org'/>"});
  CHECK(fake::live_elements() == before);

  CHECK(host.send_to_session(7, host.element("presence")));
  CHECK_FALSE(host.send_to_session(8, host.element("presence")));  // gone: freed anyway
  CHECK(m.sent.size() == 1);
  CHECK(fake::live_elements() == before);

  parley::Element iq = host.element("iq");
  host.bounce(iq, "service-unavailable", "no");
  REQUIRE(m.bounces.size() == 1);
  CHECK(m.bounces[0].condition == "service-unavailable");
  CHECK(m.bounces[0].text == "no");
  CHECK(iq);  // still ours

  CHECK_THROWS_AS(host.route(parley::Element()), std::logic_error);
}

TEST_CASE("counters and server features") {
  parley_module m;
  m.features = {"urn:xmpp:ping", "jabber:iq:version"};
  parley::Host host(&m, fake::api());
  host.counter_add("hits");
  host.counter_add("hits", 4);
  CHECK(m.counters["hits"] == 5);
  CHECK(host.server_features() == m.features);
}

TEST_CASE("a detached Host refuses calls with an exception, not a crash") {
  parley::Host host;
  CHECK_THROWS_AS(host.element("x"), std::logic_error);
  host.info("dropped");  // logging on a detached host is a no-op
}

TEST_CASE("supports: entries beyond the host's table size are absent") {
  parley_module m;
  parley::Host full(&m, fake::api());
  CHECK(full.supports(PARLEY_HOST_ENTRY_END(server_features)));
  CHECK_FALSE(full.supports(sizeof(parley_host_api) + 8));  // an entry a newer minor would add

  parley_host_api older = fake::api_with_size(offsetof(parley_host_api, counter_add));
  parley::Host old_host(&m, &older);
  CHECK(old_host.supports(PARLEY_HOST_ENTRY_END(timer_cancel)));
  CHECK_FALSE(old_host.supports(PARLEY_HOST_ENTRY_END(counter_add)));
  CHECK(PARLEY_HOST_HAS(&older, timer_cancel));
  CHECK_FALSE(PARLEY_HOST_HAS(&older, server_features));
}

TEST_CASE("a one-shot timer runs once and its function is then freed") {
  parley_module m;
  int runs = 0;
  auto token = std::make_shared<int>(0);
  {
    parley::Host host(&m, fake::api());
    uint64_t id = host.start_timer(100ms, [&runs, token] { ++runs; });
    CHECK(id != 0);
    CHECK(m.timers.at(id).delay_ms == 100);
    CHECK(m.timers.at(id).repeat_ms == 0);
    CHECK(host.pending_timers() == 1);
    CHECK(token.use_count() == 2);
    m.fire(id);
    CHECK(runs == 1);
    CHECK(host.pending_timers() == 0);
    CHECK(token.use_count() == 1);  // the lambda is gone
    CHECK_FALSE(host.cancel_timer(id));
  }
  CHECK(m.cancelled.empty());
}

TEST_CASE("a repeating timer runs until cancelled, also from inside its own callback") {
  parley_module m;
  parley::Host host(&m, fake::api());
  int runs = 0;
  uint64_t id = host.start_repeating_timer(10ms, 20ms, [&](uint64_t self) {
    if (++runs == 3) CHECK(host.cancel_timer(self));
  });
  CHECK(m.timers.at(id).repeat_ms == 20);
  m.fire(id);
  m.fire(id);
  CHECK(host.pending_timers() == 1);
  m.fire(id);
  CHECK(runs == 3);
  CHECK(host.pending_timers() == 0);
  CHECK(m.timers.empty());
  m.fire(id);  // the host forgot it: nothing happens
  CHECK(runs == 3);

  CHECK_THROWS_AS(host.start_repeating_timer(0ms, 0ms, [] {}), std::logic_error);
}

TEST_CASE("cancel_timer from outside; a throwing timer is logged; destruction cancels the rest") {
  parley_module m;
  {
    parley::Host host(&m, fake::api());
    uint64_t a = host.start_timer(5ms, [] { FAIL("cancelled timers never run"); });
    CHECK(host.cancel_timer(a));
    CHECK_FALSE(host.cancel_timer(a));
    m.fire(a);

    uint64_t b = host.start_timer(5ms, [] { throw std::runtime_error("tick failed"); });
    m.fire(b);
    CHECK(m.logged("tick failed"));
    CHECK(host.pending_timers() == 0);

    uint64_t c = host.start_repeating_timer(1ms, 1ms, [] {});
    uint64_t d = host.start_timer(1000ms, [] {});
    CHECK(host.pending_timers() == 2);
    m.cancelled.clear();
    (void)c;
    (void)d;
  }
  CHECK(m.cancelled.size() == 2);
  CHECK(m.timers.empty());
}

TEST_CASE("storage: parameters go over as parley_values, rows come back, errors are values") {
  parley_module m;
  parley::Host host(&m, fake::api());
  std::vector<std::string> seen;
  std::string blob("\0\1\2", 3);
  host.query("SELECT body FROM mod_x_items WHERE user = ? AND n > ? AND z IS ?", {"alice", 3, nullptr},
             [&](parley::Result<parley::Rows, std::string> r) {
               REQUIRE(r.has_value());
               for (size_t i = 0; i < r->size(); ++i) seen.emplace_back(*r->at(i, 0).bytes());
               CHECK(r->columns() == 1);
               CHECK(r->at(0, 1).is_null());   // out of range: NULL
               CHECK(r->at(9, 0).is_null());
               CHECK_FALSE(r->at(0, 0).integer().has_value());
             });
  host.execute("INSERT INTO mod_x_items(b) VALUES(?)", {parley::Value::blob(blob)},
               [&](parley::Result<parley::Rows, std::string> r) {
                 REQUIRE_FALSE(r.has_value());
                 CHECK(r.error() == "disk full");
               });
  REQUIRE(m.queries.size() == 2);
  CHECK_FALSE(m.queries[0].write);
  CHECK(m.queries[1].write);
  CHECK(m.queries[0].param_types == std::vector<uint32_t>{PARLEY_VALUE_TEXT, PARLEY_VALUE_INT, PARLEY_VALUE_NULL});
  CHECK(std::get<std::string>(m.queries[0].params[0]) == "alice");
  CHECK(std::get<int64_t>(m.queries[0].params[1]) == 3);
  CHECK(m.queries[1].param_types == std::vector<uint32_t>{PARLEY_VALUE_BLOB});
  CHECK(std::get<std::string>(m.queries[1].params[0]) == blob);
  CHECK(host.pending_storage_calls() == 2);

  parley_rows rows;
  rows.columns = 1;
  rows.rows = {{parley_value{PARLEY_VALUE_TEXT, 0, {"one", 3}}}, {parley_value{PARLEY_VALUE_TEXT, 0, {"two", 3}}}};
  m.complete(0, rows);
  CHECK(seen == std::vector<std::string>{"one", "two"});
  m.complete(0, rows);  // a second completion of the same call finds nothing
  CHECK(seen.size() == 2);
  m.complete(1, parley_rows{}, "disk full");
  CHECK(host.pending_storage_calls() == 0);
}

TEST_CASE("storage: a throwing completion is logged; a Host that is gone ignores completions") {
  parley_module m;
  {
    parley::Host host(&m, fake::api());
    host.execute("DELETE FROM mod_x_items", {}, [](auto) { throw std::runtime_error("completion exploded"); });
    m.complete(0, parley_rows{});
    CHECK(m.logged("storage callback threw: completion exploded"));
    host.query("SELECT 1", {}, [](auto) { FAIL("the Host is gone"); });
  }
  m.complete(1, parley_rows{});
}

TEST_CASE("storage on a host without it is an exception, not a call through a missing entry") {
  parley_module m;
  parley_host_api older = fake::api_with_size(PARLEY_HOST_ENTRY_END(server_features));
  parley::Host host(&m, &older);
  CHECK_THROWS_AS(host.query("SELECT 1", {}, [](auto) {}), std::runtime_error);
  CHECK(m.queries.empty());
}

TEST_CASE("send_tracked: the completion runs once with the outcome; a refused send never calls it") {
  parley_module m;
  m.sessions.insert(7);
  parley::Host host(&m, fake::api());
  long before = fake::live_elements();
  std::vector<std::pair<int, bool>> done;
  CHECK(host.supports_1_2());
  CHECK(host.send_tracked(7, host.element("message"), [&](bool written) { done.emplace_back(1, written); }));
  CHECK(host.send_tracked(7, host.element("message"), [&](bool written) { done.emplace_back(2, written); }));
  CHECK_FALSE(host.send_tracked(8, host.element("message"), [&](bool) { FAIL("not accepted: never called"); }));
  CHECK(fake::live_elements() == before);  // the host took every stanza, the refused one too
  CHECK(host.pending_sends() == 2);
  CHECK(host.pending_storage_calls() == 0);  // sends are not storage calls
  REQUIRE(m.tracked.size() == 2);
  CHECK(m.tracked[0].stanza == "<message/>");
  m.sent_done(0, true);
  m.sent_done(1, false);
  CHECK(done == std::vector<std::pair<int, bool>>{{1, true}, {2, false}});
  CHECK(host.pending_sends() == 0);
  m.sent_done(1, true);  // a second completion for the same key finds nothing
  CHECK(done.size() == 2);
}

TEST_CASE("send_tracked: a throwing completion is logged; a Host that is gone ignores completions") {
  parley_module m;
  m.sessions.insert(7);
  {
    parley::Host host(&m, fake::api());
    host.send_tracked(7, host.element("message"), [](bool) { throw std::runtime_error("sent exploded"); });
    m.sent_done(0, true);
    CHECK(m.logged("send completion threw: sent exploded"));
    host.send_tracked(7, host.element("message"), [](bool) { FAIL("the Host is gone"); });
  }
  m.sent_done(1, true);
}

TEST_CASE("send_tracked on a 1.1 host is an exception, not a call through a missing entry") {
  parley_module m;
  m.sessions.insert(7);
  parley_host_api older = fake::api_with_size(PARLEY_HOST_ENTRY_END(offer_stream_features));
  parley::Host host(&m, &older);
  CHECK_FALSE(host.supports_1_2());
  CHECK_THROWS_AS(host.send_tracked(7, host.element("message"), [](bool) {}), std::logic_error);
  CHECK(m.tracked.empty());
}
