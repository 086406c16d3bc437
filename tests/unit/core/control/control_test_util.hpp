// Helpers of the control tests: a loop the test drives, and a blocking client.
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "core/control/netstring.hpp"
#include "../../storage/temp_dir.hpp"

namespace parley::test {

using namespace std::chrono_literals;
using parley::control::encode_request;

// A loop owned by the test; closing it checks that every handle was closed and freed.
class Loop {
 public:
  Loop() { uv_loop_init(&loop_); }
  ~Loop() {
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);
  }
  uv_loop_t* get() { return &loop_; }

  // Runs the loop until `f` (on its own thread) finishes, and returns what it returned.
  template <class F>
  auto run_while(F f) {
    auto future = std::async(std::launch::async, std::move(f));
    while (future.wait_for(0s) != std::future_status::ready) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      std::this_thread::sleep_for(1ms);
    }
    return future.get();
  }

 private:
  uv_loop_t loop_;
};

inline int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};  // a test never waits forever
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

inline std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Sends the pieces (pausing between them), then reads the whole answer.
inline std::string talk(const std::string& path, std::vector<std::string> pieces,
                     std::chrono::milliseconds pause = 0ms) {
  int fd = connect_to(path);
  if (fd < 0) return "<connect failed>";
  for (const auto& p : pieces) {
    ::send(fd, p.data(), p.size(), MSG_NOSIGNAL);
    if (pause.count()) std::this_thread::sleep_for(pause);
  }
  std::string answer = read_all(fd);
  ::close(fd);
  return answer;
}

inline std::string ask(Loop& loop, const std::string& path, std::vector<std::string> argv) {
  return loop.run_while([&] { return talk(path, {encode_request(argv)}); });
}

}  // namespace parley::test
