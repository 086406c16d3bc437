// core/control/control_server.hpp - the admin socket, server side (parleyctl is the client).
//
// A Unix domain socket, owner-only (0600), served on a libuv loop. One request per
// connection: the argv as netstrings then "\n" (core/control/netstring.hpp); the answer is
// a line "ok" or "error", then a free-text body, then the server closes the connection.
// Everything here runs on the loop thread; commands may answer later, from the loop thread.
//
// Two continuations, for commands registered with add_exchange_command (XEP-0227 export
// and import of accounts larger than one request or answer):
// - a streamed answer: the line "stream", then the body in pieces, each a netstring (never
//   empty), then the empty netstring "0:," and the usual "ok"/"error" line and body. The
//   pieces are written as the command produces them; it is told when each is written,
//   so that it paces itself by the client's reading (a bounded backlog, house rule 6);
// - a continued request: the line "continue", one line of text, then the client sends
//   its next request (netstrings then "\n") on the same connection, which goes to the
//   command rather than to a new one. The final answer is "ok"/"error" as usual.
// A connection that ends before its final answer (the client went away, a timeout, the
// server closing) tells the command (on_abort), so that it can undo what it began.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/control/netstring.hpp"
#include "parley/result.hpp"

namespace parley::control {

// Called exactly once, on the loop thread, possibly after the command returned. Later
// calls, and calls after the connection was closed (timeout, server closing), do nothing.
using Reply = std::function<void(bool ok, std::string body)>;
// args[0] is the command name. A command that throws answers "error".
using Command = std::function<void(std::vector<std::string> args, Reply reply)>;

// A command's side of one connection (add_exchange_command). Loop thread only; holding
// it keeps the connection's memory, not the connection (a timeout still closes it).
struct ControlConnection;

class Exchange {
 public:
  // Streamed answer: one piece (not empty) of the body. `written` runs once on the loop
  // with true once the piece is written to the socket, or false if the connection went
  // (then possibly during this call). Refused (false; `written` never runs) when the
  // connection is closed or its final answer began.
  bool send_piece(std::string piece, std::function<void(bool written)> written = {});
  // Continued request: answers "continue" and `line`, then reads the client's next
  // request and hands its argv to `next` (once). Only while no piece was sent.
  bool continue_with(std::string line, std::function<void(std::vector<std::string> args)> next);
  // The final answer (after the pieces, if any); then the connection closes.
  void finish(bool ok, std::string body);
  // Runs once, on the loop, if the connection ends before the command's final answer
  // (the client went away; a timeout, or a bad next request, answered by the connection;
  // the server closing).
  void on_abort(std::function<void()> fn);
  // Bytes queued for the socket and not yet written.
  size_t unwritten_bytes() const;

 private:
  friend class ControlServer;
  explicit Exchange(std::shared_ptr<ControlConnection> conn) : conn_(std::move(conn)) {}
  std::shared_ptr<ControlConnection> conn_;
};
using ExchangeCommand = std::function<void(std::vector<std::string> args, std::shared_ptr<Exchange> exchange)>;

class ControlServer {
 public:
  ControlServer(uv_loop_t* loop, std::string socket_path);
  ~ControlServer();  // close()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Adds or replaces a command. `help` is one line, shown by the built-in "help".
  void add_command(std::string name, std::string help, Command command);

  // A command that may stream its answer or read further requests (see above).
  void add_exchange_command(std::string name, std::string help, ExchangeCommand command);

  // The largest request read (and netstring in it); kMaxRequestBytes by default.
  void set_max_request_bytes(size_t bytes) { max_request_bytes_ = bytes; }
  size_t max_request_bytes() const { return max_request_bytes_; }

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
  friend struct ControlConnection;
  using Connection = ControlConnection;
  struct Entry {
    std::string help;
    Command command;
    ExchangeCommand exchange;  // instead of command, when set
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
  size_t max_request_bytes_ = kMaxRequestBytes;
  // The socket file we created, to unlink it only if nobody replaced it since.
  uint64_t socket_dev_ = 0;
  uint64_t socket_ino_ = 0;
};

}  // namespace parley::control
