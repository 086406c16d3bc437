// parley/sdk/host_calls.hpp - Host's calls that complete later: timers,
// tracked sends, attaches, storage and the archive store. Each keeps its
// std::function as a pending callback (host_pending.hpp) and the static
// trampoline the host calls takes it back on the loop that registered it.
// Part of parley/module.hpp through host.hpp; not meant to be included on its own.
#pragma once

#include "parley/sdk/host.hpp"

namespace parley {

inline uint64_t Host::start_timer_impl(std::chrono::milliseconds delay, std::chrono::milliseconds every, TimerFn fn) {
  const parley_host_api* api = table();
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::timer);
  p->owner = this;
  p->on_timer = std::move(fn);
  p->repeating = every.count() > 0;
  detail::Pending* raw = p.get();
  auto start = [&](uint64_t key) {
    return api->timer_start(m_, static_cast<uint64_t>(delay.count()), static_cast<uint64_t>(every.count()),
                            &Host::on_timer, detail::key_arg(key));
  };
  uint32_t loop = 0;
  if (detail::LoopTable* t = loop_here(&loop)) {
    t->drain_cancels();
    uint32_t slot = 0;
    uint16_t gen = 0;
    if (t->add(p, &slot, &gen)) {
      // It fires on this loop, later: never during timer_start.
      uint64_t id = start(detail::encode(detail::LoopKey{ticket_, loop, slot, gen}));
      if (id == 0) {
        std::unique_ptr<detail::Pending> gone = t->remove(slot, true);
        throw std::runtime_error("parley: timer_start failed");
      }
      raw->timer_id = id;
      try {
        t->timers[id] = slot;
      } catch (...) {
        api->timer_cancel(m_, id);
        std::unique_ptr<detail::Pending> gone = t->remove(slot, true);
        throw;
      }
      return id;
    }
  }
  uint64_t id = detail::Shared::get().start_timer(std::move(p), fallback_counts_, start);
  if (id == 0) throw std::runtime_error("parley: timer_start failed");
  return id;
}

inline void Host::run_timer(detail::Pending& p, uint64_t timer_id) noexcept {
  try {
    p.on_timer(timer_id);
  } catch (...) {
    if (p.owner) detail::log_exception(*p.owner, "timer callback", std::current_exception());
  }
}

inline void Host::on_timer(void*, uint64_t timer_id, void* arg) noexcept {
  uint64_t key = detail::arg_key(arg);
  try {
    if (!detail::is_loop_key(key)) {
      detail::Shared::get().fire(key, timer_id, [timer_id](detail::Pending& p) { run_timer(p, timer_id); });
      return;
    }
    detail::LoopKey k = detail::decode(key);
    detail::LoopTable* t = table_of(k);
    if (!t) return;
    t->drain_cancels();
    detail::Pending* p = t->find(k.slot, k.gen, detail::PendingKind::timer);
    if (!p || p->cancelled || p->timer_id != timer_id) return;
    p->firing = true;
    run_timer(*p, timer_id);
    if (p->orphaned) {  // forget_all ran meanwhile (its Host may be gone): p is ours alone
      delete p;
      return;
    }
    p->firing = false;
    if (!p->repeating || p->cancelled) {
      std::unique_ptr<detail::Pending> gone = t->remove(k.slot, !p->cancelled);
    }
  } catch (...) {
  }
}

inline bool Host::cancel_timer(uint64_t id) {
  uint32_t here = detail::max_loops;
  // This loop's timer: no lock.
  if (detail::LoopTable* t = loop_here(&here)) {
    t->drain_cancels();
    if (t->timers.count(id)) {
      if (table()->timer_cancel(m_, id) != 1) return false;
      auto it = t->timers.find(id);
      // Freed now; if cancelled from inside its own callback, when on_timer returns.
      if (it != t->timers.end()) {
        std::unique_ptr<detail::Pending> gone = t->cancel(it->second);
      }
      return true;
    }
  }
  // A timer started off the loops (start(), stop()): in the fallback.
  if (fallback_counts_[static_cast<std::size_t>(detail::PendingKind::timer)].load(std::memory_order_relaxed) != 0) {
    int r = detail::Shared::get().cancel_timer(this, id, [&] { return table()->timer_cancel(m_, id); });
    if (r >= 0) return r == 1;
  }
  // Another loop's (or none): only that loop may touch its table. The host
  // cancels the timer on its loop; the SDK's cancel reaches the loops that
  // have timers through their lock-free inboxes, and each drops it before
  // firing anything (a firing the host had already queued included).
  bool elsewhere = false;
  for (uint32_t l = 0; l < loop_count_; ++l)
    if (l != here && loops_[l].counted(detail::PendingKind::timer) != 0) {
      loops_[l].push_cancel(id);
      elsewhere = true;
    }
  if (!elsewhere) return false;  // fired already, cancelled, or not ours
  return table()->timer_cancel(m_, id) == 1;
}

