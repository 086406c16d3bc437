// The write-back queue and the per-user bookkeeping of mod_offline.
#include <doctest/doctest.h>

#include "offline_queue.hpp"

using namespace parley::offline;

namespace {

HeldMessage msg(int64_t at, std::string body) { return HeldMessage{at, "stamp", std::move(body)}; }

std::vector<std::string> bodies(const std::vector<HeldMessage>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.xml);
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("admit holds messages, asks the count once, arms one timer") {
  OfflineQueue q(10, 1000, 1 << 20);
  auto a = q.admit("juliet", msg(0, "m1"));
  CHECK(a.accepted);
  CHECK(a.ask_count);
  CHECK(a.arm_timer);
  CHECK_FALSE(a.over_cap);
  auto b = q.admit("juliet", msg(1, "m2"));
  CHECK(b.accepted);
  CHECK_FALSE(b.ask_count);
  CHECK_FALSE(b.arm_timer);
  auto c = q.admit("romeo", msg(2, "r1"));
  CHECK(c.ask_count);
  CHECK_FALSE(c.arm_timer);
  CHECK(q.held_messages() == 3);
  CHECK(q.held_bytes() > 0);
}

TEST_CASE("the quota counts stored, flushing and held messages") {
  OfflineQueue q(3, 1000, 1 << 20);
  REQUIRE(q.admit("juliet", msg(0, "m1")).accepted);
  q.count_result("juliet", 1);  // one row on disk already
  REQUIRE(q.admit("juliet", msg(1, "m2")).accepted);
  CHECK_FALSE(q.admit("juliet", msg(2, "m3")).accepted);  // 1 stored + 2 held
  // Flushing rows still count until they are committed, and after.
  auto parts = q.take_all();
  REQUIRE(parts.size() == 1);
  CHECK_FALSE(q.admit("juliet", msg(3, "m4")).accepted);
  q.flush_done(std::move(parts[0]), true);
  CHECK(q.known_disk_count("juliet") == 3);
  CHECK_FALSE(q.admit("juliet", msg(4, "m5")).accepted);
  // Delivery deletes them.
  auto d = q.begin_delivery("juliet", false);
  CHECK(d.need_disk);
  bool counted = q.write_issued("juliet");
  CHECK(counted);
  CHECK_FALSE(q.end_delivery("juliet"));
  q.write_done("juliet", -3, counted);
  CHECK(q.admit("juliet", msg(5, "m6")).accepted);
}

TEST_CASE("writes issued before the count query are not counted twice") {
  OfflineQueue q(100, 1000, 1 << 20);
  // A delete issued before any count was asked: the later count includes it.
  bool before = q.write_issued("juliet");
  CHECK_FALSE(before);
  REQUIRE(q.admit("juliet", msg(0, "m1")).ask_count);
  auto parts = q.take_all();
  REQUIRE(parts.size() == 1);
  CHECK(parts[0].counted);
  // The flush commits before the count's answer arrives: pending.
  q.flush_done(std::move(parts[0]), true);
  q.write_done("juliet", -5, before);  // ignored
  q.count_result("juliet", 7);         // the rows before the flush
  CHECK(q.known_disk_count("juliet") == 8);
}

TEST_CASE("take_expired takes each user's oldest messages only, in order") {
  OfflineQueue q(100, 1000, 1 << 20);
  q.admit("juliet", msg(0, "j1"));
  q.admit("juliet", msg(500, "j2"));
  q.admit("juliet", msg(1500, "j3"));
  q.admit("romeo", msg(100, "r1"));
  CHECK(q.take_expired(1000).size() == 1);  // j1 only
  q.admit("romeo", msg(150, "r2"));
  auto parts = q.take_expired(1100);
  REQUIRE(parts.size() == 1);  // r1; r2 not yet
  CHECK(parts[0].user == "romeo");
  CHECK(bodies(parts[0].messages) == V{"r1"});
  auto later = q.take_expired(1600);
  REQUIRE(later.size() == 2);
  for (auto& p : later) {
    if (p.user == "juliet") CHECK(bodies(p.messages) == V{"j2"});
    else CHECK(bodies(p.messages) == V{"r2"});
  }
  CHECK(q.held_messages() == 1);
}

TEST_CASE("a failed flush puts the messages back in front") {
  OfflineQueue q(100, 0, 1 << 20);
  q.admit("juliet", msg(0, "j1"));
  q.admit("juliet", msg(1, "j2"));
  auto parts = q.take_all();
  q.admit("juliet", msg(2, "j3"));
  CHECK(q.held_messages() == 1);
  q.flush_done(std::move(parts[0]), false);
  CHECK(q.held_messages() == 3);
  q.count_result("juliet", 0);
  auto d = q.begin_delivery("juliet", false);
  CHECK_FALSE(d.need_disk);
  CHECK(bodies(d.memory) == V{"j1", "j2", "j3"});
}

TEST_CASE("delivery from memory needs no disk once the count is known to be zero") {
  OfflineQueue q(100, 60000, 1 << 20);
  q.admit("juliet", msg(0, "j1"));
  q.admit("juliet", msg(1, "j2"));
  SUBCASE("count known") {
    q.count_result("juliet", 0);
    auto d = q.begin_delivery("juliet", false);
    CHECK_FALSE(d.need_disk);
    CHECK_FALSE(d.busy);
    CHECK(bodies(d.memory) == V{"j1", "j2"});
    CHECK(q.held_bytes() == 0);
    CHECK(q.held_messages() == 0);
    CHECK(q.users() == 0);  // forgotten: nothing left to remember
  }
  SUBCASE("count on its way: read the disk too") {
    auto d = q.begin_delivery("juliet", false);
    CHECK(d.need_disk);
    CHECK(bodies(d.memory) == V{"j1", "j2"});
  }
  SUBCASE("immediate durability always reads the disk") {
    q.count_result("juliet", 0);
    CHECK(q.begin_delivery("juliet", true).need_disk);
  }
}

TEST_CASE("a second delivery while one is in progress waits and runs again") {
  OfflineQueue q(100, 60000, 1 << 20);
  auto d = q.begin_delivery("juliet", true);
  REQUIRE(d.need_disk);
  auto e = q.begin_delivery("juliet", true);
  CHECK(e.busy);
  CHECK(q.end_delivery("juliet"));
  auto f = q.begin_delivery("juliet", true);
  CHECK_FALSE(f.busy);
  CHECK_FALSE(q.end_delivery("juliet"));
}

TEST_CASE("undelivered messages go back in front, in order") {
  OfflineQueue q(100, 60000, 1 << 20);
  q.admit("juliet", msg(0, "j3"));
  q.requeue_front("juliet", {msg(0, "j1"), msg(0, "j2")});
  q.count_result("juliet", 0);
  CHECK(bodies(q.begin_delivery("juliet", false).memory) == V{"j1", "j2", "j3"});
}

TEST_CASE("the memory cap asks for a flush of everything") {
  OfflineQueue q(100, 60000, 3 * (sizeof(HeldMessage) + 10));
  CHECK_FALSE(q.admit("a", msg(0, "0123456789")).over_cap);
  CHECK_FALSE(q.admit("b", msg(0, "012345")).over_cap);
  CHECK(q.admit("c", msg(0, "0123456789012345678901234567890123456789")).over_cap);
  auto parts = q.take_all();
  CHECK(parts.size() == 3);
  CHECK(q.held_bytes() == 0);
}

TEST_CASE("the flush timer is armed once and re-armed for what is left") {
  OfflineQueue q(100, 1000, 1 << 20);
  CHECK(q.admit("juliet", msg(0, "j1")).arm_timer);
  CHECK_FALSE(q.arm_if_idle());  // already armed
  q.admit("juliet", msg(700, "j2"));
  q.timer_fired();
  auto parts = q.take_expired(1000);
  CHECK(parts.size() == 1);
  CHECK(q.arm_if_idle() == 1700);
  q.timer_fired();
  q.take_expired(1700);
  CHECK_FALSE(q.arm_if_idle());
  CHECK(q.admit("juliet", msg(2000, "j3")).arm_timer);
}

TEST_CASE("account removal drops what is held") {
  OfflineQueue q(100, 60000, 1 << 20);
  q.admit("juliet", msg(0, "j1"));
  q.admit("juliet", msg(1, "j2"));
  q.admit("romeo", msg(2, "r1"));
  CHECK(q.remove_user("juliet") == 2);
  CHECK(q.held_messages() == 1);
  CHECK(q.remove_user("nobody") == 0);
}

TEST_CASE("paced delivery: one at a time, the held messages a bounded batch at a time") {
  OfflineQueue q(100, 60000, 1 << 20);
  for (int i = 0; i < 5; ++i) q.admit("juliet", msg(i, "j" + std::to_string(i) + std::string(400, 'x')));
  CHECK(q.disk_may_have_rows("juliet"));  // the count is on its way
  q.count_result("juliet", 0);
  CHECK_FALSE(q.disk_may_have_rows("juliet"));
  REQUIRE(q.begin_paced("juliet"));
  CHECK_FALSE(q.begin_paced("juliet"));  // busy: runs again at the end
  std::size_t before = q.held_bytes();
  auto batch = q.take_front("juliet", 3, 1000);  // two fit in 1000 bytes
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].xml.substr(0, 2) == "j0");
  CHECK(batch[1].xml.substr(0, 2) == "j1");
  CHECK(q.held_messages() == 3);
  CHECK(q.held_bytes() < before);
  // Not written: back in front, in order.
  q.requeue_front("juliet", {std::move(batch[1])});
  auto next = q.take_front("juliet", 1, 10);  // one at least, whatever its size
  REQUIRE(next.size() == 1);
  CHECK(next[0].xml.substr(0, 2) == "j1");
  CHECK(q.take_front("juliet", 100, 1 << 20).size() == 3);
  CHECK(q.take_front("juliet", 100, 1 << 20).empty());
  CHECK(q.end_delivery("juliet"));  // someone asked meanwhile
  CHECK(q.begin_paced("juliet"));
  CHECK_FALSE(q.end_delivery("juliet"));
}

