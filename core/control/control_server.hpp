// core/control/control_server.hpp - the admin socket, server side (parleyctl is the client).
//
// A Unix domain socket, owner-only (0600), served on a libuv loop. One request per
// connection: the argv as netstrings then "\n" (core/control/netstring.hpp); the answer is
// a line "ok" or "error", then a free-text body, then the server closes the connection.
// Everything here runs on the loop thread; commands may answer later, from the loop thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "parley/result.hpp"

namespace parley::control {

// Called exactly once, on the loop thread, possibly after the command returned. Later
// calls, and calls after the connection was closed (timeout, server closing), do nothing.
using Reply = std::function<void(bool ok, std::string body)>;
// args[0] is the command name. A command that throws answers "error".
using Command = std::function<void(std::vector<std::string> args, Reply reply)>;

class ControlServer {
 public:
  ControlServer(uv_loop_t* loop, std::string socket_path);
  ~ControlServer();  // close()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Adds or replaces a command. `help` is one line, shown by the built-in "help".
  void add_command(std::string name, std::string help, Command command);

  // Binds and listens. A socket file left by a dead server is removed; a live one (it
  // accepts a connection) is left alone and start fails: "another parleyd is running".
  Result<void, std::string> start();

  // Stops listening, drops open connections (pending replies are ignored), removes the
  // socket file if it is still ours. Handles are freed in their close callbacks, so the
  // loop must run once more. Idempotent.
  void close();

  // How long a client may take to send its request, and a command to answer.
  void set_timeouts(uint64_t request_ms, uint64_t reply_ms) {
    request_timeout_ms_ = request_ms;
    reply_timeout_ms_ = reply_ms;
  }

  const std::string& socket_path() const { return socket_path_; }
  size_t connection_count() const { return connections_.size(); }

 private:
  struct Connection;
  struct Entry {
    std::string help;
    Command command;
  };

  static void on_connection(uv_stream_t* listener, int status);
  void accept();
  void dispatch(const std::shared_ptr<Connection>& conn, std::vector<std::string> args);
  std::string help_text() const;
  void forget(Connection* conn) { connections_.erase(conn); }

  uv_loop_t* loop_;
  std::string socket_path_;
  uv_pipe_t* listener_ = nullptr;  // freed in its close callback
  std::map<std::string, Entry> commands_;
  std::unordered_set<Connection*> connections_;
  uint64_t request_timeout_ms_ = 5000;
  uint64_t reply_timeout_ms_ = 60000;
  // The socket file we created, to unlink it only if nobody replaced it since.
  uint64_t socket_dev_ = 0;
  uint64_t socket_ino_ = 0;
};

}  // namespace parley::control
