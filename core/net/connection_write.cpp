// The write path of a connection: bytes to the socket (a uv_try_write fast
// path, then a backlog with its limits), tracked sends (ABI 1.2) and the
// routed stanzas held until written, handed back to the owner if the
// connection ends first.
#include <spdlog/spdlog.h>

#include <fcntl.h>

#include <algorithm>
#include <utility>

#include "core/modules/module_instance.hpp"
#include "core/net/connection_backlog.hpp"
#include "core/net/bosh_session.hpp"
#include "core/net/http_transport.hpp"
#include "core/net/output_batch.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/tls/stream.hpp"

namespace parley {

namespace {

struct WriteRequest {
  uv_write_t req;
  Connection* connection;
  std::string data;
};

// Bytes waiting in the write backlogs of this loop's sessions: each loop
// keeps its share of limits.max_write_backlog_total with a plain counter (a
// loop is one thread), no shared atomic on the write path.
thread_local size_t loop_backlog_bytes = 0;

// Bytes of the last write_raw call the socket took at once (uv_try_write):
// a batch's flush settles the stanzas they carry.
thread_local size_t last_taken = 0;

}  // namespace

size_t loop_write_backlog_bytes() { return loop_backlog_bytes; }

void Connection::send(std::string_view bytes) {
  if (shutdown_requested_) return;
  if (BoshSession* bosh = bosh_session()) {
    bosh->write(bytes);  // waits for a request to carry it
    return;
  }
  if (HttpTransport* http = http_transport()) {
    http->write(bytes);  // framed, then send_plain
    return;
  }
  send_plain(bytes);
}

bool Connection::batchable() const {
  // Not a socketless one (the fuzz target's tap, BOSH), not a plain HTTP
  // answer (its transport paces itself on write_backlog()); a WebSocket's
  // frames are whole in the batch, one after the other.
  // Nor a connection on its way to another loop (its handles are closed).
  return !closing_ && !socketless_ && !migrating() && output_tap_ == nullptr &&
         (http_transport() == nullptr || websocket());
}

void Connection::send_plain(std::string_view bytes) {
  if (shutdown_requested_ || bytes.empty()) return;
  OutputBatch* batch = batchable() ? OutputBatch::of(loop_->loop.uv()) : nullptr;
  if (batch == nullptr) {
    flush_output();  // what the turn batched goes first
    send_now(bytes);
    return;
  }
  if (batch_slot_ != 0 && batch->entry(batch_slot_).bytes.size() + bytes.size() > OutputBatch::flush_at) {
    flush_output();  // one record per batch (output_batch.hpp)
    if (closing_) return;  // that write ended the connection
  }
  if (batch_slot_ == 0) batch_slot_ = batch->add(this);
  std::string& pending = batch->entry(batch_slot_).bytes;
  pending.append(bytes);
  if (pending.size() >= OutputBatch::flush_at) flush_output();
}

OutputBatch::Entry* Connection::take_batch_entry(OutputBatch** batch_out, uint32_t* slot_out) {
  if (batch_slot_ == 0) return nullptr;
  const uint32_t slot = std::exchange(batch_slot_, 0);
  OutputBatch* batch = OutputBatch::current(loop_->loop.uv());
  if (batch == nullptr) return nullptr;
  OutputBatch::Entry& e = batch->entry(slot);
  e.connection = nullptr;
  if (batch_out != nullptr) *batch_out = batch;
  if (slot_out != nullptr) *slot_out = slot;
  return &e;
}

void Connection::flush_output() {
  OutputBatch* batch = nullptr;
  uint32_t slot = 0;
  OutputBatch::Entry* e = take_batch_entry(&batch, &slot);
  if (e == nullptr) return;
  // Ours while we write: a write may end this or another connection, and
  // another's output may grow the batch (the entry's address is not stable).
  std::string bytes;
  std::vector<OutputBatch::Entry::Held> held;
  bytes.swap(e->bytes);
  held.swap(e->held);
  last_taken = 0;
  size_t raw = bytes.empty() ? 0 : send_now(bytes);
  if (!held.empty()) {
    // What the peer can read of it: a plaintext prefix, or with TLS the
    // whole record or nothing.
    const bool encrypted = tls_ && tls_->handshake_done();
    const size_t readable = !encrypted ? last_taken : (raw > 0 && last_taken == raw ? bytes.size() : 0);
    const bool ended = uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_));
    for (auto& h : held) {
      if (h.end <= readable) {
        h.delivery->written.store(true, std::memory_order_relaxed);
        h.delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
      } else if (ended || !backlog_) {
        // The write failed or cut a slow reader (or the connection had
        // ended): handed back after what the backlog held, in order.
        owner_.on_unwritten(std::move(h.delivery));
      } else {
        // In the backlog: released once the socket took its last byte.
        uint64_t end = encrypted ? backlog_->queued : backlog_->queued - (bytes.size() - h.end);
        backlog_->held.push_back(Backlog::Held{end, std::move(h.delivery)});
      }
    }
  }
  batch->recycle(slot, std::move(bytes), std::move(held));
}

