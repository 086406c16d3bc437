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

// One client. Owned by itself while its handles are open (self_), and by any Reply or
// Exchange that a command still holds; freed when both are done, whichever thread drops
// the last Reply (the destructor touches no libuv state).
struct ControlConnection {
  // streaming: pieces of the answer are being written; writing: the final answer is.
  enum class State { reading, running, streaming, writing, closing };

  // One write in flight: libuv keeps the buffer's address until the callback.
  struct Write {
    uv_write_t req;
    std::string data;
    std::function<void(bool)> done;
    ControlConnection* conn;
  };

  uv_pipe_t pipe;
  uv_timer_t timer;
  ControlServer* server;  // null once the server closed
  std::shared_ptr<ControlConnection> self;
  State state = State::reading;
  int open_handles = 0;
  std::string in;
  char read_buf[4096];
  size_t unwritten = 0;  // bytes of writes in flight
  bool finished = false;  // the final answer began
  std::function<void(std::vector<std::string>)> continuation;
  std::function<void()> on_abort;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
  uint64_t reply_ms() const { return server ? server->reply_timeout_ms_ : 60000; }
  uint64_t request_ms() const { return server ? server->request_timeout_ms_ : 5000; }

  void start_timer(uint64_t ms) {
    uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<ControlConnection*>(t->data)->on_timeout(); }, ms, 0);
  }

  void on_timeout() {
    switch (state) {
      case State::reading:
        respond(false, continuation ? "the next request did not come in time" : "request timed out");
        break;
      case State::running: {
        // The command's own final answer can no longer come: it hears of an abort.
        auto abort = std::move(on_abort);
        on_abort = nullptr;
        respond(false, "command timed out");
        if (abort) abort();
        break;
      }
      case State::streaming:  // the client does not read, or the command stalled
      case State::writing: shut(); break;  // the client does not read its answer
      case State::closing: break;
    }
  }

  // Queues bytes for the socket; `done` runs when they are written (true) or dropped.
  void write(std::string data, std::function<void(bool)> done) {
    auto* w = new Write{{}, std::move(data), std::move(done), this};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    size_t n = w->data.size();
    int rc = uv_write(&w->req, stream(), &buf, 1, [](uv_write_t* req, int status) {
      std::unique_ptr<Write> w(static_cast<Write*>(req->data));
      w->conn->unwritten -= w->data.size();
      if (w->done) w->done(status == 0);
    });
    if (rc != 0) {
      std::unique_ptr<Write> failed(w);
      shut();
      if (failed->done) failed->done(false);
      return;
    }
    unwritten += n;
  }

  void respond(bool ok, std::string body) {
    if (state != State::reading && state != State::running && state != State::streaming) return;
    std::string out = state == State::streaming ? "0:," : "";  // the end of the pieces
    // The connection answering on its own (a bad or late next request) while the command
    // waits for it: the command never gets its final answer in, so it hears of an abort.
    std::function<void()> abort = continuation ? std::move(on_abort) : nullptr;
    on_abort = nullptr;
    state = State::writing;
    finished = true;
    continuation = nullptr;
    uv_read_stop(stream());
    out += ok ? "ok\n" : "error\n";
    out += body;
    if (!body.empty() && body.back() != '\n') out += '\n';
    write(std::move(out), [this](bool) { shut(); });
    if (state == State::writing) start_timer(request_ms());
    if (abort) abort();
  }

  bool send_piece(std::string piece, std::function<void(bool)> written) {
    if (piece.empty() || (state != State::running && state != State::streaming)) return false;
    std::string out;
    if (state == State::running) out = "stream\n";
    state = State::streaming;
    out += std::to_string(piece.size());
    out += ':';
    out += piece;
    out += ',';
    std::string().swap(piece);
    // Progress, either way, keeps the connection: a stall of the client or of the
    // command past the reply timeout ends it.
    start_timer(reply_ms());
    write(std::move(out), [this, written = std::move(written)](bool ok) {
      if (ok && state == State::streaming) start_timer(reply_ms());
      if (written) written(ok);
    });
    return true;
  }

  bool continue_with(std::string line, std::function<void(std::vector<std::string>)> next) {
    if (state != State::running || !next) return false;
    for (char& c : line)
      if (c == '\n' || c == '\r') c = ' ';
    state = State::reading;
    continuation = std::move(next);
    write("continue\n" + line + "\n", {});
    if (state != State::reading) return true;  // the write failed: closed
    start_timer(reply_ms());
    start_reading();
    return true;
  }

  void start_reading() {
    int rc = uv_read_start(
        stream(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
          auto* c = static_cast<ControlConnection*>(h->data);
          *buf = uv_buf_init(c->read_buf, sizeof c->read_buf);
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
          if (nread == 0) return;  // EAGAIN
          static_cast<ControlConnection*>(s->data)->on_read(nread);
        });
    if (rc != 0) shut();
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
    size_t max = server ? server->max_request_bytes_ : kMaxRequestBytes;
    RequestScan scan = scan_request(in, max);
    if (scan.status == ScanStatus::malformed) {
      respond(false, "malformed request: " + scan.error);
    } else if (scan.status == ScanStatus::complete) {
      uv_read_stop(stream());
      in.clear();
      in.shrink_to_fit();
      if (!server) return shut();
      if (continuation) {
        state = State::running;
        start_timer(reply_ms());
        auto next = std::move(continuation);
        continuation = nullptr;
        try {
          next(std::move(scan.args));
        } catch (const std::exception& e) {
          respond(false, std::string("internal error: ") + e.what());
        } catch (...) {
          respond(false, "internal error");
        }
      } else {
        server->dispatch(self, std::move(scan.args));
      }
    } else if (in.size() > max) {
      respond(false, "request too large");
    }
  }

  void shut() {
    if (state == State::closing) return;
    state = State::closing;
    continuation = nullptr;
    if (server) server->forget(this);
    server = nullptr;
    auto on_closed = [](uv_handle_t* h) {
      auto* c = static_cast<ControlConnection*>(h->data);
      if (--c->open_handles == 0) {
        std::shared_ptr<ControlConnection> last = std::move(c->self);  // may free c when it goes
      }
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_closed);
    if (!finished && on_abort) {
      auto fn = std::move(on_abort);
      on_abort = nullptr;
      fn();
    }
  }
};

