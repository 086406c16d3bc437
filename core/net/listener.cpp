#include "core/net/listener.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/c2s/c2s_stream.hpp"
#include "core/component/component_directory.hpp"
#include "core/component/component_stream.hpp"
#include "core/session/session.hpp"
#include "core/server/server_context.hpp"

namespace parley {

Listener::Listener(ServerContext& ctx, LoopContext& loop, const config::Listener& config)
    : ctx_(ctx), loop_(loop), config_(config) {
  tcp_.data = this;
}

Listener::~Listener() = default;

namespace {

// A socket bound to the listener's address (SO_REUSEADDR, so connections of an
// earlier run in TIME_WAIT do not count), SO_REUSEPORT when `shared`.
Result<int, std::string> bound_socket(const config::Listener& config, bool shared) {
  sockaddr_storage addr{};
  bool v6 = config.ip.find(':') != std::string::npos;
  int rc = v6 ? uv_ip6_addr(config.ip.c_str(), config.port, reinterpret_cast<sockaddr_in6*>(&addr))
              : uv_ip4_addr(config.ip.c_str(), config.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) return unexpected(fmt::format("bad listen address {}: {}", config.ip, uv_strerror(rc)));
  // libuv 1.44 has no SO_REUSEPORT flag for uv_tcp_bind: make the socket here.
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return unexpected(fmt::format("socket(): {}", strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (shared) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (v6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  socklen_t len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    std::string reason = strerror(errno);
    ::close(fd);
    return unexpected(fmt::format("cannot listen on {}:{}: {}", config.ip, config.port, reason));
  }
  return fd;
}

}  // namespace

Result<void, std::string> Listener::check_unshared(const config::Listener& config) {
  if (config.port == 0) return {};  // the kernel picks a free port per socket
  auto probe = bound_socket(config, false);
  if (!probe) return unexpected(probe.error());
  ::close(*probe);
  return {};
}

Result<void, std::string> Listener::start() {
  auto bound = bound_socket(config_, true);
  if (!bound) return unexpected(bound.error());
  int fd = *bound;
  int rc = 0;
  uv_tcp_init(loop_.loop.uv(), &tcp_);
  open_ = true;
  if ((rc = uv_tcp_open(&tcp_, fd)) != 0) {
    ::close(fd);
    close();
    return unexpected(fmt::format("uv_tcp_open: {}", uv_strerror(rc)));
  }
  if ((rc = uv_listen(reinterpret_cast<uv_stream_t*>(&tcp_), config_.backlog, &Listener::on_connection)) != 0) {
    close();
    return unexpected(fmt::format("cannot listen on {}:{}: {}", config_.ip, config_.port, uv_strerror(rc)));
  }
  return {};
}

void Listener::close() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&tcp_);
  if (open_ && !uv_is_closing(handle)) uv_close(handle, &Listener::on_close);
}

uint16_t Listener::port() const {
  if (!open_) return 0;
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

void Listener::on_close(uv_handle_t* handle) { static_cast<Listener*>(handle->data)->open_ = false; }

void Listener::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0) {
    spdlog::warn("accept on {}:{} failed: {}", self->config_.ip, self->config_.port, uv_strerror(status));
    return;
  }
  if (self->ctx_.shutting_down.load()) return;
  SessionId id = self->loop_.new_session_id();
  if (self->config_.module == "component") {
    // An external component (XEP-0114): no session, a stream of its own kind.
    LoopContext& loop = self->loop_;
    if (!loop.components) loop.components = std::make_unique<ComponentLinks>();
    auto stream = std::make_unique<ComponentStream>(self->ctx_, loop, self->config_, id);
    ComponentStream* raw = stream.get();
    loop.components->streams.emplace(raw, std::move(stream));
    raw->start(server);
    return;
  }
  auto session = std::make_unique<Session>(self->ctx_, self->loop_, id);
  Session* raw = session.get();
  self->loop_.sessions.emplace(id, std::move(session));
  raw->adopt_stream(std::make_unique<C2sStream>(self->ctx_, self->loop_, *raw, self->config_));
  raw->stream()->start(server);
}

}  // namespace parley