void Connection::drop_output() {
  OutputBatch::Entry* e = take_batch_entry(nullptr, nullptr);
  if (e == nullptr) return;
  e->bytes.clear();
  std::vector<OutputBatch::Entry::Held> held;
  held.swap(e->held);
  for (auto& h : held) owner_.on_unwritten(std::move(h.delivery));
}

size_t Connection::send_now(std::string_view bytes) {
  if (!tls_ || !tls_->handshake_done()) {
    write_raw(bytes);
    return bytes.size();
  }
  std::string& outgoing = loop_->loop.scratch_outgoing();
  outgoing.clear();
  auto written = tls_->write(bytes, outgoing);
  if (!written) {
    spdlog::info("c2s {}: TLS write failed: {}", log_id_, written.error());
    lost();
    return 0;
  }
  // Counted before the write: a cut inside it may end a session whose
  // goodbye reuses the loop's scratch buffer for another connection's record.
  const size_t raw = outgoing.size();
  write_raw(outgoing);
  return raw;
}

void Connection::write_raw(std::string_view bytes) {
  // Set as this call returns: a cut inside it may end a session whose
  // goodbye writes to other connections first (nested calls).
  size_t taken = 0;
  struct Report {
    size_t& taken;
    ~Report() { last_taken = taken; }
  } report{taken};
  if (bytes.empty() || uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) return;
  if (backlog_) backlog_->queued += bytes.size();
  if (output_tap_ != nullptr) [[unlikely]] {
    output_tap_(log_id_, bytes);
    if (backlog_) backlog_->written += bytes.size();
    return;
  }
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  if (!backlog_ || backlog_->writes == 0) {
    // Most writes complete at once: no allocation, no queue, no bookkeeping.
    uv_buf_t buf = uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n > 0) taken = static_cast<size_t>(n);
    if (n > 0 && backlog_) backlog_->written += static_cast<uint64_t>(n);
    if (n == static_cast<int>(bytes.size())) return;
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n != UV_EAGAIN) {
      if (backlog_) backlog_->queued -= bytes.size();  // never goes out: not written
      lost();
      return;
    }
  }
  if (!backlog_fits(bytes.size())) {
    if (backlog_) backlog_->queued -= bytes.size();
    cut_slow_reader(bytes.size());
    return;
  }
  if (!backlog_) {
    backlog_ = std::make_unique<Backlog>();
    backlog_->queued = bytes.size();  // offsets start with the bytes that wait
  }
  auto* request = new WriteRequest{{}, this, std::string(bytes)};
  request->req.data = request;
  uv_buf_t buf = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
  if (uv_write(&request->req, stream, &buf, 1, &Connection::on_write) != 0) {
    delete request;
    backlog_->queued -= bytes.size();
    lost();
    return;
  }
  ++backlog_->writes;
  backlog_->bytes += request->data.size();
  loop_backlog_bytes += request->data.size();
}

bool Connection::backlog_fits(size_t bytes) const {
  const auto& limits = ctx_.config.limits;
  if ((backlog_ ? backlog_->bytes : 0) + bytes > limits.max_write_backlog) return false;
  size_t share = limits.max_write_backlog_total / std::max<size_t>(1, ctx_.loops.size());
  return loop_backlog_bytes + bytes <= share;
}

bool Connection::writes_waiting() const { return backlog_ && backlog_->writes > 0; }

size_t Connection::write_backlog() const { return backlog_ ? backlog_->bytes : 0; }

void Connection::linger() {
  const config::LimitsConfig& limits = ctx_.config.limits;
  if (limits.slow_reader_linger == 0 || socketless_ || migrating() || closing_) return;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) != 0) return;
  // A duplicate keeps the socket open once this connection's handle closes
  // its own descriptor (LingeringSockets says why).
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return;
  loop_->lingering.add(loop_->loop.uv(), dup, uint64_t{limits.slow_reader_linger} * 1000, limits.max_lingering_sockets);
}