bool Exchange::send_piece(std::string piece, std::function<void(bool)> written) {
  return conn_->send_piece(std::move(piece), std::move(written));
}

bool Exchange::continue_with(std::string line, std::function<void(std::vector<std::string>)> next) {
  return conn_->continue_with(std::move(line), std::move(next));
}

void Exchange::finish(bool ok, std::string body) { conn_->respond(ok, std::move(body)); }

void Exchange::on_abort(std::function<void()> fn) {
  if (conn_->state == ControlConnection::State::closing) {
    if (!conn_->finished && fn) fn();
    return;
  }
  conn_->on_abort = std::move(fn);
}

size_t Exchange::unwritten_bytes() const { return conn_->unwritten; }

ControlServer::ControlServer(uv_loop_t* loop, std::string socket_path)
    : loop_(loop), socket_path_(std::move(socket_path)) {
  add_command("help", "list the commands", [this](std::vector<std::string>, Reply reply) {
    reply(true, help_text());
  });
}

ControlServer::~ControlServer() { close(); }

void ControlServer::add_command(std::string name, std::string help, Command command) {
  commands_[std::move(name)] = Entry{std::move(help), std::move(command), {}};
}

void ControlServer::add_exchange_command(std::string name, std::string help, ExchangeCommand command) {
  commands_[std::move(name)] = Entry{std::move(help), {}, std::move(command)};
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
  c->start_reading();
}

void ControlServer::dispatch(const std::shared_ptr<Connection>& conn, std::vector<std::string> args) {
  conn->state = Connection::State::running;
  conn->start_timer(reply_timeout_ms_);
  auto it = commands_.find(args[0]);
  if (it == commands_.end()) {
    conn->respond(false, "unknown command '" + args[0] + "'; try 'help'");
    return;
  }
  // A copy: the command may replace itself (add_command) while it runs.
  Entry entry = it->second;
  try {
    if (entry.exchange) return entry.exchange(std::move(args), std::shared_ptr<Exchange>(new Exchange(conn)));
    Reply reply = [conn](bool ok, std::string body) { conn->respond(ok, std::move(body)); };
    entry.command(std::move(args), reply);
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
