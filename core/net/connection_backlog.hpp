// The write path's bookkeeping of a connection (Connection::Backlog), shared
// by connection_write.cpp, which keeps it, and connection.cpp, which settles
// it when the connection closes. Private to core/net.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>

#include "core/net/connection.hpp"
#include "core/router/router.hpp"
#include "parley/module.h"

namespace parley {

// Kept only while something is pending: the bytes the socket has not taken,
// the tracked sends (ABI 1.2) and the routed stanzas not fully written yet.
// Offsets count the raw (after TLS) bytes handed to write_raw since the
// backlog was created; a stanza is written once `written` reaches the offset
// where its bytes end.
// Bytes in the write backlogs of the calling loop's connections (/metrics).
size_t loop_write_backlog_bytes();

struct Connection::Backlog {
  size_t writes = 0;     // uv_write requests in flight
  size_t bytes = 0;      // their bytes: the backlog proper
  uint64_t queued = 0;   // raw bytes handed to write_raw
  uint64_t written = 0;  // of those, the bytes the socket took
  struct Tracked {
    uint64_t end;
    parley_module* owner;
    parley_sent_fn done;
    void* arg;
  };
  std::deque<Tracked> tracked;
  struct Held {
    uint64_t end;
    std::shared_ptr<Delivery> delivery;
  };
  std::deque<Held> held;  // handed back (on_unwritten) if the connection ends first
  bool firing = false;         // completions are running: no nested run, no release
  bool completions_posted = false;
  bool closed = false;         // the connection ended: settled by finish_backlog

  bool idle() const { return writes == 0 && tracked.empty() && held.empty() && !firing && !completions_posted; }
};

}  // namespace parley