void Connection::cut_slow_reader(size_t adding) {
  size_t pending = backlog_ ? backlog_->bytes : 0;
  // issue 17: one greppable line per cut (which limit it hit).
  if (pending + adding > ctx_.config.limits.max_write_backlog)
    spdlog::warn("event=slow_consumer_cut session={} ip={} limit=max_write_backlog backlog={}", log_id_, peer_ip_,
                 pending + adding);
  else
    spdlog::warn("event=slow_consumer_cut session={} ip={} limit=max_write_backlog_total backlog={}", log_id_,
                 peer_ip_, pending + adding);
  linger();
  // What it accepted and did not write is handed back to the owner.
  lost();
}

void Connection::on_write(uv_write_t* req, int status) {
  auto* request = static_cast<WriteRequest*>(req->data);
  Connection* self = request->connection;
  Backlog& b = *self->backlog_;  // kept until the close callback while writes are pending
  size_t size = request->data.size();
  delete request;
  --b.writes;
  if (b.closed) return;  // settled when the connection ended
  b.bytes -= size;
  loop_backlog_bytes -= std::min(loop_backlog_bytes, size);
  if (status == 0) b.written += size;
  if (status < 0 && status != UV_ECANCELED) {
    self->lost();
    return;
  }
  self->after_write();
  if (!self->closing_) self->owner_.on_connection_written();
}

size_t Connection::pending_write_bytes() const { return backlog_ ? backlog_->bytes : 0; }

void Connection::after_write() {
  if (!backlog_ || backlog_->firing || backlog_->closed) return;
  Backlog& b = *backlog_;
  release_written_stanzas();
  b.firing = true;
  // A completion may send again (its next batch): new entries go to the
  // back, and are run by this loop if their bytes are written already. One
  // may also end the connection (b.closed): finish_backlog took the rest.
  while (!b.closed && !b.tracked.empty() && b.tracked.front().end <= b.written) {
    Backlog::Tracked t = b.tracked.front();
    b.tracked.pop_front();
    complete_tracked_send(*t.owner, t.done, t.arg, true);
    if (!b.closed) release_written_stanzas();
  }
  b.firing = false;
  bool drained = !b.closed && b.writes == 0;
  if (!b.closed && b.idle()) backlog_.reset();
  if (drained && migrate_pending_) {
    // A migration waited for the bytes queued before it.
    migrate_pending_ = false;
    if (!migrate_out()) lost();  // the socket cannot be handed over: the resume fails with it
  }  // An HTTP answer streamed by a module may go on (issue 13).
  if (HttpTransport* http = http_transport(); http != nullptr && !closing_) http->on_written();
}

void Connection::release_written_stanzas() {
  auto& held = backlog_->held;
  while (!held.empty() && held.front().end <= backlog_->written) {
    held.front().delivery->written.store(true, std::memory_order_relaxed);
    held.front().delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    held.pop_front();
  }
}

void Connection::post_completions() {
  if (backlog_->completions_posted) return;
  backlog_->completions_posted = true;
  LoopContext* loop = loop_;
  uint64_t id = log_id_;
  loop_->loop.post([loop, id] {
    Connection* self = loop->connection_of(id);
    if (self == nullptr || !self->backlog_) return;
    self->backlog_->completions_posted = false;
    self->after_write();
  });
}

void Connection::finish_backlog() {
  if (!backlog_ || backlog_->closed) return;
  Backlog& b = *backlog_;
  b.closed = true;
  // The handle is closing: no byte is written any more. What the socket took
  // is known now, before the write callbacks report it: libuv counts the
  // bytes of its queue that are not written yet.
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  uint64_t unwritten = socketless_ ? 0 : uv_stream_get_write_queue_size(stream);
  b.written = b.queued > unwritten ? b.queued - unwritten : 0;
  loop_backlog_bytes -= std::min(loop_backlog_bytes, b.bytes);
  b.bytes = 0;
  // Completions run from the loop, never inside the call that ended the
  // connection (it may be a module's own send). Their owners stay counted in
  // sends_in_flight until then, so an unload waits for them.
  if (!b.tracked.empty()) {
    auto done = std::make_shared<std::vector<std::pair<Backlog::Tracked, bool>>>();
    for (const Backlog::Tracked& t : b.tracked) done->emplace_back(t, t.end <= b.written);
    b.tracked.clear();
    loop_->loop.post([done] {
      for (auto& [t, written] : *done) complete_tracked_send(*t.owner, t.done, t.arg, written);
    });
  }
  // Now, before any later stanza for the owner's session is routed
  // elsewhere: the owner has them routed again (the rules for a resource that
  // is gone: another resource, offline storage, an error), in order, or keeps
  // them for a detached session.
  std::deque<Backlog::Held> held = std::move(b.held);
  b.held.clear();
  for (Backlog::Held& h : held) {
    if (h.end <= b.written) {
      h.delivery->written.store(true, std::memory_order_relaxed);
      h.delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    } else {
      owner_.on_unwritten(std::move(h.delivery));
    }
  }
}

