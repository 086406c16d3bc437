#include "core/control/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include "core/control/netstring.hpp"

namespace parley::control {

namespace {

constexpr int kBacklog = 16;

std::string errno_text(int err) { return std::strerror(err); }

// What a connect() to an existing socket file says about it.
enum class Probe { live, stale, unknown };

Probe probe_socket(const std::string& path, std::string& why) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    why = "socket: " + errno_text(errno);
    return Probe::unknown;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  ::close(fd);
  // A full backlog (EAGAIN) still means a server is there.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) return Probe::live;
  if (err == ECONNREFUSED) return Probe::stale;
  why = "connect " + path + ": " + errno_text(err);
  return Probe::unknown;
}

}  // namespace

// One client. Owned by itself while its handles are open (self_), and by any Reply that
// a command still holds; freed when both are done, whichever thread drops the last Reply
// (the destructor touches no libuv state).
struct ControlServer::Connection {
  enum class State { reading, running, writing, closing };

  uv_pipe_t pipe;
  uv_timer_t timer;
  uv_write_t write_req;
  ControlServer* server;  // null once the server closed
  std::shared_ptr<Connection> self;
  State state = State::reading;
  int open_handles = 0;
  std::string in;
  std::string out;
  char read_buf[4096];

  void start_timer(uint64_t ms) {
    uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->on_timeout(); }, ms, 0);
  }

  void on_timeout() {
    switch (state) {
      case State::reading: respond(false, "request timed out"); break;
      case State::running: respond(false, "command timed out"); break;
      case State::writing: shut(); break;  // the client does not read its answer
      case State::closing: break;
    }
  }

  void respond(bool ok, std::string body) {
    if (state != State::reading && state != State::running) return;
    state = State::writing;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe));
    out = ok ? "ok\n" : "error\n";
    out += body;
    if (!body.empty() && body.back() != '\n') out += '\n';
    uv_buf_t buf = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    write_req.data = this;
    int rc = uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&pipe), &buf, 1, [](uv_write_t* req, int) {
      static_cast<Connection*>(req->data)->shut();
    });
    if (rc != 0) {
      shut();
      return;
    }
    start_timer(server ? server->request_timeout_ms_ : 5000);
  }

  void on_read(ssize_t nread) {
    if (state != State::reading) return;
    if (nread < 0) {
      // EOF before a complete request: the client may have only half-closed.
      if (nread == UV_EOF && !in.empty()) {
        respond(false, "incomplete request");
      } else {
        shut();
      }
      return;
    }
    in.append(read_buf, static_cast<size_t>(nread));
    RequestScan scan = scan_request(in);
    if (scan.status == ScanStatus::malformed) {
      respond(false, "malformed request: " + scan.error);
    } else if (scan.status == ScanStatus::complete) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe));
      in.clear();
      in.shrink_to_fit();
      if (server) {
        server->dispatch(self, std::move(scan.args));
      } else {
        shut();
      }
    } else if (in.size() > kMaxRequestBytes) {
      respond(false, "request too large");
    }
  }

  void shut() {
    if (state == State::closing) return;
    state = State::closing;
    if (server) server->forget(this);
    server = nullptr;
    auto on_closed = [](uv_handle_t* h) {
      auto* c = static_cast<Connection*>(h->data);
      if (--c->open_handles == 0) {
        std::shared_ptr<Connection> last = std::move(c->self);  // may free c when it goes
      }
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
  }
};

ControlServer::ControlServer(uv_loop_t* loop, std::string socket_path)
    : loop_(loop), socket_path_(std::move(socket_path)) {
  add_command("help", "list the commands", [this](std::vector<std::string>, Reply reply) {
    reply(true, help_text());
  });
}

ControlServer::~ControlServer() { close(); }

void ControlServer::add_command(std::string name, std::string help, Command command) {
  commands_[std::move(name)] = Entry{std::move(help), std::move(command)};
}

std::string ControlServer::help_text() const {
  size_t width = 0;
  for (const auto& [name, entry] : commands_) width = std::max(width, name.size());
  std::string text = "Commands:\n";
  for (const auto& [name, entry] : commands_) {
    text += "  " + name + std::string(width - name.size() + 2, ' ') + entry.help + "\n";
  }
  return text;
}

