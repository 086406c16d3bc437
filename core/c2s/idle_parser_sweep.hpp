// The expat parsers of online streams that went quiet, given back per loop.
//
// An idle session keeps no expat parser (about 10 KiB; ARCHITECTURE.md,
// memory), but freeing it after every read made a session that talks at a
// human pace re-create and re-prime one for nearly every stanza: at one
// stanza per read that was 24,000 of 79,500 instructions per message
// (callgrind). So a stream keeps its parser while input flows and the loop
// frees it once a whole period (limits.idle_parser_release seconds) passed
// without a byte: after one to two periods of quiet. One timer per loop, a
// list of the sessions whose stream holds a parser or was read from in the
// current period, three bits per stream: no per-session timer, nothing on
// the read path but a store. Only a stream read from in two periods in a
// row keeps its parser between reads: one that had a single burst (a login)
// gives it back after each read, else a login storm's parsers, all held for
// a period, fragment the heap (C2sStream::keep_parser_while_busy).
#pragma once

#include <uv.h>

#include <cstdint>
#include <vector>

#include "core/session/session_table.hpp"

namespace parley {

class IdleParserSweep {
 public:
  // Called per watched session at each tick, on the loop: true to keep
  // watching it (it was read from, or its parser is in the middle of a
  // stanza), false to forget it (parser freed, or no such stream any more).
  using Visit = bool (*)(void* context, SessionId id);

  IdleParserSweep() = default;
  IdleParserSweep(const IdleParserSweep&) = delete;
  IdleParserSweep& operator=(const IdleParserSweep&) = delete;

  // Before the first watch(), on the loop's thread. The timer does not keep
  // the loop alive (unref'd); the loop closes it when it stops.
  void init(uv_loop_t* loop, uint64_t period_ms, Visit visit, void* context);
  bool ready() const { return ready_; }
  // A stream of this session now holds a parser: visited from the next tick on.
  void watch(SessionId id);
  size_t watched() const { return watched_.size(); }

 private:
  static void on_tick(uv_timer_t* timer);
  uv_timer_t timer_{};
  uint64_t period_ms_ = 0;
  Visit visit_ = nullptr;
  void* context_ = nullptr;
  bool ready_ = false;
  std::vector<SessionId> watched_;
};

}  // namespace parley
