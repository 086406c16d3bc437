#include <doctest/doctest.h>

#include "sm_logic.hpp"

using namespace parley::sm;

TEST_CASE("h wraps to zero after 2^32 - 1") {
  CHECK(handled_since(7, 7) == 0);
  CHECK(handled_since(10, 7) == 3);
  // The host's count wraps too: 3 stanzas across its wrap.
  CHECK(handled_since(1, UINT32_MAX - 1) == 3);
  CHECK(handled_since(UINT32_MAX, 0) == UINT32_MAX);
  CHECK(handled_since(0, 0) == 0);
  // The out sequence is a uint32_t: incrementing wraps by definition.
  uint32_t out = UINT32_MAX;
  ++out;
  CHECK(out == 0);
}

TEST_CASE("an ack counts what it newly acknowledges, across the wrap") {
  CHECK(newly_acked(0, 0, 0) == std::optional<uint32_t>(0));
  CHECK(newly_acked(0, 3, 5) == std::optional<uint32_t>(3));
  CHECK(newly_acked(3, 3, 2) == std::optional<uint32_t>(0));  // the same ack again
  CHECK(newly_acked(10, 15, 5) == std::optional<uint32_t>(5));
  // Across the wrap: 4 stanzas sent after UINT32_MAX - 1 was acknowledged.
  CHECK(newly_acked(UINT32_MAX - 1, 2, 4) == std::optional<uint32_t>(4));
  CHECK(newly_acked(UINT32_MAX - 1, UINT32_MAX, 4) == std::optional<uint32_t>(1));
  CHECK(newly_acked(UINT32_MAX, 0, 1) == std::optional<uint32_t>(1));
}

TEST_CASE("an ack of more than was sent is refused (handled-count-too-high)") {
  CHECK_FALSE(newly_acked(0, 1, 0));
  CHECK_FALSE(newly_acked(10, 16, 5));
  CHECK_FALSE(newly_acked(UINT32_MAX - 1, 3, 4));
  // An h "behind" the last ack is a huge count modulo 2^32: refused too.
  CHECK_FALSE(newly_acked(10, 9, 5));
}

TEST_CASE("the unacknowledged queue keeps order and its bytes") {
  UnackedQueue q;
  q.push(parley::OutBytes("<a/>"), 1);
  q.push(parley::OutBytes("<bb/>"), 2);
  q.push(parley::OutBytes("<ccc/>"), 3);
  CHECK(q.size() == 3);
  CHECK(q.bytes() == 4 + 5 + 6);
  q.pop(1);
  CHECK(q.items().front().xml.str() == "<bb/>");
  CHECK(q.bytes() == 11);
  q.pop(10);  // more than there is: empty, never below zero
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
  q.push(parley::OutBytes("<d/>"), 4);
  auto taken = q.take();
  CHECK(taken.size() == 1);
  CHECK(q.empty());
  CHECK(q.bytes() == 0);
}

TEST_CASE("an empty unacknowledged queue holds no deque: before the first stanza and once all are acked") {
  // Issue 18 (idle memory): a libstdc++ std::deque allocates 576 bytes as soon as it
  // exists and keeps 512 of them when emptied; every idle session with stream
  // management had one. Now the queue is a pointer until a stanza waits for its ack.
  static_assert(sizeof(UnackedQueue) == 2 * sizeof(void*));
  UnackedQueue q;
  CHECK(q.empty());
  CHECK(q.size() == 0);
  CHECK(q.items().empty());
  q.pop(3);  // an ack with nothing unacknowledged
  CHECK(q.empty());
  CHECK(q.take().empty());
  q.push(parley::OutBytes("<a/>"), 1);
  q.push(parley::OutBytes("<b/>"), 2);
  q.pop(1);
  CHECK_FALSE(q.empty());
  CHECK(q.items().front().xml.str() == "<b/>");
  q.pop(1);
  CHECK(q.empty());
  CHECK(q.items().empty());
  q.push(parley::OutBytes("<c/>"), 3);
  CHECK(q.size() == 1);
  CHECK(q.bytes() == 4);
}