TEST_CASE("paced delivery: a flush in flight or an unknown user means the disk may have rows") {
  OfflineQueue q(100, 60000, 1 << 20);
  CHECK(q.disk_may_have_rows("nobody"));
  q.admit("juliet", msg(0, "j1"));
  q.count_result("juliet", 0);
  auto parts = q.take_all();
  CHECK(q.disk_may_have_rows("juliet"));  // flushing
  q.flush_done(std::move(parts[0]), true);
  CHECK(q.disk_may_have_rows("juliet"));  // stored now
}

namespace {
HeldMessage from(const std::string& sender, std::string body) {
  HeldMessage m{0, "stamp", std::move(body)};
  m.sender = sender;
  return m;
}
}  // namespace

TEST_CASE("a sender's share: held, flushing and stored rows count; the others still get in") {
  OfflineQueue q(10, 60000, 1 << 20, 3);
  CHECK(q.admit("juliet", from("romeo@v", "r1")).accepted);
  q.sender_counts("juliet", {{"romeo@v", 1}, {"nurse@v", 1}});  // two stored before
  q.count_result("juliet", 2);
  CHECK(q.admit("juliet", from("romeo@v", "r2")).accepted);
  auto refused = q.admit("juliet", from("romeo@v", "r3"));
  CHECK_FALSE(refused.accepted);
  CHECK(refused.sender_share);
  CHECK(q.admit("juliet", from("nurse@v", "n1")).accepted);
  // Flushing still counts; a failed flush gives the rows back to `held`.
  auto parts = q.take_all();
  CHECK(q.admit("juliet", from("romeo@v", "r3")).sender_share);
  q.flush_done(std::move(parts[0]), false);
  CHECK(q.admit("juliet", from("romeo@v", "r3")).sender_share);
  // A delivery removed stored rows: the per-sender counts start again from what is held.
  bool counted = q.write_issued("juliet");
  q.write_done("juliet", -2, counted);
  CHECK(q.admit("juliet", from("romeo@v", "r3")).accepted);
  auto full = q.admit("juliet", from("romeo@v", "r4"));
  CHECK_FALSE(full.accepted);
  CHECK(full.sender_share);
}
