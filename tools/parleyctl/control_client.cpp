#include "control_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/control/netstring.hpp"

namespace parley::ctl {

namespace {

ControlAnswer failure(std::string why) {
  ControlAnswer a;
  a.kind = ControlAnswer::Kind::failed;
  a.error = std::move(why);
  return a;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

ControlAnswer send_control_request(const std::string& socket_path, const std::vector<std::string>& argv,
                                   int timeout_seconds) {
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
    return failure("bad control socket path '" + socket_path + "'");
  }
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return failure(std::string("socket: ") + std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    // No file, or a file left by a server that is gone: nobody is running.
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) return ControlAnswer{};
    return failure("cannot connect to " + socket_path + ": " + std::strerror(err));
  }
  timeval tv{timeout_seconds, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  const std::string request = control::encode_request(argv);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failure(std::string("cannot send the request: ") + std::strerror(errno));
    }
    sent += static_cast<size_t>(n);
  }

  std::string reply;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return failure("no answer from parleyd (timed out)");
      return failure(std::string("cannot read the answer: ") + std::strerror(errno));
    }
    reply.append(buf, static_cast<size_t>(n));
  }

  size_t eol = reply.find('\n');
  std::string status = reply.substr(0, eol);
  if (eol == std::string::npos || (status != "ok" && status != "error")) {
    return failure("malformed answer from parleyd");
  }
  ControlAnswer a;
  a.kind = ControlAnswer::Kind::answered;
  a.ok = status == "ok";
  a.body = reply.substr(eol + 1);
  return a;
}

}  // namespace parley::ctl

namespace parley::ctl {

namespace {

// A streamed piece is at most what the server sends at once (64 KiB today); the bound
// here only stops a broken peer from making parleyctl buffer without end.
constexpr size_t kMaxPieceBytes = 64 * 1024 * 1024;

}  // namespace

ControlConnection::~ControlConnection() {
  if (fd_ >= 0) ::close(fd_);
}

ControlAnswer ControlConnection::open(const std::string& socket_path, const std::vector<std::string>& argv,
                                      int timeout_seconds) {
  sockaddr_un addr{};
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
    return failure("bad control socket path '" + socket_path + "'");
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return failure(std::string("socket: ") + std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) return ControlAnswer{};
    return failure("cannot connect to " + socket_path + ": " + std::strerror(err));
  }
  timeval tv{timeout_seconds, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string error;
  if (!send(argv, error)) return failure(error);
  ControlAnswer a;
  a.kind = ControlAnswer::Kind::answered;
  return a;
}

bool ControlConnection::send(const std::vector<std::string>& argv, std::string& error) {
  const std::string request = control::encode_request(argv);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = std::string("cannot send the request: ") + std::strerror(errno);
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool ControlConnection::fill(std::string& error) {
  // What was consumed goes, so that the buffer holds about one piece at most.
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  char tmp[65536];
  for (;;) {
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) {
      error = "the server closed the connection early";
      return false;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno == EAGAIN || errno == EWOULDBLOCK ? std::string("no answer from parleyd (timed out)")
                                                      : std::string("cannot read the answer: ") + std::strerror(errno);
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
}

bool ControlConnection::line(std::string& out, std::string& error) {
  for (;;) {
    size_t eol = buf_.find('\n', pos_);
    if (eol != std::string::npos) {
      out = buf_.substr(pos_, eol - pos_);
      pos_ = eol + 1;
      return true;
    }
    if (buf_.size() - pos_ > 4096) {
      error = "malformed answer from parleyd";
      return false;
    }
    if (!fill(error)) return false;
  }
}

ControlAnswer ControlConnection::read_answer(const std::function<bool(std::string_view)>& on_piece, bool& continued) {
  continued = false;
  std::string status, error;
  if (!line(status, error)) return failure(error);
  if (status == "continue") {
    ControlAnswer a;
    a.kind = ControlAnswer::Kind::answered;
    a.ok = true;
    if (!line(a.body, error)) return failure(error);
    continued = true;
    return a;
  }
  if (status == "stream") {
    for (;;) {
      auto scan = control::scan_netstring(buf_, pos_, kMaxPieceBytes);
      if (scan.status == control::ScanStatus::malformed) return failure("malformed answer from parleyd: " + scan.error);
      if (scan.status == control::ScanStatus::incomplete) {
        if (!fill(error)) return failure(error);
        continue;
      }
      pos_ = scan.next;
      if (scan.value.empty()) break;  // the end of the pieces
      if (!on_piece(scan.value)) return failure("stopped");
    }
    if (!line(status, error)) return failure(error);
  }
  if (status != "ok" && status != "error") return failure("malformed answer from parleyd");
  ControlAnswer a;
  a.kind = ControlAnswer::Kind::answered;
  a.ok = status == "ok";
  // The body: the rest, up to EOF.
  a.body = buf_.substr(pos_);
  buf_.clear();
  pos_ = 0;
  char tmp[4096];
  for (;;) {
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return failure(errno == EAGAIN || errno == EWOULDBLOCK ? std::string("no answer from parleyd (timed out)")
                                                              : std::string("cannot read the answer: ") +
                                                                    std::strerror(errno));
    }
    a.body.append(tmp, static_cast<size_t>(n));
  }
  return a;
}

}  // namespace parley::ctl
