// mod_stream_mgmt's self-contained logic (no host calls): XEP-0198 sequence
// numbers with 32-bit wrap-around, the queue of unacknowledged stanzas, the
// SM-ID, the <r/> answer rate, delay stamps and the slot's saved form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "parley/sdk/out_bytes.hpp"

namespace parley::sm {

// XEP-0198 h: stanzas handled since <enable/>, modulo 2^32 ("the value of h
// MUST wrap to zero after 2^32 - 1"), from the host's running count of the
// session's stanzas (itself modulo 2^32) and its value at <enable/>.
inline uint32_t handled_since(uint32_t count_now, uint32_t count_at_enable) noexcept {
  return count_now - count_at_enable;  // unsigned: modulo 2^32
}

// How many stanzas an ack of `h` newly acknowledges, given the last
// acknowledged value and how many are still unacknowledged; nullopt if `h`
// acknowledges more than was sent (handled-count-too-high).
std::optional<uint32_t> newly_acked(uint32_t last_acked, uint32_t h, std::size_t unacked) noexcept;

// One stanza sent and not acknowledged yet: its XML as written (a room's
// broadcast: a reference to the host's one serialization, shared by every
// occupant; else a text of its own) and when it was first written (ms since
// the epoch, for its XEP-0203 stamp). Move-only.
struct Unacked {
  OutBytes xml;
  int64_t stamp_ms = 0;
};

// The unacknowledged stanzas, oldest first, with their total bytes. Every
// session with stream management has one, and an idle one has nothing
// unacknowledged: the deque (whose libstdc++ form allocates a 64-byte map and
// a 512-byte block as soon as it exists, and keeps the block when emptied)
// is made by the first push and freed when acks empty it (issue 18).
class UnackedQueue {
 public:
  void push(OutBytes xml, int64_t stamp_ms);
  // Drops the `n` oldest (n <= size()).
  void pop(std::size_t n);
  std::size_t size() const noexcept { return items_ ? items_->size() : 0; }
  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return !items_; }
  const std::deque<Unacked>& items() const noexcept;
  std::deque<Unacked> take();

 private:
  std::unique_ptr<std::deque<Unacked>> items_;  // null: empty
  std::size_t bytes_ = 0;
};

// The SM-ID: "<session id>.<token>" (token: 32 lowercase hex digits, random).
// The session id names where the session lives; the token makes the id
// unguessable even for the same account.
std::string make_sm_id(uint64_t session, std::string_view token);
struct SmId {
  uint64_t session = 0;
  std::string token;
};
std::optional<SmId> parse_sm_id(std::string_view id);
std::string random_token();
// Compares without an early exit (the token is a secret).
bool same_token(std::string_view a, std::string_view b) noexcept;

std::optional<uint32_t> parse_h(std::string_view text) noexcept;
std::optional<uint64_t> parse_u64(std::string_view text) noexcept;

// The <r/> answers: at most `per_second` in each one-second window; the
// others are coalesced into one answer at the window's end.
class AnswerRate {
 public:
  // true: answer now; false: answer later (at window_end_ms()).
  bool allow(int64_t now_ms, uint32_t per_second) noexcept;
  int64_t window_end_ms() const noexcept { return window_start_ + 1000; }

 private:
  int64_t window_start_ = -1000000;
  uint32_t used_ = 0;
};

// Resumable sessions that ended recently (one worker loop's), so that a
// <resume/> of one gets <failed h='...'/> with the session's last h (XEP-0198
// §5: the client learns which of its stanzas arrived). Bounded: at most
// `capacity` entries, each for `ttl_ms`; the oldest go first.
class EndedSessions {
 public:
  EndedSessions(std::size_t capacity = 1000, int64_t ttl_ms = 600000) : capacity_(capacity), ttl_ms_(ttl_ms) {}
  void add(uint64_t session, std::string token, std::string bare, uint32_t h, int64_t now_ms);
  // The h of that session if it ended here recently, with that token, and is
  // of that account.
  std::optional<uint32_t> find(uint64_t session, std::string_view token, std::string_view bare, int64_t now_ms);
  std::size_t size() const noexcept { return items_.size(); }

 private:
  struct Entry {
    uint64_t session;
    std::string token, bare;
    uint32_t h;
    int64_t ended_ms;
  };
  void expire(int64_t now_ms);
  std::deque<Entry> items_;
  std::size_t capacity_;
  int64_t ttl_ms_;
};

// XEP-0082 date-time in UTC with milliseconds: "2026-12-05T23:01:02.345Z".
std::string delay_stamp(int64_t ms_since_epoch);

// The session state that crosses a hot reload.
struct Saved {
  bool resumable = false;
  std::string token;
  std::string bare;
  uint32_t in_base = 0;  // the host's count of the client's stanzas at <enable/>
  uint32_t out = 0;
  uint32_t acked = 0;
  int64_t resume_seconds = 0;
  std::deque<Unacked> queue;
};
std::string encode(const Saved& s);
std::optional<Saved> decode(std::string_view bytes);

}  // namespace parley::sm
