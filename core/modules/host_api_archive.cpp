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

// One hold of `session` (ABI 1.11) released, on its loop, if the loop still has it (the
// store's loss of its database releases them all).
void release_archive_hold(LoopContext* loop, SessionId session) {
  auto it = loop->archive_holds.find(session);
  if (it == loop->archive_holds.end()) return;
  if (--it->second == 0) loop->archive_holds.erase(it);
  if (Session* s = loop->find(session)) s->release_input();
}

// Every hold this loop took for the archive, released (on the loop).
void release_archive_holds(LoopContext* loop) {
  auto held = std::move(loop->archive_holds);
  loop->archive_holds.clear();
  for (const auto& [id, count] : held)
    if (Session* s = loop->find(id))
      for (uint32_t i = 0; i < count; ++i) s->release_input();
}

// The session an append holds, released once the append is stored or failed.
struct PacedHold {
  LoopContext* loop = nullptr;
  SessionId session = 0;
};

uint64_t append_at(parley_module* m, parley_str owner, parley_str with, parley_str payload, int64_t timestamp_us,
                   parley_archive_fn done, void* arg, PacedHold hold = {}) {
  LoopContext* loop = LoopContext::current();
  storage::ArchiveStore* store = m->ctx->archive;
  if (loop == nullptr || store == nullptr || owner.len == 0 || timestamp_us <= 0) return 0;
  storage::ArchiveEntry entry{0, timestamp_us, str(with), str(payload)};
  m->storage_in_flight.fetch_add(1);
  storage::ArchiveStore::AppendDone completion;
  if (hold.session != 0) {
    completion = [m, hold](Result<void, storage::ArchiveError> r) {
      if (!r) log_unarchived(m, "an append failed: " + r.error().message);
      hold.loop->loop.post([hold] { release_archive_hold(hold.loop, hold.session); });
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
  uint64_t id = store->append(key_of(m, str(owner)), std::move(entry), std::move(completion));
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
  PacedHold hold;
  // Behind: more waiting than the pace mark while the store works through it (an outage
  // is not pacing's business: appends then wait, and past the bound are refused).
  if (store != nullptr && store->queue_length() > ctx.config.limits.archive_pace_queue && store->available()) {
    if (Session* s = host_support::session_here(m, session)) {
      s->hold_input();
      ++loop->archive_holds[session];
      hold = PacedHold{loop, session};
    }
  }
  const uint64_t id = append_at(m, owner, with, payload, timestamp_us, nullptr, nullptr, hold);
  // No completion will come (refused), or not before the database is back: the store went
  // away (if it did after this read, its on_archive_unavailable posts to this loop after
  // the hold was taken, and releases it). Released now, posted: never during this call,
  // or the stanzas waiting would run before the one this append is for went its way.
  if (hold.session != 0 && (id == 0 || !store->available()))
    loop->loop.post([hold] { release_archive_hold(hold.loop, hold.session); });
  return id;
}

void on_archive_unavailable(ServerContext& ctx) {
  for (auto& each : ctx.loops) {
    LoopContext* loop = each.get();
    loop->loop.post([loop] { release_archive_holds(loop); });
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