Result<void, std::string> ControlServer::start() {
  if (listener_) return unexpected(std::string("control socket already started"));
  const std::string& path = socket_path_;
  if (path.empty()) return unexpected(std::string("control socket: empty path"));
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return unexpected("control socket path too long (at most " +
                      std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes): " + path);
  }

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return unexpected(path + " exists and is not a socket");
    std::string why;
    switch (probe_socket(path, why)) {
      case Probe::live:
        return unexpected("another parleyd is running (its control socket " + path + " accepts connections)");
      case Probe::unknown: return unexpected("control socket: " + why);
      case Probe::stale:
        // Left by a server that died without cleaning up: nobody listens on it.
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          return unexpected("cannot remove stale control socket " + path + ": " + errno_text(errno));
        }
        break;
    }
  } else if (errno != ENOENT) {
    return unexpected("control socket " + path + ": " + errno_text(errno));
  }

  // Bound by hand rather than by uv_pipe_bind: libuv unlinks the path it bound when the
  // handle closes, which would remove a newer server's socket after ours was replaced.
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unexpected("control socket: " + errno_text(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return unexpected("cannot bind control socket " + path + ": " + errno_text(err));
  }
  auto fail_fd = [&](std::string message) -> Result<void, std::string> {
    ::close(fd);
    ::unlink(path.c_str());
    return unexpected(std::move(message));
  };
  // Owner only, set before listen(): until then nobody can connect, so there is no
  // window in which the socket is open to others (a umask would be process-wide).
  if (::chmod(path.c_str(), 0600) != 0) return fail_fd("cannot chmod control socket " + path + ": " + errno_text(errno));
  if (::stat(path.c_str(), &st) != 0) return fail_fd("control socket " + path + ": " + errno_text(errno));
  socket_dev_ = static_cast<uint64_t>(st.st_dev);
  socket_ino_ = static_cast<uint64_t>(st.st_ino);

  auto* listener = new uv_pipe_t;
  int rc = uv_pipe_init(loop_, listener, 0);
  if (rc != 0) {
    delete listener;
    return fail_fd(std::string("control socket: ") + uv_strerror(rc));
  }
  listener->data = this;
  auto close_listener = [listener] {
    uv_close(reinterpret_cast<uv_handle_t*>(listener), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  };
  if ((rc = uv_pipe_open(listener, fd)) != 0) {
    close_listener();
    return fail_fd("control socket: " + std::string(uv_strerror(rc)));
  }
  // From here the handle owns the descriptor.
  if ((rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener), kBacklog, &ControlServer::on_connection)) != 0) {
    close_listener();
    ::unlink(path.c_str());
    return unexpected("cannot listen on control socket " + path + ": " + uv_strerror(rc));
  }
  listener_ = listener;
  return {};
}

void ControlServer::on_connection(uv_stream_t* listener, int status) {
  if (status < 0) return;
  static_cast<ControlServer*>(listener->data)->accept();
}

void ControlServer::accept() {
  auto conn = std::make_shared<Connection>();
  Connection* c = conn.get();
  c->server = this;
  c->self = conn;
  uv_pipe_init(loop_, &c->pipe, 0);
  uv_timer_init(loop_, &c->timer);
  c->pipe.data = c;
  c->timer.data = c;
  c->open_handles = 2;
  connections_.insert(c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(listener_), reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    c->shut();
    return;
  }
  c->start_timer(request_timeout_ms_);
  int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->pipe),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(h->data);
        *buf = uv_buf_init(c->read_buf, sizeof c->read_buf);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
        if (nread == 0) return;  // EAGAIN
        static_cast<Connection*>(s->data)->on_read(nread);
      });
  if (rc != 0) c->shut();
}

void ControlServer::dispatch(const std::shared_ptr<Connection>& conn, std::vector<std::string> args) {
  conn->state = Connection::State::running;
  conn->start_timer(reply_timeout_ms_);
  auto it = commands_.find(args[0]);
  if (it == commands_.end()) {
    conn->respond(false, "unknown command '" + args[0] + "'; try 'help'");
    return;
  }
  Reply reply = [conn](bool ok, std::string body) { conn->respond(ok, std::move(body)); };
  // A copy: the command may replace itself (add_command) while it runs.
  Command command = it->second.command;
  try {
    command(std::move(args), reply);
  } catch (const std::exception& e) {
    conn->respond(false, std::string("internal error: ") + e.what());
  } catch (...) {
    conn->respond(false, "internal error");
  }
}

void ControlServer::close() {
  if (listener_) {
    uv_close(reinterpret_cast<uv_handle_t*>(listener_), [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    listener_ = nullptr;
    struct stat st {};
    if (::stat(socket_path_.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_dev) == socket_dev_ &&
        static_cast<uint64_t>(st.st_ino) == socket_ino_) {
      ::unlink(socket_path_.c_str());
    }
  }
  // shut() removes each from the set: iterate over a copy.
  std::vector<Connection*> open(connections_.begin(), connections_.end());
  for (Connection* c : open) c->shut();
  connections_.clear();
}

}  // namespace parley::control