bool Connection::send_tracked(std::string_view bytes, parley_module* owner, parley_sent_fn done, void* arg) {
  if (closing_ || owner == nullptr || done == nullptr) return false;
  // Without writes waiting the socket will most likely take it at once.
  if (writes_waiting() && !backlog_fits(bytes.size())) {
    cut_slow_reader(bytes.size());
    return false;
  }
  if (!backlog_) backlog_ = std::make_unique<Backlog>();
  send(bytes);
  flush_output();  // its end is an offset of the bytes written: no batch
  if (closing_) return false;
  owner->sends_in_flight.fetch_add(1);
  backlog_->tracked.push_back(Backlog::Tracked{backlog_->queued, owner, done, arg});
  if (backlog_->written >= backlog_->queued) post_completions();
  return true;
}

void Connection::drop_tracked(parley_module* owner) {
  if (!backlog_) return;
  auto& tracked = backlog_->tracked;
  for (auto it = tracked.begin(); it != tracked.end();) {
    if (it->owner == owner) {
      forget_tracked_send(*owner);
      it = tracked.erase(it);
    } else {
      ++it;
    }
  }
}

bool Connection::deliver(const std::shared_ptr<Delivery>& delivery) {
  if (closing_) return false;
  uint32_t batched = 0;
  if (batch_slot_ != 0)
    if (OutputBatch* batch = OutputBatch::current(loop_->loop.uv()))
      batched = static_cast<uint32_t>(batch->entry(batch_slot_).bytes.size());
  if (writes_waiting() && !backlog_fits(delivery->wire_size() + batched)) {
    // Not taken: handed back once the connection ended.
    cut_slow_reader(delivery->wire_size());
    return false;
  }
  // A broadcast's bytes are assembled here (the shared ones, its 'to'
  // spliced in); nothing below keeps the view past send().
  thread_local std::string assembled;
  std::string_view wire = delivery->wire(assembled);
  if (!bosh_kind_ && batchable()) {
    if (OutputBatch* batch = OutputBatch::of(loop_->loop.uv())) {
      // Into this turn's batch, with our hold until it is written (or handed
      // back through on_unwritten if the connection ends first).
      if (batch_slot_ != 0 && batch->entry(batch_slot_).bytes.size() + wire.size() > OutputBatch::flush_at) {
        flush_output();  // one record per batch (output_batch.hpp)
        if (closing_) return false;  // that write ended the connection: not taken
      }
      loop_->metrics.stanzas_out.add();
      if (batch_slot_ == 0) batch_slot_ = batch->add(this);
      delivery->outstanding.fetch_add(1, std::memory_order_relaxed);
      if (HttpTransport* http = http_transport()) {
        http->write(wire);  // framed into the batch (send_plain), which may flush
      } else {
        batch->entry(batch_slot_).bytes.append(wire);
      }
      if (batch_slot_ != 0) {
        OutputBatch::Entry& e = batch->entry(batch_slot_);
        e.held.push_back(OutputBatch::Entry::Held{delivery, e.bytes.size()});
        if (e.bytes.size() >= OutputBatch::flush_at) flush_output();
      } else if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) {
        owner_.on_unwritten(delivery);  // its frame was flushed at once, and the write failed
      } else if (backlog_ && backlog_->written < backlog_->queued) {
        backlog_->held.push_back(Backlog::Held{backlog_->queued, delivery});  // flushed at once, queued
      } else {
        delivery->written.store(true, std::memory_order_relaxed);  // flushed at once, written
        delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
      }
      return true;
    }
  }
  send(wire);
  if (closing_) return false;
  loop_->metrics.stanzas_out.add();
  // Per-stanza bookkeeping only while a backlog exists (the fast path keeps none).
  if (backlog_ && backlog_->written < backlog_->queued) {
    // Our hold, before the router gives back its dispatch's (Delivery).
    delivery->outstanding.fetch_add(1, std::memory_order_relaxed);
    backlog_->held.push_back(Backlog::Held{backlog_->queued, delivery});
  } else {
    // Written: fanned out, the others need not keep it; alone, whoever gives
    // back the last hold (Router::deliver_here) knows it need not route it again.
    delivery->written.store(true, std::memory_order_relaxed);
  }
  return true;
}

}  // namespace parley