TEST_CASE("SM-IDs: session and token, anything else refused") {
  std::string token = random_token();
  CHECK(token.size() == 32);
  CHECK(token != random_token());
  auto id = parse_sm_id(make_sm_id(281474976710657ull, token));
  REQUIRE(id);
  CHECK(id->session == 281474976710657ull);
  CHECK(id->token == token);
  CHECK_FALSE(parse_sm_id(""));
  CHECK_FALSE(parse_sm_id("12"));
  CHECK_FALSE(parse_sm_id("12."));
  CHECK_FALSE(parse_sm_id("0." + token));
  CHECK_FALSE(parse_sm_id("x." + token));
  CHECK_FALSE(parse_sm_id("12." + token + "0"));
  CHECK_FALSE(parse_sm_id("12." + std::string(32, 'G')));
  CHECK_FALSE(parse_sm_id("99999999999999999999999." + token));
  CHECK(same_token(token, token));
  CHECK_FALSE(same_token(token, random_token()));
  CHECK_FALSE(same_token(token, token.substr(1)));
}

TEST_CASE("h parses as a 32-bit unsigned number only") {
  CHECK(parse_h("0") == std::optional<uint32_t>(0));
  CHECK(parse_h("4294967295") == std::optional<uint32_t>(UINT32_MAX));
  CHECK_FALSE(parse_h("4294967296"));
  CHECK_FALSE(parse_h("-1"));
  CHECK_FALSE(parse_h(""));
  CHECK_FALSE(parse_h("1x"));
  CHECK_FALSE(parse_h(" 1"));
}

TEST_CASE("<r/> answers: a bounded number per second") {
  AnswerRate rate;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += rate.allow(5000, 10) ? 1 : 0;
  CHECK(allowed == 10);
  CHECK(rate.window_end_ms() == 6000);
  CHECK_FALSE(rate.allow(5999, 10));
  CHECK(rate.allow(6000, 10));  // a new window
}

TEST_CASE("delay stamps are XEP-0082 UTC with milliseconds") {
  CHECK(delay_stamp(0) == "1970-01-01T00:00:00.000Z");
  CHECK(delay_stamp(1796518862345) == "2026-12-06T01:01:02.345Z");
}

TEST_CASE("the slot crosses a reload intact") {
  Saved s;
  s.resumable = true;
  s.token = random_token();
  s.bare = "alice@localhost";
  s.in_base = UINT32_MAX - 2;
  s.out = 1;
  s.acked = UINT32_MAX - 1;  // 3 unacked across the wrap
  s.resume_seconds = 300;
  s.queue.push_back(Unacked{parley::OutBytes("<message>a\nb</message>"), 10});
  s.queue.push_back(Unacked{parley::OutBytes(""), 11});
  s.queue.push_back(Unacked{parley::OutBytes("<iq type='get'/>"), 12});
  auto back = decode(encode(s));
  REQUIRE(back);
  CHECK(back->resumable);
  CHECK(back->token == s.token);
  CHECK(back->bare == s.bare);
  CHECK(back->in_base == UINT32_MAX - 2);
  CHECK(back->out == 1);
  CHECK(back->acked == UINT32_MAX - 1);
  CHECK(back->resume_seconds == 300);
  REQUIRE(back->queue.size() == 3);
  CHECK(back->queue[0].xml.str() == "<message>a\nb</message>");
  CHECK(back->queue[1].xml.empty());
  CHECK(back->queue[2].stamp_ms == 12);

  std::string bytes = encode(s);
  CHECK_FALSE(decode(bytes.substr(0, bytes.size() - 1)));  // truncated
  CHECK_FALSE(decode(bytes + "x"));                         // trailing bytes
  CHECK_FALSE(decode("sm2" + bytes.substr(3)));             // another format
  s.out = 2;                                                // a queue that is not what is unacked
  std::string wrong = encode(s);
  CHECK_FALSE(decode(wrong));
}

