// A listening socket of one worker loop. Every loop binds the same address with
// SO_REUSEPORT, so the kernel spreads connections over the loops and no accept
// path is shared between threads.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>

#include "core/config/config.hpp"
#include "parley/result.hpp"

namespace parley {

class ServerContext;
struct LoopContext;

class Listener {
 public:
  Listener(ServerContext& ctx, LoopContext& loop, const config::Listener& config);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Result<void, std::string> start();
  // Refuses an address another socket already listens on, before the loops'
  // SO_REUSEPORT sockets are bound: SO_REUSEPORT lets any process of the same
  // user join a port, and the kernel would then hand part of the connections
  // to it (a second server started on a port in use would take some of the
  // first one's clients instead of failing). A probe bound without
  // SO_REUSEPORT fails while any socket listens there; the window between the
  // probe and the loops' binds is the only one left.
  static Result<void, std::string> check_unshared(const config::Listener& config);
  // Stops accepting; the handle is freed in its close callback, after which the
  // Listener may be destroyed (closed() tells).
  void close();
  bool closed() const { return !open_; }
  // The port the socket is bound to (0 if not listening). With port 0 in the
  // config the kernel picks one per Listener: how tests put a connection on
  // a loop of their choice.
  uint16_t port() const;

 private:
  static void on_connection(uv_stream_t* server, int status);
  static void on_close(uv_handle_t* handle);

  ServerContext& ctx_;
  LoopContext& loop_;
  const config::Listener& config_;
  uv_tcp_t tcp_{};
  bool open_ = false;
};

}  // namespace parley