inline bool Host::send_tracked(parley_session_id session, Element&& stanza, std::function<void(bool)> done) const {
  if (!stanza) detail::fail("parley: send of a null element");
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_send_tracked));
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::sent);
  p->on_sent = done ? std::move(done) : std::function<void(bool)>([](bool) {});
  uint64_t key = keep(std::move(p));
  if (api->session_send_tracked(m_, session, stanza.release(), &Host::on_sent, detail::key_arg(key)) == 1) return true;
  unkeep(key, detail::PendingKind::sent);  // not accepted: done never runs
  return false;
}

inline void Host::on_sent(void*, void* arg, int written) noexcept {
  std::unique_ptr<detail::Pending> p = take(arg, detail::PendingKind::sent);
  if (!p || !p->on_sent || !p->owner) return;  // its Host is gone, or it ran already
  try {
    p->on_sent(written != 0);
  } catch (...) {
    detail::log_exception(*p->owner, "send completion", std::current_exception());
  }
}

inline bool Host::session_attach(parley_session_id detached, parley_session_id stream, AttachFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(session_attach));
  if (!api->session_attach) detail::fail("parley: this host lacks session_attach");
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::attach);
  p->owner = this;
  p->on_attach = done ? std::move(done) : AttachFn([](parley_session_id, bool) {});
  // Always the fallback: the completion may run on another loop than this
  // one (rare: a client resuming its stream). Registered before the call: it
  // may run there before session_attach returns here.
  uint64_t key = detail::Shared::get().add(std::move(p), fallback_counts_);
  if (api->session_attach(m_, detached, stream, &Host::on_attached, detail::key_arg(key)) == 1) return true;
  unkeep(key, detail::PendingKind::attach);
  return false;
}

inline void Host::on_attached(void*, void* arg, parley_session_id session, int attached) noexcept {
  std::unique_ptr<detail::Pending> p = take(arg, detail::PendingKind::attach);
  if (!p || !p->on_attach || !p->owner) return;  // its Host is gone, or it ran already
  try {
    p->on_attach(session, attached != 0);
  } catch (...) {
    detail::log_exception(*p->owner, "attach completion", std::current_exception());
  }
}

inline void Host::storage_call(std::string_view sql, const Value* params, std::size_t count, bool write, RowsFn done) {
  const parley_host_api* api = table();
  if (!supports(PARLEY_HOST_ENTRY_END(rows_changes))) throw std::runtime_error("parley: this host has no module storage");
  std::vector<parley_value> values;
  values.reserve(count);
  for (std::size_t i = 0; i < count; ++i) values.push_back(params[i].raw());
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::rows);
  p->on_rows = std::move(done);
  uint64_t key = keep(std::move(p));
  api->storage_query(m_, detail::to_c(sql), values.data(), count, write ? 1 : 0, &Host::on_rows, detail::key_arg(key));
}

inline void Host::on_rows(void*, void* arg, const parley_rows* rows, parley_str error) noexcept {
  std::unique_ptr<detail::Pending> p = take(arg, detail::PendingKind::rows);
  if (!p || !p->on_rows || !p->owner) return;  // its Host is gone, or it ran already
  const Host& host = *p->owner;
  try {
    if (error.len > 0) p->on_rows(unexpected(std::string(detail::to_sv(error))));
    else p->on_rows(Rows(host.api(), rows));
  } catch (...) {
    detail::log_exception(host, "storage callback", std::current_exception());
  }
}

