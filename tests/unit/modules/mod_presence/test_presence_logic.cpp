// mod_presence's pure logic: who gets a broadcast, how a probe is answered,
// the directed-presence set, the per-session sequencer, the state bytes.
#include <doctest/doctest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "presence_logic.hpp"

using namespace mod_presence;

namespace {

std::vector<RosterRow> roster() {
  return {{"none@example.com", "none"},
          {"to@example.com", "to"},
          {"from@example.com", "from"},
          {"both@example.net", "both"}};
}

}  // namespace

TEST_CASE("subscription states (RFC 6121 2.1.2.5)") {
  CHECK(has_from("from"));
  CHECK(has_from("both"));
  CHECK_FALSE(has_from("to"));
  CHECK_FALSE(has_from("none"));
  CHECK_FALSE(has_from(""));
  CHECK(has_to("to"));
  CHECK(has_to("both"));
  CHECK_FALSE(has_to("from"));
  CHECK_FALSE(has_to("none"));
}

TEST_CASE("broadcast goes to from/both, probes to to/both") {
  CHECK(subscribers(roster()) == std::vector<std::string>{"from@example.com", "both@example.net"});
  CHECK(probe_targets(roster()) == std::vector<std::string>{"to@example.com", "both@example.net"});
  CHECK(subscribers({}).empty());
}

TEST_CASE("directed set: available adds, unavailable removes") {
  DirectedSet d;
  CHECK(d.empty());
  d.add("bot@example.org/x");
  d.add("room@conference.example.org/nick");
  d.add("bot@example.org/x");
  CHECK(d.size() == 2);
  CHECK(d.contains("bot@example.org/x"));
  d.remove("bot@example.org/x");
  CHECK_FALSE(d.contains("bot@example.org/x"));
  d.remove("nobody@example.org");
  auto taken = d.take();
  CHECK(taken.size() == 1);
  CHECK(d.empty());
}

TEST_CASE("directed set: one pointer per session until a recipient comes, and again once it empties") {
  // Issue 18 (idle memory): every session's slot holds one; an empty std::set is 48 bytes.
  static_assert(sizeof(DirectedSet) == sizeof(void*));
  DirectedSet d;
  CHECK(d.jids().empty());
  CHECK_FALSE(d.contains("a@example.org"));
  d.remove("a@example.org");  // nothing to remove: stays empty
  CHECK(d.empty());
  d.add("a@example.org");
  d.add("b@example.org");
  d.remove("a@example.org");
  d.remove("b@example.org");
  CHECK(d.empty());
  CHECK(d.size() == 0);
  CHECK(d.take().empty());
  d.add("c@example.org");
  CHECK(d.jids() == std::set<std::string>{"c@example.org"});
  CHECK(d.take() == std::set<std::string>{"c@example.org"});
  CHECK(d.empty());
  CHECK(d.jids().empty());
}

TEST_CASE("directed set: bounded by a cap, a known recipient always fits") {
  // Issue 9 item 4: the set grew without bound.
  DirectedSet d;
  CHECK(d.add_capped("a@example.org", 2));
  CHECK(d.add_capped("b@example.org", 2));
  CHECK_FALSE(d.add_capped("c@example.org", 2));
  CHECK_FALSE(d.contains("c@example.org"));
  CHECK(d.add_capped("a@example.org", 2));  // already there: still fine
  CHECK(d.size() == 2);
  d.remove("a@example.org");  // an unavailable frees its place
  CHECK(d.add_capped("c@example.org", 2));
  CHECK(d.size() == 2);
}

TEST_CASE("unavailable goes to subscribers and to directed recipients without a subscription") {
  std::set<std::string> directed{"stranger@example.org", "from@example.com/res", "to@example.com",
                                 "room@muc.example.org/me"};
  auto targets = unavailable_targets(roster(), directed);
  // Subscribers first; a directed recipient whose bare JID is a subscriber got
  // the broadcast; a contact with 'to' only is not a subscriber.
  CHECK(targets == std::vector<std::string>{"from@example.com", "both@example.net", "room@muc.example.org/me",
                                            "stranger@example.org", "to@example.com"});
  CHECK(unavailable_targets({}, {}).empty());
}

