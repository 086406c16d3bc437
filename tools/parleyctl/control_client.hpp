// tools/parleyctl/control_client.hpp - the client side of the control socket.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::ctl {

struct ControlAnswer {
  enum class Kind {
    not_running,  // no socket file, or nobody listens on it
    answered,     // the server replied: ok and body are set
    failed,       // a server seems there but the exchange failed: error says why
  };
  Kind kind = Kind::not_running;
  bool ok = false;
  std::string body;
  std::string error;
};

// Sends argv as one request and waits (at most timeout_seconds) for the whole answer.
ControlAnswer send_control_request(const std::string& socket_path, const std::vector<std::string>& argv,
                                   int timeout_seconds = 70);

// One connection kept for the continuations of core/control/control_server.hpp: a
// streamed answer read piece by piece, and further requests after a "continue".
class ControlConnection {
 public:
  ControlConnection() = default;
  ~ControlConnection();
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;

  // Connects and sends argv. not_running / failed as send_control_request; else
  // `answered` with nothing read yet.
  ControlAnswer open(const std::string& socket_path, const std::vector<std::string>& argv, int timeout_seconds);
  // Reads one answer. A streamed one hands each piece to on_piece as it arrives (false
  // from it: stop, failed), then gives its final status; "continue" answers are
  // answered with ok, body the line and `continued` set, and the connection stays for
  // send().
  ControlAnswer read_answer(const std::function<bool(std::string_view)>& on_piece, bool& continued);
  // The next request after a "continue".
  bool send(const std::vector<std::string>& argv, std::string& error);

 private:
  bool fill(std::string& error);  // reads more into buf_; false at EOF or error
  bool line(std::string& out, std::string& error);
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace parley::ctl