inline uint64_t Host::archive_keep(ArchiveFn done) const {
  auto p = std::make_unique<detail::Pending>(detail::PendingKind::archive);
  p->on_archive = [done = std::move(done)](const parley_archive_page* page, std::string_view error) {
    if (!done) return;
    if (!error.empty()) done(unexpected(std::string(error)));
    else done(ArchivePage(page));
  };
  return keep(std::move(p));
}

inline uint64_t Host::archive_append(std::string_view owner, std::string_view with, std::string_view payload,
                                     ArchiveFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(archive_remove));
  if (!done)  // nothing to call back: the host need not wake this loop (module.h)
    return api->archive_append(m_, detail::to_c(owner), detail::to_c(with), detail::to_c(payload), nullptr, nullptr);
  uint64_t key = archive_keep(std::move(done));
  uint64_t id = api->archive_append(m_, detail::to_c(owner), detail::to_c(with), detail::to_c(payload),
                                    &Host::on_archive, detail::key_arg(key));
  if (id == 0) unkeep(key, detail::PendingKind::archive);  // refused: done never runs
  return id;
}

inline uint64_t Host::archive_append_at(std::string_view owner, std::string_view with, std::string_view payload,
                                        int64_t timestamp_us, ArchiveFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(archive_append_at));
  if (!done)
    return api->archive_append_at(m_, detail::to_c(owner), detail::to_c(with), detail::to_c(payload), timestamp_us,
                                  nullptr, nullptr);
  uint64_t key = archive_keep(std::move(done));
  uint64_t id = api->archive_append_at(m_, detail::to_c(owner), detail::to_c(with), detail::to_c(payload),
                                       timestamp_us, &Host::on_archive, detail::key_arg(key));
  if (id == 0) unkeep(key, detail::PendingKind::archive);  // refused: done never runs
  return id;
}

inline uint64_t Host::archive_append_paced(parley_session_id session, std::string_view owner, std::string_view with,
                                           std::string_view payload) const {
  if (!supports(PARLEY_HOST_ENTRY_END(archive_append_paced))) return archive_append(owner, with, payload);
  return table()->archive_append_paced(m_, session, detail::to_c(owner), detail::to_c(with), detail::to_c(payload), 0);
}

inline bool Host::archive_query(const ArchiveQuery& q, ArchiveFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(archive_remove));
  parley_archive_query c{};
  c.size = sizeof(parley_archive_query);
  c.owner = detail::to_c(q.owner);
  c.with = detail::to_c(q.with);
  c.start_us = q.start_us;
  c.end_us = q.end_us;
  c.after_id = q.after_id;
  c.before_id = q.before_id;
  static const uint64_t none = 0;
  c.ids = q.by_ids ? (q.ids.empty() ? &none : q.ids.data()) : nullptr;
  c.id_count = q.by_ids ? q.ids.size() : 0;
  c.page_after = q.page_after;
  c.page_before = q.page_before;
  c.from_end = q.from_end ? 1 : 0;
  c.max = q.max;
  c.min_id = q.min_id;
  uint64_t key = archive_keep(std::move(done));
  if (api->archive_query(m_, &c, &Host::on_archive, detail::key_arg(key)) == 1) return true;
  unkeep(key, detail::PendingKind::archive);
  return false;
}

inline bool Host::archive_remove(std::string_view owner, int64_t before_us, ArchiveFn done) const {
  const parley_host_api* api = table_with(PARLEY_HOST_ENTRY_END(archive_remove));
  uint64_t key = archive_keep(std::move(done));
  if (api->archive_remove(m_, detail::to_c(owner), before_us, &Host::on_archive, detail::key_arg(key)) == 1)
    return true;
  unkeep(key, detail::PendingKind::archive);
  return false;
}

inline void Host::on_archive(void*, void* arg, const parley_archive_page* page, parley_str error) noexcept {
  std::unique_ptr<detail::Pending> p = take(arg, detail::PendingKind::archive);
  if (!p || !p->on_archive || !p->owner) return;  // its Host is gone, or it ran already
  try {
    p->on_archive(page, detail::to_sv(error));
  } catch (...) {
    detail::log_exception(*p->owner, "archive callback", std::current_exception());
  }
}

}  // namespace parley
