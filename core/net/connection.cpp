// A connection's life: accept, TLS, reading (rate limit, throttle, holds),
// the deadline timer, closing, and migration to another loop. The write path
// is in connection_write.cpp.
#include "core/net/connection.hpp"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "core/modules/module_instance.hpp"
#include "core/net/connection_backlog.hpp"
#include "core/net/bosh_session.hpp"
#include "core/net/http_transport.hpp"
#include "core/net/output_batch.hpp"
#include "core/server/server_context.hpp"
#include "core/tls/stream.hpp"

namespace parley {

Connection::OutputTap Connection::output_tap_ = nullptr;

void Connection::set_output_tap(OutputTap tap) { output_tap_ = tap; }

Connection::Connection(ServerContext& ctx, LoopContext& loop, uint64_t log_id, ConnectionOwner& owner)
    : ctx_(ctx), loop_(&loop), owner_(owner), log_id_(log_id) {
  tcp_.data = this;
  loop_->metrics.connections_open.add(1);
}

Connection::~Connection() {
  if (batch_slot_ != 0 && loop_->loop.on_loop_thread()) {
    // Only at shutdown (the loop stopped before its last turn flushed).
    if (OutputBatch* batch = OutputBatch::current(loop_->loop.uv())) {
      OutputBatch::Entry& e = batch->entry(batch_slot_);
      e.connection = nullptr;
      for (auto& h : e.held) h.delivery->outstanding.fetch_sub(1);
      e.held.clear();
    }
  }
  if (backlog_) {
    // Only at shutdown (the loops stopped with the handle open): no
    // completion runs any more; the counts are settled.
    for (auto& t : backlog_->tracked) forget_tracked_send(*t.owner);
    for (auto& h : backlog_->held) h.delivery->outstanding.fetch_sub(1);
  }
  if (migrate_fd_ >= 0) ::close(migrate_fd_);
  delete timer_;  // closed already, or never started (the loops stopped)
  loop_->metrics.connections_open.add(-1);
  if (bosh_kind_) loop_->metrics.connections_bosh.add(-1);
  if (counted_ip_) ctx_.connections.remove(peer_ip_);
  if (bosh_kind_)
    delete bosh_;
  else
    delete http_;
}

bool Connection::accept(uv_stream_t* server) {
  uv_tcp_init(loop_->loop.uv(), &tcp_);
  ++open_handles_;
  loop_->metrics.connections_accepted.add();
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    abort();
    return false;
  }
  uv_tcp_nodelay(&tcp_, 1);
  connected_s_ = last_read_s_ = static_cast<uint32_t>(uv_now(loop_->loop.uv()) / 1000);
  sockaddr_storage addr{};
  int len = sizeof(addr);
  char ip[INET6_ADDRSTRLEN] = "unknown";
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    if (addr.ss_family == AF_INET)
      uv_ip4_name(reinterpret_cast<sockaddr_in*>(&addr), ip, sizeof(ip));
    else
      uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&addr), ip, sizeof(ip));
  }
  peer_ip_ = ip;
  if (!ctx_.connections.try_add(peer_ip_, ctx_.config.limits.max_connections_per_ip)) {
    spdlog::info("c2s {}: refusing connection from {}: too many connections", log_id_, peer_ip_);
    abort();
    return false;
  }
  counted_ip_ = true;
  return true;
}

void Connection::open_without_socket(std::string peer_ip) {
  uv_tcp_init(loop_->loop.uv(), &tcp_);  // never connected: reads never come, writes go to the tap
  ++open_handles_;
  socketless_ = true;
  loop_->metrics.connections_accepted.add();
  peer_ip_ = std::move(peer_ip);
}

BoshSession* Connection::open_bosh(BoshParams&& params) {
  uv_tcp_init(loop_->loop.uv(), &tcp_);  // never connected: the session's requests are its reads
  ++open_handles_;
  socketless_ = true;
  loop_->metrics.connections_accepted.add();
  peer_ip_ = params.peer_ip;
  secure_ = params.secure;
  bosh_kind_ = true;
  loop_->metrics.connections_bosh.add(1);
  bosh_ = new BoshSession(ctx_, *this, owner_, std::move(params));
  return bosh_;
}

bool Connection::start_tls(std::string_view default_host) {
  flush_output();  // <proceed/> leaves in plaintext, before TLS starts
  tls_store_ = ctx_.tls_store();
  if (!tls_store_) {
    abort();
    return false;
  }
  auto stream = tls::Stream::server(*tls_store_, default_host);
  if (!stream) {
    spdlog::error("c2s {}: cannot start TLS: {}", log_id_, stream.error());
    abort();
    return false;
  }
  tls_ = std::move(*stream);
  return true;
}

void Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  buf->base = self->loop_->loop.read_buffer();
  buf->len = WorkerLoop::read_buffer_size;
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(stream->data);
  if (nread == 0) return;
  if (nread < 0) {
    // EOF or reset: an abrupt end. Nothing more can be said to the peer.
    self->lost();
    return;
  }
  self->last_read_s_ = static_cast<uint32_t>(uv_now(self->loop_->loop.uv()) / 1000);
  if (!self->within_rate(static_cast<size_t>(nread))) return;
  self->handle_bytes(std::string_view(buf->base, static_cast<size_t>(nread)));
}

bool Connection::within_rate(size_t bytes) {
  const int64_t rate = static_cast<int64_t>(ctx_.config.limits.max_bytes_per_second);
  if (rate == 0) return true;
  uint64_t now = uv_now(loop_->loop.uv());
  if (rate_checked_ms_ == 0) rate_budget_ = rate;  // a full bucket to start with
  rate_budget_ = std::min<int64_t>(rate, rate_budget_ + static_cast<int64_t>(now - rate_checked_ms_) * rate / 1000);
  rate_checked_ms_ = now;
  rate_budget_ -= static_cast<int64_t>(bytes);
  if (rate_budget_ >= 0) return true;
  // Over the rate: these bytes are handled, then reading waits until the debt
  // is paid. A client that keeps pushing anyway (more than five seconds of
  // debt: it cannot be reading our flow control) is cut off.
  int64_t debt = -rate_budget_;
  if (debt > 5 * rate) {
    spdlog::info("c2s {}: {} exceeds {} bytes/s; closing", log_id_, peer_ip_, rate);
    owner_.on_connection_flood();
    return false;
  }
  throttle(static_cast<uint64_t>(debt * 1000 / rate) + 1);
  return true;
}

void Connection::throttle(uint64_t delay_ms) {
  if (throttled_ || closing_) return;
  throttled_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  loop_->throttle(log_id_, uv_now(loop_->loop.uv()) + delay_ms);
}

void Connection::end_throttle() {
  throttled_ = false;
  start_reading();
}

void Connection::start_reading() {
  if (closing_ || throttled_ || reading_suspended_ || migrating()) return;
  if (BoshSession* bosh = bosh_session()) {
    bosh->resume();  // the payloads that waited, from the loop (not inside the owner's call)
    return;
  }
  if (socketless_) return;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::on_alloc, &Connection::on_read);
}

void Connection::suspend_reading() {
  if (reading_suspended_) return;
  reading_suspended_ = true;
  if (!closing_) uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void Connection::resume_reading() {
  reading_suspended_ = false;
  start_reading();
}

void Connection::handle_bytes(std::string_view bytes) {
  if (closing_) return;
  if (!tls_) {
    to_owner(bytes);
    return;
  }
  std::string& plaintext = loop_->loop.scratch_plaintext();
  std::string& outgoing = loop_->loop.scratch_outgoing();
  plaintext.clear();
  outgoing.clear();
  bool was_done = tls_->handshake_done();
  auto fed = tls_->feed(bytes, plaintext, outgoing);
  if (!outgoing.empty()) write_raw(outgoing);
  if (!fed) {
    if (!was_done) loop_->metrics.tls_failures.add();
    spdlog::info("c2s {}: TLS error from {}: {}", log_id_, peer_ip_, fed.error());
    lost();
    return;
  }
  if (!was_done && tls_->handshake_done()) {
    loop_->metrics.tls_handshakes.add();
    secure_ = true;
    tls_store_.reset();
    owner_.on_connection_secured();
    if (closing_) return;
  }
  if (tls_->peer_closed()) {
    lost();
    return;
  }
  if (!plaintext.empty()) {
    // The owner may send, which reuses the loop's scratch buffers: hand it a
    // buffer of our own.
    std::string data;
    data.swap(plaintext);
    to_owner(data);
    if (plaintext.empty()) {
      data.clear();
      plaintext.swap(data);  // give the capacity back to the loop
    }
  }
}

void Connection::use_http(const config::Listener& listener) {
  http_ = new HttpTransport(ctx_, *this, owner_, listener);
}

bool Connection::websocket() const { return http_transport() != nullptr && http_->websocket(); }

void Connection::to_owner(std::string_view plaintext) {
  if (http_transport() == nullptr) {
    owner_.on_connection_bytes(plaintext);
    return;
  }
  if (!http_->feed(plaintext)) end_after_flush();
}

void Connection::end_after_flush() {
  if (closing_) return;
  if (!lost_reported_) {
    lost_reported_ = true;
    owner_.on_connection_lost();
  }
  close_after_flush();
}

void Connection::arm_deadline(uint64_t ms) {
  if (closing_) return;
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t{};
    uv_timer_init(loop_->loop.uv(), timer_);
    timer_->data = this;
    ++open_handles_;
  }
  uv_timer_start(timer_, &Connection::on_timer, ms, 0);
}

void Connection::disarm_deadline() {
  if (timer_ == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(timer_);
  if (!uv_is_closing(handle)) uv_close(handle, &Connection::on_timer_close);
}

void Connection::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  if (self->closing_) return;
  self->owner_.on_connection_deadline();
}

