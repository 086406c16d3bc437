// Sockets of connections cut as slow readers, kept open a while longer so the
// kernel can still deliver what it had accepted.
//
// A stanza the kernel took counts as written (a fanned-out one is then not
// routed again from the other sessions that held it). When such a connection
// was simply closed, its socket became an orphan with a full send buffer and
// a peer window of zero; Linux gives an orphan 8 window probes
// (tcp_orphan_retries), about 50 s on loopback, then resets it, and whatever
// the peer had not read yet was gone: no session had it any more, none routed
// it again. Kept here instead, the socket is no orphan: the kernel
// probes on, the FIN goes out after the data, and a client that reads again
// within `limits.slow_reader_linger` gets every byte the kernel took.
//
// The connection hands over a duplicate of its descriptor (as a migration
// does) and closes its own handles as usual; this object owns the duplicate.
// Per loop, touched only by its thread; bounded by limits.max_lingering_sockets
// (past it a cut socket is closed at once, as before).
#pragma once

#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

namespace parley {

class LingeringSockets {
 public:
  LingeringSockets() = default;
  ~LingeringSockets();  // frees what is left once the loop has stopped (its handles closed by the loop)
  LingeringSockets(const LingeringSockets&) = delete;
  LingeringSockets& operator=(const LingeringSockets&) = delete;

  // Takes `fd` (closed here in any case): shuts its sending side (the FIN
  // follows what the kernel holds) and closes it when the peer ends its side
  // or after `linger_ms`. Nothing is read: what the peer sends meanwhile
  // fills the socket's receive buffer, then its window closes, so a peer
  // that floods gets nowhere. False (fd closed now) when `max` sockets linger
  // already or it cannot be watched.
  bool add(uv_loop_t* loop, uv_os_fd_t fd, uint64_t linger_ms, size_t max);
  // How many linger now; any thread (parleyctl status).
  size_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    LingeringSockets* owner = nullptr;
    uv_os_fd_t fd = -1;
    uv_poll_t poll{};  // UV_DISCONNECT only: the peer's FIN or reset
    uv_timer_t timer{};
    int open_handles = 0;
    bool finishing = false;
  };
  static void finish(Entry* entry);
  static void on_close(uv_handle_t* handle);
  void update_count() { count_.store(entries_.size(), std::memory_order_relaxed); }
  std::unordered_map<Entry*, std::unique_ptr<Entry>> entries_;
  std::atomic<size_t> count_{0};
};

}  // namespace parley
