// What a detached session keeps (Session::Waiting): the stanzas that wait for
// its next connection and its detach timeout. Private to core/session.
#pragma once

#include <uv.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>

#include "core/session/session.hpp"

namespace parley {

struct Session::Waiting {
  struct Entry {
    std::shared_ptr<Delivery> delivery;  // holds one count of delivery->outstanding
    size_t filter_from;                  // the outgoing filters it still meets
    bool routed;                         // routed to the session (MESSAGE_DELIVERED runs)
  };
  std::deque<Entry> stanzas;
  size_t bytes = 0;  // of the stanzas, serialized (limits.max_detached_bytes)
  std::string peer_ip;  // of the connection that was lost
  // The detach timeout: a handle of its own that finds the session by id, so
  // that the session may go while the handle closes.
  struct Timer {
    uv_timer_t handle;
    LoopContext* loop;
    SessionId session;
  };
  Timer* timer = nullptr;
};

}  // namespace parley
