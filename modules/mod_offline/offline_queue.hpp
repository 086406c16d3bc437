// The per-user bookkeeping of mod_offline, without a host: messages held in
// memory (write-back), what is known of each user's stored rows (for the
// quota), writes in flight and deliveries in progress. Not thread-safe: the
// module holds one mutex around every call.
//
// Disk counts. A user's stored-row count is learnt lazily, by one COUNT query
// on the single (ordered) writer, issued when the first message for that user
// is admitted. A write whose effect that query already includes must not be
// added again: every write records, when it is issued, whether the count
// query had been issued before it (`counted`); only those writes add their
// delta, to the count or, while its answer is on its way, to a pending delta.
// A user's entry is forgotten only when nothing is in flight for it, so that
// no late completion refers to a count it did not belong to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace parley::offline {

struct HeldMessage {
  int64_t arrived_ms = 0;  // steady clock, for the write-back window
  std::string stamp;       // the XEP-0203 stamp it carries (stored alongside)
  std::string xml;         // the stanza as it will be delivered (delay included)
  std::string sender;      // the sender's bare JID (max_per_sender)
};

// A user's share of one flush: the rows to insert, in arrival order.
struct FlushPart {
  std::string user;
  std::vector<HeldMessage> messages;
  bool counted = false;
};

class OfflineQueue {
 public:
  struct Admission {
    bool accepted = false;   // false: the quota is full, or the sender's share of it
    bool sender_share = false;  // refused for the sender's share (max_per_sender)
    bool ask_count = false;  // issue the user's COUNT query now (then count_result)
    bool arm_timer = false;  // no flush timer is armed: arm one for next_expiry_ms
    bool over_cap = false;   // memory cap exceeded: flush everything now
  };
  struct Delivery {
    bool busy = false;       // a delivery for this user is in progress; it will run again
    bool need_disk = false;  // read the stored rows (then end_delivery)
    std::vector<HeldMessage> memory;  // held messages, after the stored ones
  };

  OfflineQueue(int64_t max_messages, int64_t window_ms, std::size_t max_bytes, int64_t max_per_sender = INT64_MAX)
      : max_messages_(max_messages), max_per_sender_(max_per_sender), window_ms_(window_ms), max_bytes_(max_bytes) {}

  // Write-back: hold a new message if the user's quota (stored + flushing +
  // held) allows it.
  Admission admit(const std::string& user, HeldMessage message);
  void count_result(const std::string& user, std::optional<int64_t> rows);  // nullopt: the query failed
  // The stored rows per sender, from the same query (before count_result).
  // Per-sender counts are a lower bound: a delivery's DELETE removes rows of
  // unknown senders, after which they count as 0 (the user's quota stays exact).
  void sender_counts(const std::string& user, const std::vector<std::pair<std::string, int64_t>>& counts);

  // Any write touching a user's rows: call when issuing it (returns `counted`)
  // and when it completed, with the rows it added (+) or removed (-).
  bool write_issued(const std::string& user);
  void write_done(const std::string& user, int64_t delta, bool counted);

  // Flushes: the held messages older than the window (expired) or all of them.
  // Each part is one user's prefix, in order; finish with flush_done.
  std::vector<FlushPart> take_expired(int64_t now_ms);
  std::vector<FlushPart> take_all();
  // ok == false puts the messages back in front of what is held.
  void flush_done(FlushPart&& part, bool ok);
  // The flush timer: one at a time. timer_fired() when it ran; arm_if_idle()
  // gives the next expiry (steady ms) when a timer should be armed for it
  // (none is armed and something is held), and records it as armed.
  void timer_fired() { timer_armed_ = false; }
  std::optional<int64_t> arm_if_idle();

  // A delivery to a session that became available. `always_disk`: the
  // stored-row count is not tracked (immediate durability).
  Delivery begin_delivery(const std::string& user, bool always_disk);
  // A paced delivery (a batch at a time): false if one is in progress (it
  // will run again). Then, per batch, either the stored rows (while
  // disk_may_have_rows) or take_front's held messages; end_delivery at the end.
  bool begin_paced(const std::string& user);
  bool disk_may_have_rows(const std::string& user) const;
  // The oldest held messages, at most `max_count` and, past the first,
  // `max_bytes` of stanzas; they leave the memory accounting (requeue_front
  // puts back what was not delivered).
  std::vector<HeldMessage> take_front(const std::string& user, std::size_t max_count, std::size_t max_bytes);
  // Puts undelivered held messages back in front.
  void requeue_front(const std::string& user, std::vector<HeldMessage> messages);
  // true: someone asked for a delivery meanwhile; deliver again.
  bool end_delivery(const std::string& user);

  // Account removal: drops the held messages; returns how many.
  std::size_t remove_user(const std::string& user);

  std::size_t held_bytes() const { return bytes_; }
  std::size_t held_messages() const { return held_count_; }
  std::size_t users() const { return users_.size(); }
  std::optional<int64_t> known_disk_count(const std::string& user) const;

 private:
  struct UserState {
    std::deque<HeldMessage> held;
    int64_t flushing = 0;  // rows in INSERTs not yet committed
    int64_t disk = 0;
    int64_t pending_delta = 0;
    bool disk_known = false;
    bool count_asked = false;
    bool count_in_flight = false;
    int writes_in_flight = 0;
    bool delivering = false;
    bool redeliver = false;
    // Rows stored or being flushed per sender, as far as known (held ones are counted in `held`).
    std::unordered_map<std::string, int64_t> senders;
  };
  UserState& state(const std::string& user) { return users_[user]; }
  void release(HeldMessage& m) { bytes_ -= weight(m); }
  static std::size_t weight(const HeldMessage& m) { return m.xml.size() + m.stamp.size() + sizeof(HeldMessage); }
  void take_prefix(const std::string& user, UserState& st, std::size_t n, std::vector<FlushPart>& out);
  void maybe_forget(const std::string& user);

  int64_t max_messages_;
  int64_t max_per_sender_;
  int64_t window_ms_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::size_t held_count_ = 0;
  bool timer_armed_ = false;
  std::unordered_map<std::string, UserState> users_;
};

}  // namespace parley::offline
