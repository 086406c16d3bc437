#include "core/modules/host_api_archive.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/modules/host_api_support.hpp"
#include "core/modules/module_instance.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "storage/archive_store.hpp"

namespace parley::host_archive {

namespace {

std::string str(parley_str s) { return s.ptr ? std::string(s.ptr, s.len) : std::string(); }

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

storage::ArchiveKey key_of(parley_module* m, std::string owner) {
  return storage::ArchiveKey{m->store_scope, std::move(owner)};
}

// Runs the module's completion on `loop` through the instance's gate unless it was stopped
// (as storage completions: the state is being or has been freed), and ends the in-flight count.
void complete(parley_module* m, LoopContext* loop, parley_archive_fn done, void* arg,
              std::shared_ptr<storage::ArchivePage> page, std::string error) {
  loop->loop.post([m, done, arg, page = std::move(page), error = std::move(error)] {
    if (done != nullptr) {
      m->gate.run([&] {
        std::vector<parley_archive_entry> entries;
        parley_archive_page view{sizeof(parley_archive_page), nullptr, 0, 0, 0, 0};
        if (page) {
          entries.reserve(page->entries.size());
          for (const auto& e : page->entries)
            entries.push_back(parley_archive_entry{e.id, e.timestamp_us, parley_str{e.with.data(), e.with.size()},
                                                   parley_str{e.payload.data(), e.payload.size()}});
          view.entries = entries.data();
          view.count = entries.size();
          view.total = page->total;
          view.index = page->index;
          view.complete = page->complete ? 1 : 0;
        }
        try {
          done(m->state, arg, error.empty() ? &view : nullptr, parley_str{error.data(), error.size()});
        } catch (...) {
          spdlog::error("module {}: exception escaped an archive callback", m->library->name);
        }
      });
    }
    m->storage_in_flight.fetch_sub(1);
  });
}

}  // namespace

namespace {

// An append refused (the queue full, or stopping) or failed leaves a message unarchived
// though delivered: said in the log, at most once every 10 s with the count since, so
// that a flood of them neither goes unseen nor floods the log. Any thread.
void log_unarchived(const parley_module* m, std::string_view why) {
  static std::atomic<uint64_t> unlogged{0};
  static std::atomic<int64_t> logged_at_us{0};
  unlogged.fetch_add(1, std::memory_order_relaxed);
  const int64_t now = now_us();
  int64_t last = logged_at_us.load(std::memory_order_relaxed);
  if (now - last < 10'000'000 || !logged_at_us.compare_exchange_strong(last, now)) return;
  spdlog::warn("archive: {} message(s) not archived since the last such line (the latest: module {}, {})",
               unlogged.exchange(0, std::memory_order_relaxed), m->library->name, why);
}

// The holds of `loop` that can go, released (on the loop): those whose appends were
// refused, and those whose appends have completed (`all`: every one, the store having
// lost its database).
void release_archive_holds(LoopContext* loop, bool all) {
  ArchiveHolds& holds = loop->archive_holds;
  std::vector<SessionId> now;
  now.swap(holds.release_now);
  for (SessionId id : now)
    if (Session* s = loop->find(id)) s->release_input();
  // seq_cst, as the store's mark and `posted` (wake_for_holds).
  const uint64_t mark = all ? UINT64_MAX : holds.store != nullptr ? holds.store->completed_through() : 0;
  while (!holds.waiting.empty() && holds.waiting.front().first <= mark) {
    const SessionId id = holds.waiting.front().second;
    holds.waiting.pop_front();
    if (Session* s = loop->find(id)) s->release_input();
  }
}

void run_release_task(LoopTask* task, bool run) {
  if (!run) return;  // the loop is being destroyed, its holds with it
  LoopContext* loop = static_cast<ArchiveHolds::Task*>(task)->loop;
  // Cleared before the mark is read: an append completed after the read posts again.
  loop->archive_holds.posted.store(false);
  release_archive_holds(loop, false);
}

// Any thread (the store's, as an append `loop` holds a client for completes): has the loop
// release what completed, with one post at most in flight however many complete.
void wake_for_holds(LoopContext* loop) {
  ArchiveHolds& holds = loop->archive_holds;
  if (holds.posted.exchange(true)) return;
  loop->loop.post_task(&holds.task);
}

std::string_view view(parley_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }

// paced: the append holds a client of this loop until it completes.
uint64_t append_at(parley_module* m, parley_str owner, parley_str with, parley_str payload, int64_t timestamp_us,
                   parley_archive_fn done, void* arg, bool paced = false) {
  LoopContext* loop = LoopContext::current();
  storage::ArchiveStore* store = m->ctx->archive;
  if (loop == nullptr || store == nullptr || owner.len == 0 || timestamp_us <= 0) return 0;
  const storage::ArchiveAppend entry{m->store_scope, view(owner), view(with), view(payload), timestamp_us};
  m->storage_in_flight.fetch_add(1);
  storage::ArchiveStore::AppendDone completion;
  if (paced) {
    // Two pointers: std::function keeps them without allocating.
    completion = [m, loop](Result<void, storage::ArchiveError> r) {
      if (!r) log_unarchived(m, "an append failed: " + r.error().message);
      wake_for_holds(loop);
      m->storage_in_flight.fetch_sub(1);
    };
  } else if (done != nullptr) {
    completion = [m, loop, done, arg](Result<void, storage::ArchiveError> r) {
      if (r) complete(m, loop, done, arg, std::make_shared<storage::ArchivePage>(), {});
      else complete(m, loop, done, arg, nullptr, r.error().condition);
    };
  } else {
    // Nothing to tell the module: no wake-up of its loop per append (the hot path of an
    // archiving server); a failure is logged here, on the store's thread.
    completion = [m](Result<void, storage::ArchiveError> r) {
      if (!r) log_unarchived(m, "an append failed: " + r.error().message);
      m->storage_in_flight.fetch_sub(1);
    };
  }
  uint64_t id = store->append(entry, std::move(completion));
  if (id == 0) {  // refused: done never runs
    m->storage_in_flight.fetch_sub(1);
    log_unarchived(m, "the archive queue is full or the store is stopping");
  }
  return id;
}

}  // namespace

uint64_t archive_append(parley_module* m, parley_str owner, parley_str with, parley_str payload,
                        parley_archive_fn done, void* arg) {
  return append_at(m, owner, with, payload, now_us(), done, arg);
}

uint64_t archive_append_at(parley_module* m, parley_str owner, parley_str with, parley_str payload,
                           int64_t timestamp_us, parley_archive_fn done, void* arg) {
  // The stores keep whatever timestamp an entry carries (ids stay increasing in queue
  // order: they are max(last + 1, timestamp), see storage/archive_store.hpp).
  return append_at(m, owner, with, payload, timestamp_us, done, arg);
}

uint64_t archive_append_paced(parley_module* m, parley_session_id session, parley_str owner, parley_str with,
                              parley_str payload, int64_t timestamp_us) {
  if (timestamp_us == 0) timestamp_us = now_us();
  LoopContext* loop = LoopContext::current();
  ServerContext& ctx = *m->ctx;
  storage::ArchiveStore* store = ctx.archive;
  Session* held = nullptr;
  // Behind: more waiting than the pace mark while the store works through it (an outage
  // is not pacing's business: appends then wait, and past the bound are refused).
  if (store != nullptr && store->queue_length() > ctx.config.limits.archive_pace_queue && store->available()) {
    // Held before the append is queued: its completion may come before this returns.
    if ((held = host_support::session_here(m, session)) != nullptr) held->hold_input();
  }
  const uint64_t id = append_at(m, owner, with, payload, timestamp_us, nullptr, nullptr, held != nullptr);
  if (held == nullptr || loop == nullptr) return id;
  ArchiveHolds& holds = loop->archive_holds;
  if (holds.task.fn == nullptr) {
    holds.task.fn = &run_release_task;
    holds.task.loop = loop;
  }
  holds.store = store;
  // No completion will come (refused), or not before the database is back: the store went
  // away (if it did after this read, its on_archive_unavailable posts to this loop, after
  // this, and releases every hold). Released by the task, posted: never during this call,
  // or the stanzas waiting would run before the one this append is for went its way.
  if (id == 0 || !store->available()) {
    holds.release_now.push_back(session);
    wake_for_holds(loop);
    return id;
  }
  // Completed already or not, the task that releases it runs after this call (on this loop).
  holds.waiting.emplace_back(id, session);
  return id;
}

void on_archive_unavailable(ServerContext& ctx) {
  for (auto& each : ctx.loops) {
    LoopContext* loop = each.get();
    loop->loop.post([loop] { release_archive_holds(loop, true); });
  }
}

int archive_query(parley_module* m, const parley_archive_query* q, parley_archive_fn done, void* arg) {
  LoopContext* loop = LoopContext::current();
  storage::ArchiveStore* store = m->ctx->archive;
  // The fields up to `max` are the first version's: a smaller struct is refused.
  if (loop == nullptr || store == nullptr || q == nullptr || q->size < sizeof(parley_archive_query) ||
      q->owner.len == 0)
    return 0;
  storage::ArchiveQuery query;
  query.key = key_of(m, str(q->owner));
  query.with = str(q->with);
  query.start_us = q->start_us;
  query.end_us = q->end_us;
  query.after_id = q->after_id;
  if (q->size >= offsetof(parley_archive_query, min_id) + sizeof(uint64_t)) query.min_id = q->min_id;  // 1.10
  query.before_id = q->before_id;
  if (q->ids != nullptr) {
    query.by_ids = true;
    query.ids.assign(q->ids, q->ids + q->id_count);
  }
  query.page_after = q->page_after;
  query.page_before = q->page_before;
  query.from_end = q->from_end != 0;
  query.max = q->max;
  m->storage_in_flight.fetch_add(1);
  store->query(std::move(query), [m, loop, done, arg](Result<storage::ArchivePage, storage::ArchiveError> r) {
    if (r) complete(m, loop, done, arg, std::make_shared<storage::ArchivePage>(std::move(*r)), {});
    else complete(m, loop, done, arg, nullptr, r.error().condition);
  });
  return 1;
}

int archive_remove(parley_module* m, parley_str owner, int64_t before_us, parley_archive_fn done, void* arg) {
  LoopContext* loop = LoopContext::current();
  storage::ArchiveStore* store = m->ctx->archive;
  if (loop == nullptr || store == nullptr) return 0;
  m->storage_in_flight.fetch_add(1);
  store->remove(key_of(m, str(owner)), before_us, [m, loop, done, arg](Result<uint64_t, storage::ArchiveError> r) {
    if (r) {
      auto page = std::make_shared<storage::ArchivePage>();
      page->total = *r;
      complete(m, loop, done, arg, std::move(page), {});
    } else {
      complete(m, loop, done, arg, nullptr, r.error().condition);
    }
  });
  return 1;
}

}  // namespace parley::host_archive