TEST_CASE("ended sessions: found by id, token and account, bounded in number and time") {
  EndedSessions ended(2, 1000);
  std::string t1 = random_token(), t2 = random_token(), t3 = random_token();
  ended.add(1, t1, "alice@localhost", 7, 0);
  CHECK(ended.find(1, t1, "alice@localhost", 10) == std::optional<uint32_t>(7));
  CHECK_FALSE(ended.find(1, t1, "bob@localhost", 10));  // another account: nothing
  CHECK_FALSE(ended.find(1, t2, "alice@localhost", 10));  // another token
  CHECK_FALSE(ended.find(2, t1, "alice@localhost", 10));
  ended.add(2, t2, "alice@localhost", 8, 20);
  ended.add(3, t3, "alice@localhost", 9, 30);  // over capacity: the oldest goes
  CHECK(ended.size() == 2);
  CHECK_FALSE(ended.find(1, t1, "alice@localhost", 40));
  CHECK(ended.find(3, t3, "alice@localhost", 40) == std::optional<uint32_t>(9));
  CHECK_FALSE(ended.find(2, t2, "alice@localhost", 1020));  // expired
  CHECK(ended.find(3, t3, "alice@localhost", 1020) == std::optional<uint32_t>(9));
}

namespace {

// A host handle in three pieces, as the host's shared bytes are (module.h
// out_bytes_parts): released through the table, counted here.
struct FakeBytes {
  std::string head, to, tail;
};
int released = 0;
size_t fake_parts(const parley_out_bytes* b, parley_str* parts, size_t max) {
  const auto* f = reinterpret_cast<const FakeBytes*>(b);
  const std::string* pieces[] = {&f->head, &f->to, &f->tail};
  for (size_t i = 0; i < 3 && i < max; ++i) parts[i] = parley_str{pieces[i]->data(), pieces[i]->size()};
  return 3;
}
void fake_release(parley_out_bytes* b) {
  ++released;
  delete reinterpret_cast<FakeBytes*>(b);
}
parley::OutBytes shared_bytes(const parley_host_api& api, std::string to) {
  auto* f = new FakeBytes{"<message", " to='" + to + "'", " type='groupchat'><body>x</body></message>"};
  return parley::OutBytes(&api, reinterpret_cast<parley_out_bytes*>(f));
}

}  // namespace

TEST_CASE("the queue keeps a host's shared bytes by reference, counts them as written and saves them as text") {
  parley_host_api api{};
  api.out_bytes_parts = &fake_parts;
  api.out_bytes_release = &fake_release;
  released = 0;
  {
    UnackedQueue q;
    q.push(shared_bytes(api, "a@x/1"), 1);
    q.push(parley::OutBytes("<r/>"), 2);
    q.push(shared_bytes(api, "a@x/1"), 3);
    const std::string written = "<message to='a@x/1' type='groupchat'><body>x</body></message>";
    CHECK(q.items().front().xml.shared());
    CHECK(q.items().front().xml.str() == written);
    CHECK(q.bytes() == 2 * written.size() + 4);
    Saved s;
    s.token = random_token();
    s.bare = "a@x";
    s.out = 3;  // three unacknowledged
    for (const Unacked& u : q.items()) s.queue.push_back(Unacked{parley::OutBytes(u.xml.str()), u.stamp_ms});
    auto back = decode(encode(s));
    REQUIRE(back);
    REQUIRE(back->queue.size() == 3);
    CHECK(back->queue[2].xml.str() == written);
    q.pop(1);
    CHECK(released == 1);  // acknowledged: let go at once
    auto taken = q.take();  // moved, not copied: nothing released twice
    CHECK(released == 1);
  }
  CHECK(released == 2);
}
