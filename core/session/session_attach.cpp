// Sessions that outlive their connection: detach (a module kept the session
// when its connection was lost), the waiting queue, the detach timeout, and
// re-attach (session_attach): a resuming connection, accepted on any loop,
// joins the session on the session's loop.
//
// The design: a session never moves. A connection that resumes it migrates
// once to the session's loop: its socket is duplicated and its handles on the
// old loop closed (after its backlog drained), then the stream object -- TLS
// state, parser state, deferred input -- is posted to the session's loop,
// where the socket is opened again. Between the two loops no thread touches
// it: the old loop gave it up (the post is the hand-over), the new one takes
// it in the posted task. So modules see the same session id, slots and
// presence, and every touch of the session stays on one loop.
#include <spdlog/spdlog.h>

#include "core/c2s/c2s_stream.hpp"
#include "core/modules/module_instance.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "core/session/session_attach.hpp"
#include "core/session/session_waiting.hpp"

namespace parley {

bool Session::connection_lost() {
  if (state_ != State::bound || ctx_.shutting_down.load()) return false;
  if (loop_.module_pause.active()) [[unlikely]] {
    // The hooks that decide are module code, being swapped: the session waits
    // detached (no DETACHED yet) and the new code decides, in order.
    detach(false);
    LoopContext* loop = &loop_;
    SessionId id = id_;
    loop_.module_pause.defer([loop, id] {
      Session* self = loop->find(id);
      if (self == nullptr || self->state_ != State::detached) return;
      if (self->closing_kept()) {
        self->run_hook(PARLEY_EVENT_SESSION_DETACHED, nullptr);
        return;
      }
      self->end();
      self->dispose_later();
    });
    return true;
  }
  if (!closing_kept()) return false;
  detach(true);
  return true;
}

bool Session::detach_connection(std::string_view condition) {
  if (state_ != State::bound || !stream_ || stream_->closing() || ctx_.shutting_down.load()) return false;
  // The condition becomes an element name in the stream error: an RFC 6120
  // condition name (lower-case letters and '-') or nothing.
  for (char c : condition)
    if (!((c >= 'a' && c <= 'z') || c == '-')) return false;
  C2sStream* stream = stream_.get();
  // Orphaned first: from here the stream closes without ending the session.
  detach(true);
  stream->close_orphaned(condition);
  return true;
}

bool Session::closing_kept() {
  if (!loop_.modules || loop_.modules->hooks_for(PARLEY_EVENT_SESSION_CLOSING, host_) == nullptr) return false;
  return run_hook(PARLEY_EVENT_SESSION_CLOSING, nullptr) == PARLEY_HANDLED;
}

void Session::detach(bool announce) {
  state_ = State::detached;
  waiting_ = std::make_unique<Waiting>();
  if (stream_) {
    waiting_->peer_ip = stream_->connection().peer_ip();
    // The stream only closes its connection from here; it frees itself.
    stream_->orphan();
    C2sStream* raw = stream_.get();
    loop_.orphan_streams.emplace(raw, std::move(stream_));
  }
  auto* timer = new Waiting::Timer{{}, &loop_, id_};
  uv_timer_init(loop_.loop.uv(), &timer->handle);
  timer->handle.data = timer;
  uv_timer_start(
      &timer->handle,
      [](uv_timer_t* handle) {
        auto* t = static_cast<Waiting::Timer*>(handle->data);
        Session* self = t->loop->find(t->session);
        if (self == nullptr || self->state_ != State::detached) return;
        if (self->attaching_) {
          // A connection is on its way: it decides. Checked again shortly.
          uv_timer_start(handle, handle->timer_cb, 1000, 0);
          return;
        }
        spdlog::info("c2s {}: detached session {} timed out", self->id_, self->jid_.full());
        self->end();
        self->dispose_later();
      },
      static_cast<uint64_t>(ctx_.config.limits.max_detached_seconds) * 1000, 0);
  waiting_->timer = timer;
  spdlog::debug("c2s {}: {} detached", id_, jid_.full());
  if (announce) run_hook(PARLEY_EVENT_SESSION_DETACHED, nullptr);
}

void Session::stop_detach_timer() {
  if (!waiting_ || waiting_->timer == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(&waiting_->timer->handle);
  waiting_->timer = nullptr;
  uv_close(handle, [](uv_handle_t* h) { delete static_cast<Waiting::Timer*>(h->data); });
}

bool Session::wait(const std::shared_ptr<Delivery>& delivery, size_t filter_from, bool routed) {
  const auto& limits = ctx_.config.limits;
  if (waiting_->stanzas.size() >= limits.max_detached_stanzas ||
      waiting_->bytes + delivery->wire_size() > limits.max_detached_bytes) {
    // Nobody is reading: the session ends, and what waited (this one too,
    // through the router) goes as for a resource that is gone.
    spdlog::info("c2s {}: detached session {} has {} stanzas ({} bytes) waiting; closing", id_, jid_.full(),
                 waiting_->stanzas.size(), waiting_->bytes);
    end();
    dispose_later();
    return false;
  }
  delivery->outstanding.fetch_add(1, std::memory_order_relaxed);
  waiting_->bytes += delivery->wire_size();
  waiting_->stanzas.push_back(Waiting::Entry{delivery, filter_from, routed});
  // Modules see what comes for a detached session (issue 14: a push wakes
  // its client). Routed stanzas only; the hooks only look.
  if (routed && loop_.modules && loop_.modules->hooks_for(PARLEY_EVENT_DETACHED_STANZA, host_) != nullptr) {
    if (!loop_.module_pause.active()) {
      run_hook(PARLEY_EVENT_DETACHED_STANZA, &delivery->element());
    } else {
      // Module code waits while modules are swapped; the waiting stanza may
      // be written (and moved from) before then: the hooks get a copy.
      auto copy = std::make_shared<xml::Element>(delivery->element());
      LoopContext* loop = &loop_;
      SessionId id = id_;
      loop_.module_pause.defer([loop, id, copy] {
        if (Session* self = loop->find(id)) self->run_hook(PARLEY_EVENT_DETACHED_STANZA, copy.get());
      });
    }
  }
  return true;
}

void Session::reroute_waiting() {
  if (!waiting_) return;
  std::deque<Waiting::Entry> stanzas = std::move(waiting_->stanzas);
  waiting_->stanzas.clear();
  waiting_->bytes = 0;
  unsigned loop = loop_.loop.index();
  for (auto& w : stanzas) ctx_.router->reroute_unwritten(std::move(w.delivery), loop);
}

void Session::dispose_later() {
  LoopContext* loop = &loop_;
  SessionId id = id_;
  loop_.loop.post([loop, id] {
    auto it = loop->sessions.find(id);
    if (it != loop->sessions.end() && it->second->state() == State::ended && it->second->stream() == nullptr)
      loop->sessions.erase(it);
  });
}

void Session::cancel_attach() { attaching_ = false; }

void Session::reattach(std::unique_ptr<C2sStream> stream) {
  stop_detach_timer();
  stream_ = std::move(stream);
  state_ = State::bound;
  attaching_ = false;
  spdlog::debug("c2s {}: {} re-attached from {}", id_, jid_.full(), stream_->connection().peer_ip());
  run_hook(PARLEY_EVENT_SESSION_REATTACHED, nullptr);
}

void Session::flush_waiting() {
  if (!waiting_) return;
  std::deque<Waiting::Entry> stanzas = std::move(waiting_->stanzas);
  waiting_.reset();
  unsigned loop = loop_.loop.index();
  for (auto& w : stanzas) {
    bool writable = state_ == State::bound && stream_ && !stream_->closing();
    if (writable && loop_.module_pause.active() && has_output_hooks()) [[unlikely]] {
      defer_output(w.delivery, w.filter_from, w.routed);  // the new code's hooks, in order
      w.delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
      continue;
    }
    bool taken = writable && deliver_now(w.delivery, w.filter_from, w.routed);
    if (taken)
      w.delivery->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    else
      ctx_.router->reroute_unwritten(std::move(w.delivery), loop);
  }
}

// ---- session_attach: the orchestration across loops ----

namespace {

struct AttachJob {
  ServerContext* ctx;
  parley_module* module;
  parley_attach_fn done;
  void* arg;
  SessionId detached;   // the session to resume
  SessionId stream;     // the resuming stream's own session
  unsigned stream_loop;
  std::string bare;     // the account both must belong to
};

// The module's completion through its gate (never after its stop began).
void complete(const AttachJob& job, SessionId session, bool attached) {
  parley_module* m = job.module;
  m->gate.run([&] {
    try {
      job.done(m->state, job.arg, session, attached ? 1 : 0);
    } catch (...) {
      spdlog::error("module {}: exception escaped a session_attach completion", m->library->name);
    }
  });
  m->tasks_in_flight.fetch_sub(1);
}

// On the stream's loop: not attached after all.
void fail_here(const AttachJob& job) {
  LoopContext& here = *job.ctx->loops[job.stream_loop];
  if (C2sStream* s = here.stream_of(job.stream)) s->cancel_attach();
  complete(job, job.stream, false);
}

// On the session's loop: the stream arrived (migrated, or from this loop).
void arrive(std::shared_ptr<AttachJob> job, std::unique_ptr<C2sStream> stream, bool migrated) {
  LoopContext& there = *job->ctx->loops[loop_of(job->detached)];
  Session* target = there.find(job->detached);
  if (migrated && !stream->connection().migrate_in(there)) {
    // The socket could not be opened here: the connection is gone, the
    // session stays detached. The stream frees itself once closed.
    if (target) target->cancel_attach();
    stream->orphan();
    C2sStream* raw = stream.get();
    there.orphan_streams.emplace(raw, std::move(stream));
    complete(*job, job->stream, false);  // on the session's loop: the stream's loop has nothing left
    return;
  }
  if (target == nullptr || target->state() != Session::State::detached) {
    // Ended meanwhile (session_close, a conflict, shutdown): the client hears
    // it on its stream, which has no session to go on with.
    if (migrated) {
      // Give the stream a session of its own on this loop to close with.
      SessionId id = there.new_session_id();
      auto fresh = std::make_unique<Session>(*job->ctx, there, id);
      Session* raw = fresh.get();
      there.sessions.emplace(id, std::move(fresh));
      stream->rebind(there, *raw, true);
      raw->adopt_stream(std::move(stream));
      raw->stream()->close_with_stream_error("not-authorized", "The session to resume has ended");
    }
    complete(*job, job->stream, false);
    return;
  }
  C2sStream* raw = stream.get();
  raw->rebind(there, *target, migrated);
  target->reattach(std::move(stream));
  complete(*job, job->detached, true);
  target->flush_waiting();
  if (target->stream() == raw) raw->finish_attach();
}

}  // namespace

int start_session_attach(parley_module* m, SessionId detached, SessionId stream_id, parley_attach_fn done,
                         void* arg) {
  LoopContext* here = LoopContext::current();
  if (here == nullptr || done == nullptr) return 0;
  Session* own = here->find(stream_id);
  C2sStream* stream = own ? own->stream() : nullptr;
  if (stream == nullptr || !stream->authenticated_unbound()) return 0;
  unsigned target_loop = loop_of(detached);
  if (target_loop >= m->ctx->loops.size()) return 0;
  auto job = std::make_shared<AttachJob>(AttachJob{m->ctx, m, done, arg, detached, stream_id, here->loop.index(),
                                                   own->jid().bare_str()});
  m->tasks_in_flight.fetch_add(1);
  stream->begin_attach();
  // 1. On the session's loop: is it detached, of the same account, and free?
  m->ctx->loops[target_loop]->loop.post([job, target_loop] {
    LoopContext& there = *job->ctx->loops[target_loop];
    Session* target = there.find(job->detached);
    bool ok = target != nullptr && target->state() == Session::State::detached && !target->attaching() &&
              target->jid().bare_str() == job->bare;
    if (ok) target->reserve_for_attach();
    // 2. Back on the stream's loop: hand the stream over.
    job->ctx->loops[job->stream_loop]->loop.post([job, ok, target_loop] {
      LoopContext& here = *job->ctx->loops[job->stream_loop];
      Session* own = here.find(job->stream);
      C2sStream* s = own ? own->stream() : nullptr;
      if (!ok || s == nullptr || s->closing()) {
        if (ok) {
          job->ctx->loops[target_loop]->loop.post([job, target_loop] {
            if (Session* t = job->ctx->loops[target_loop]->find(job->detached)) t->cancel_attach();
          });
        }
        if (s != nullptr && !s->closing()) {
          fail_here(*job);
        } else {
          complete(*job, job->stream, false);
        }
        return;
      }
      if (target_loop == job->stream_loop) {
        std::unique_ptr<C2sStream> owned = own->release_stream();
        own->end();  // the stream's own session: never bound, SESSION_CLOSED
        here.sessions.erase(job->stream);
        arrive(job, std::move(owned), false);
        return;
      }
      // 3. Across loops: once the socket is released (C2sStream::
      // on_connection_migrating), the stream is posted over (migrate_to).
      auto release = [job, target_loop] {
        job->ctx->loops[target_loop]->loop.post([job, target_loop] {
          if (Session* t = job->ctx->loops[target_loop]->find(job->detached)) t->cancel_attach();
        });
        complete(*job, job->stream, false);
      };
      bool moving = s->migrate_to(
          target_loop, [job](std::unique_ptr<C2sStream> owned) { arrive(job, std::move(owned), true); }, release);
      if (!moving) {
        s->cancel_attach();
        release();
      }
    });
  });
  return 1;
}

}  // namespace parley
