// tools/parleyctl/control_client.hpp - the client side of the control socket.
#pragma once

#include <string>
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

}  // namespace parley::ctl
