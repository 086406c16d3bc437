// Write coalescing (issue 18): what a loop turn writes to one connection
// leaves as one TLS record and one write, not one of each per stanza.
//
// Connection::send_plain appends to its entry here and marks it; the loop
// flushes every marked connection once per turn: a uv_check (after the I/O
// callbacks of the turn) and a uv_prepare (before the loop would block, for
// what timers and close callbacks wrote). One pair of handles per loop thread,
// not per connection; the entries and their buffers are reused from turn to
// turn, so an idle connection pays nothing (one slot number in Connection).
// Private to core/net.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace parley {

class Connection;
struct Delivery;

class OutputBatch {
 public:
  struct Entry {
    Connection* connection = nullptr;  // null once flushed or dropped this turn
    std::string bytes;                 // plaintext, before TLS
    // The routed stanzas in `bytes`, each with a hold (Delivery::outstanding)
    // until written or handed back, and where its bytes end in `bytes`.
    struct Held {
      std::shared_ptr<Delivery> delivery;
      size_t end;
    };
    std::vector<Held> held;
  };
  // A batch never grows past this many bytes unless one write alone is
  // bigger: one TLS record's plaintext, so that a batch is one record (a
  // record the socket took in part is lost whole to the peer: what it
  // carried is handed back, and nothing the peer read is sent twice).
  static constexpr size_t flush_at = 16 * 1024;

  // The calling thread's batch for `loop`; null when the loop cannot take
  // one (it is stopping: its handles are closed), then writes go out at once.
  static OutputBatch* of(uv_loop_t* loop);
  // The calling thread's batch of `loop` if it has one, even while the loop
  // stops (to flush or drop what is in it).
  static OutputBatch* current(uv_loop_t* loop);

  // A new entry for `connection`; its slot number (never 0) for entry().
  uint32_t add(Connection* connection);
  Entry& entry(uint32_t slot) { return entries_[slot - 1]; }
  // Gives a flushed entry's buffers back for reuse (cleared, capacity bounded).
  void recycle(uint32_t slot, std::string&& bytes, std::vector<Entry::Held>&& held);

 private:
  static void on_prepare(uv_prepare_t* handle);
  static void on_check(uv_check_t* handle);
  void init(uv_loop_t* loop);
  void flush_all();

  uv_loop_t* loop_ = nullptr;
  uv_prepare_t prepare_{};
  uv_check_t check_{};
  std::vector<Entry> entries_;
  size_t used_ = 0;
  bool flushing_ = false;
};

}  // namespace parley