void Connection::on_timer_close(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  delete self->timer_;
  self->timer_ = nullptr;
  self->handle_closed();
}

void Connection::close_after_flush() {
  if (closing_) return;
  // A WebSocket's closing handshake first (RFC 6455 §7: the server closes
  // TCP first), after the owner's last words.
  if (HttpTransport* http = http_transport()) http->closing();
  if (BoshSession* bosh = bosh_session()) bosh->closing();  // terminate, with the stream's last words
  closing_ = true;
  flush_output();  // the owner's last words (and the transport's), before close_notify
  if (closing_ && uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;  // the flush failed: ended
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  disarm_deadline();
  if (tls_ && tls_->handshake_done()) {
    std::string& outgoing = loop_->loop.scratch_outgoing();
    outgoing.clear();
    tls_->close_notify(outgoing);
    write_raw(outgoing);
  }
  shutdown_requested_ = true;
  auto* handle = reinterpret_cast<uv_handle_t*>(&tcp_);
  if (handle->loop == nullptr || uv_is_closing(handle)) return;
  // uv_shutdown waits for queued writes, so the last words reach the peer.
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::on_shutdown) != 0) {
    delete req;
    close_handles();
  }
}

void Connection::on_shutdown(uv_shutdown_t* req, int) {
  auto* self = static_cast<Connection*>(req->data);
  delete req;
  self->close_handles();
}

void Connection::lost() {
  bool asked = closing_;
  closing_ = true;
  if (!asked && !lost_reported_) {
    lost_reported_ = true;
    owner_.on_connection_lost();
  }
  close_handles();
}

void Connection::abort() {
  closing_ = true;
  close_handles();
}

void Connection::close_handles() {
  closing_ = true;
  migrate_pending_ = false;
  auto* tcp = reinterpret_cast<uv_handle_t*>(&tcp_);
  if (tcp->loop != nullptr && !uv_is_closing(tcp)) {
    uv_close(tcp, &Connection::on_tcp_close);
    finish_backlog();
  }
  drop_output();  // after what the backlog held, in order
  disarm_deadline();
}

void Connection::on_tcp_close(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  // Every write callback has run: the backlog is no longer referred to.
  self->backlog_.reset();
  self->handle_closed();
}

void Connection::handle_closed() {
  if (--open_handles_ > 0) return;
  if (migrate_fd_ >= 0 || bosh_moving_) {
    // Handed over, not closed: the duplicate keeps the socket open (a BOSH
    // connection has none: its session travels).
    finish_migration_out();
    return;
  }
  // The last handle is closed: nothing refers to this connection any more.
  owner_.on_connection_closed();
}

bool Connection::migrate_out() {
  if (closing_ || migrating()) return false;
  if (bosh_kind_) {
    // No socket: the handles close here, the session's state travels with the
    // object (its held requests are answered from the new loop). Tracked
    // sends complete first, on this loop (BOSH output never waits here).
    if (backlog_) after_write();
    if (closing_) return false;
    bosh_moving_ = true;
    bosh_->leave();
    disarm_deadline();
    auto* tcp = reinterpret_cast<uv_handle_t*>(&tcp_);
    if (!uv_is_closing(tcp)) uv_close(tcp, &Connection::on_tcp_close);
    return true;
  }
  if (socketless_) return false;
  flush_output();  // what this turn wrote leaves from this loop
  if (closing_) return false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  disarm_deadline();
  if (writes_waiting()) {
    migrate_pending_ = true;  // after_write goes on when the backlog drained
    return true;
  }
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return false;
  // Close-on-exec like every socket libuv opens.
  migrate_fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (migrate_fd_ < 0) return false;
  if (backlog_) {
    // Every byte is written: tracked sends complete and held stanzas are
    // released here, on the loop they were made on, before the connection
    // leaves it.
    after_write();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::on_tcp_close);
  return true;
}

void Connection::finish_migration_out() {
  if (throttled_) throttled_ = false;  // the new loop reads at once; the old throttle entry finds nothing
  loop_->metrics.connections_open.add(-1);
  if (bosh_kind_) loop_->metrics.connections_bosh.add(-1);
  owner_.on_connection_migrating();
}

bool Connection::migrate_in(LoopContext& loop) {
  unsigned from = loop_->loop.index();
  loop_ = &loop;
  loop_->metrics.connections_open.add(1);
  tcp_ = uv_tcp_t{};
  tcp_.data = this;
  uv_tcp_init(loop_->loop.uv(), &tcp_);
  ++open_handles_;
  if (bosh_kind_) {
    bosh_moving_ = false;
    loop_->metrics.connections_bosh.add(1);
    bosh_->arrive(from);
    return true;
  }
  int fd = migrate_fd_;
  migrate_fd_ = -1;
  if (uv_tcp_open(&tcp_, fd) != 0) {
    ::close(fd);
    lost();
    return false;
  }
  uv_tcp_nodelay(&tcp_, 1);
  return true;
}

}  // namespace parley