TEST_CASE("probe answers (RFC 6121 4.3.2)") {
  CHECK(answer_probe(std::nullopt, false, 2) == ProbeAnswer::unsubscribed);
  CHECK(answer_probe(std::string("none"), false, 1) == ProbeAnswer::unsubscribed);
  CHECK(answer_probe(std::string("to"), false, 1) == ProbeAnswer::unsubscribed);
  CHECK(answer_probe(std::string("from"), false, 0) == ProbeAnswer::unavailable);
  CHECK(answer_probe(std::string("both"), false, 0) == ProbeAnswer::unavailable);
  CHECK(answer_probe(std::string("from"), false, 2) == ProbeAnswer::available);
  CHECK(answer_probe(std::string("both"), false, 1) == ProbeAnswer::available);
  CHECK(answer_probe(std::nullopt, true, 1) == ProbeAnswer::available);
  CHECK(answer_probe(std::nullopt, true, 0) == ProbeAnswer::unavailable);
}

TEST_CASE("XEP-0082 stamps") {
  CHECK(xmpp_stamp(0) == "1970-01-01T00:00:00Z");
  CHECK(xmpp_stamp(1031701267) == "2002-09-10T23:41:07Z");  // XEP-0203's example
}

TEST_CASE("sequencer: one job per key at a time, in order") {
  Sequencer seq;
  std::vector<std::string> log;
  std::vector<Sequencer::Done> pending;
  auto job = [&](std::string name) {
    return [&, name](Sequencer::Done done) {
      log.push_back(name);
      pending.push_back(std::move(done));
    };
  };
  seq.submit(1, job("a1"));
  seq.submit(1, job("a2"));
  seq.submit(2, job("b1"));
  seq.submit(1, job("a3"));
  CHECK(log == std::vector<std::string>{"a1", "b1"});
  CHECK(seq.active_keys() == 2);
  auto a1 = pending[0];
  a1();
  a1();  // a second call starts nothing
  CHECK(log == std::vector<std::string>{"a1", "b1", "a2"});
  pending[1]();  // b1 done
  CHECK(seq.active_keys() == 1);
  pending[2]();  // a2 done
  CHECK(log == std::vector<std::string>{"a1", "b1", "a2", "a3"});
  pending[3]();
  CHECK(seq.active_keys() == 0);
}

TEST_CASE("sequencer: a job that finishes at once lets the next run at once") {
  Sequencer seq;
  int runs = 0;
  for (int i = 0; i < 100; ++i) seq.submit(7, [&](Sequencer::Done done) { ++runs; done(); });
  CHECK(runs == 100);
  CHECK(seq.active_keys() == 0);
}

TEST_CASE("state fields round-trip any bytes") {
  std::vector<std::string> fields{"mod_presence/1", "", "12:34", std::string("a\0b", 3), "<presence/>"};
  auto bytes = encode_fields(fields);
  auto back = decode_fields(bytes);
  REQUIRE(back);
  CHECK(*back == fields);
  CHECK(decode_fields("")->empty());
  CHECK_FALSE(decode_fields("5:abc"));
  CHECK_FALSE(decode_fields("x:abc"));
  CHECK_FALSE(decode_fields(":abc"));
  CHECK_FALSE(decode_fields("3abc"));
}

TEST_CASE("presence types (RFC 6121 4.7.1)") {
  for (const char* t : {"", "unavailable", "probe", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "error"})
    CHECK(known_presence_type(t));
  CHECK_FALSE(known_presence_type("available"));
  CHECK_FALSE(known_presence_type("invisible"));
  CHECK_FALSE(known_presence_type("Unavailable"));
}
