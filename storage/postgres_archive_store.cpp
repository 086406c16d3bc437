#include "storage/postgres_archive_store.hpp"

#include "storage/pg_binary_array.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace parley::storage {

namespace postgres_archive {

namespace {

constexpr std::array<std::string_view, 2> kMigrations = {
    // As the SQLite table: ids are the store's (store-wide unique, increasing in queue
    // order, never below the entry's timestamp in microseconds), so expiry is a range of
    // the primary key; a page of one archive is a range scan of archive_by_owner, with= of
    // archive_by_with.
    "CREATE TABLE archive (id BIGINT PRIMARY KEY, scope TEXT NOT NULL, owner TEXT NOT NULL, ts BIGINT NOT NULL, "
    "with_bare TEXT NOT NULL, with_full TEXT NOT NULL, payload BYTEA NOT NULL);"
    "CREATE INDEX archive_by_owner ON archive (scope, owner, id);"
    "CREATE INDEX archive_by_with ON archive (scope, owner, with_bare, id);",
    // The text columns compare bytewise (collation "C"), not by the database's locale: the
    // archive only ever asks them for equality (pages are in id order), and every append
    // puts (scope, owner[, with_bare]) into both indexes, whose comparisons otherwise go
    // through strcoll (a visible share of PostgreSQL's CPU per append in the profiles of
    // bench/chat_mam.py; more with a locale like en_US.UTF-8). The table is not rewritten
    // (the type stays text); the indexes are rebuilt once.
    "ALTER TABLE archive ALTER COLUMN scope TYPE TEXT COLLATE \"C\", ALTER COLUMN owner TYPE TEXT COLLATE \"C\", "
    "ALTER COLUMN with_bare TYPE TEXT COLLATE \"C\", ALTER COLUMN with_full TYPE TEXT COLLATE \"C\"",
};

constexpr int64_t kMaxId = std::numeric_limits<int64_t>::max();

PgError not_found(uint64_t id) { return PgError{false, "no entry with id " + std::to_string(id), std::string(kNotFound)}; }

std::string placeholder(std::vector<PgParam>& params, PgParam p) {
  params.push_back(std::move(p));
  return "$" + std::to_string(params.size());
}

// The filters of a query, appending their parameters.
std::string filters(const ArchiveQuery& q, std::vector<PgParam>& params) {
  std::string sql = " WHERE scope = " + placeholder(params, PgParam::text(q.key.scope));
  sql += " AND owner = " + placeholder(params, PgParam::text(q.key.owner));
  // A full JID is asked with its bare JID too: archive_by_with's prefix, so that the page
  // reads that contact's entries, not every entry of the owner (a sparse contact's were
  // a scan of the whole archive).
  if (const auto slash = q.with.find('/'); slash != std::string::npos) {
    sql += " AND with_bare = " + placeholder(params, PgParam::text(archive_bare(q.with)));
    sql += " AND with_full = " + placeholder(params, PgParam::text(q.with));
  } else if (!q.with.empty()) {
    sql += " AND with_bare = " + placeholder(params, PgParam::text(q.with));
  }
  // Unbounded sides are left out (not "ts >= min"): fewer parameters, and each prepared
  // variant plans for the filters it has.
  if (q.start_us != std::numeric_limits<int64_t>::min())
    sql += " AND ts >= " + placeholder(params, PgParam::integer(q.start_us));
  if (q.end_us != std::numeric_limits<int64_t>::max())
    sql += " AND ts <= " + placeholder(params, PgParam::integer(q.end_us));
  if (const uint64_t above = ids_above(q); above != 0)  // after_id, or what start implies (archive_store.hpp)
    sql += " AND id > " + placeholder(params, PgParam::integer(static_cast<int64_t>(above)));
  if (q.before_id != 0) sql += " AND id < " + placeholder(params, PgParam::integer(static_cast<int64_t>(q.before_id)));
  if (q.by_ids) {
    std::string list = "{";
    for (size_t i = 0; i < q.ids.size(); ++i) list += (i ? "," : "") + std::to_string(q.ids[i]);
    sql += " AND id = ANY(" + placeholder(params, PgParam::text(list + "}")) + "::bigint[])";
  }
  return sql;
}

// The entries of the query's set with above < id < below (0: no such bound), at most
// `limit` of them (0: all). PostgreSQL ranges its index scan by the tightest of several
// bounds, so these are conditions of their own.
Result<int64_t, PgError> count(PgConnection& db, const ArchiveQuery& q, uint64_t above, uint64_t below,
                               uint64_t limit) {
  std::vector<PgParam> params;
  std::string sql = (limit == 0 ? "SELECT COUNT(*) FROM archive" : "SELECT COUNT(*) FROM (SELECT 1 FROM archive") +
                    filters(q, params);
  auto id = [](uint64_t v) { return PgParam::integer(static_cast<int64_t>(std::min<uint64_t>(v, kMaxId))); };
  if (above != 0) sql += " AND id > " + placeholder(params, id(above));
  if (below != 0) sql += " AND id < " + placeholder(params, id(below));
  if (limit != 0) sql += " LIMIT " + placeholder(params, PgParam::integer(static_cast<int64_t>(limit))) + ") AS bounded";
  auto rows = db.run(sql, params);
  if (!rows) return unexpected(rows.error());
  return rows->rows() ? rows->int64(0, 0) : 0;
}

Result<bool, PgError> exists(PgConnection& db, const ArchiveKey& key, uint64_t id) {
  if (id == 0 || id > static_cast<uint64_t>(kMaxId)) return false;
  PgParam params[] = {PgParam::text(key.scope), PgParam::text(key.owner), PgParam::integer(static_cast<int64_t>(id))};
  auto rows = db.run("SELECT 1 FROM archive WHERE scope = $1 AND owner = $2 AND id = $3", params);
  if (!rows) return unexpected(rows.error());
  return rows->rows() > 0;
}

}  // namespace

std::span<const std::string_view> migrations() { return kMigrations; }

Result<void, PgError> append(PgConnection& db, const ArchiveKey& key, const ArchiveEntry& entry, bool retry) {
  PackedAppend packed(ArchiveAppend{key.scope, key.owner, entry.with, entry.payload, entry.timestamp_us});
  packed.id = entry.id;
  return append(db, packed, retry);
}

Result<void, PgError> append(PgConnection& db, const PackedAppend& entry, bool retry) {
  if (entry.id == 0 || entry.id > static_cast<uint64_t>(kMaxId))
    return unexpected(PgError{false, "archive id out of range", {}});
  // One append at a time (a batch cut by an error, run again one by one): copies are fine.
  PgParam params[] = {PgParam::text(std::string(entry.scope())),
                      PgParam::text(std::string(entry.owner())),
                      PgParam::integer(static_cast<int64_t>(entry.id)),
                      PgParam::integer(entry.timestamp_us),
                      PgParam::text(std::string(archive_bare_view(entry.with()))),
                      PgParam::text(std::string(entry.with())),
                      PgParam::bytes(std::string(entry.payload()))};
  static const std::string kInsert =
      "INSERT INTO archive (scope, owner, id, ts, with_bare, with_full, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)";
  static const std::string kRetry = kInsert + " ON CONFLICT (id) DO NOTHING";
  auto r = db.run(retry ? kRetry : kInsert, params);
  if (!r) return unexpected(r.error());
  return {};
}

Result<void, PgError> append_many(PgConnection& db, std::span<const PackedAppend* const> entries, bool retry) {
  // Seven arrays, one statement, one round trip (an INSERT per entry would cost a round
  // trip each, and bound the store's rate by the latency to the database).
  const size_t n = entries.size();
  size_t scope_bytes = 0, owner_bytes = 0, with_bytes = 0, payload_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const PackedAppend& e = *entries[i];
    if (e.id == 0 || e.id > static_cast<uint64_t>(kMaxId))
      return unexpected(PgError{false, "archive id out of range", {}});
    // An element's length is an int32 (a stanza is far smaller: limits.max_stanza_size).
    if (e.payload().size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()) ||
        e.with().size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
      return unexpected(PgError{false, "archive entry too large", {}});
    scope_bytes += e.scope().size();
    owner_bytes += e.owner().size();
    with_bytes += e.with().size();
    payload_bytes += e.payload().size();
  }
  BinaryArray scope(BinaryArray::kText, n, scope_bytes), owner(BinaryArray::kText, n, owner_bytes),
      id(BinaryArray::kInt8, n, n * 8), ts(BinaryArray::kInt8, n, n * 8), bare(BinaryArray::kText, n, with_bytes),
      full(BinaryArray::kText, n, with_bytes), payload(BinaryArray::kBytea, n, payload_bytes);
  for (size_t i = 0; i < n; ++i) {
    const PackedAppend& e = *entries[i];
    scope.add(e.scope());
    owner.add(e.owner());
    id.add(static_cast<int64_t>(e.id));
    ts.add(e.timestamp_us);
    bare.add(archive_bare_view(e.with()));
    full.add(e.with());
    payload.add(e.payload());
  }
  PgParam params[] = {std::move(scope).param(), std::move(owner).param(), std::move(id).param(),
                      std::move(ts).param(),    std::move(bare).param(),  std::move(full).param(),
                      std::move(payload).param()};
  static const std::string kInsert =
      "INSERT INTO archive (scope, owner, id, ts, with_bare, with_full, payload) "
      "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], "
      "$7::bytea[])";
  static const std::string kRetry = kInsert + " ON CONFLICT (id) DO NOTHING";
  auto r = db.run(retry ? kRetry : kInsert, params);
  if (!r) return unexpected(r.error());
  return {};
}

Result<ArchivePage, PgError> query(PgConnection& db, const ArchiveQuery& q, ArchiveTotals* totals) {
  for (uint64_t id : {q.after_id, q.before_id, q.page_after, q.page_before}) {
    if (id == 0) continue;
    auto found = exists(db, q.key, id);
    if (!found) return unexpected(found.error());
    if (!*found) return unexpected(not_found(id));
  }
  // XEP-0313 section 4.1.2: every id named must be in the archive.
  if (q.by_ids)
    for (uint64_t id : q.ids) {
      auto found = exists(db, q.key, id);
      if (!found) return unexpected(found.error());
      if (!*found) return unexpected(not_found(id));
    }
  ArchivePage page;
  auto counter = [&](const ArchiveQuery& set, uint64_t above, uint64_t below, uint64_t limit) {
    return count(db, set, above, below, limit);
  };
  // The whole archive's size is kept (archive_totals.hpp): a COUNT of it read every entry.
  auto total = set_total(totals, q, counter);
  if (!total) return unexpected(total.error());
  page.total = *total;
  if (q.max == 0) {
    page.complete = page.total == 0;
    return page;
  }
  std::vector<PgParam> params;
  std::string sql = "SELECT id, ts, with_full, payload FROM archive" + filters(q, params);
  if (q.from_end) {
    if (q.page_before != 0)
      sql += " AND id < " + placeholder(params, PgParam::integer(static_cast<int64_t>(q.page_before)));
    sql += " ORDER BY id DESC";
  } else {
    if (q.page_after != 0)
      sql += " AND id > " + placeholder(params, PgParam::integer(static_cast<int64_t>(q.page_after)));
    sql += " ORDER BY id ASC";
  }
  // One more than the page: whether the set goes on.
  sql += " LIMIT " + placeholder(params, PgParam::integer(static_cast<int64_t>(q.max) + 1));
  auto rows = db.run(sql, params);
  if (!rows) return unexpected(rows.error());
  const int n = rows->rows();
  for (int i = 0; i < n && page.entries.size() < q.max; ++i) {
    ArchiveEntry e;
    e.id = static_cast<uint64_t>(rows->int64(i, 0));
    e.timestamp_us = rows->int64(i, 1);
    e.with = std::string(rows->bytes(i, 2));
    e.payload = std::string(rows->bytes(i, 3));
    page.entries.push_back(std::move(e));
  }
  page.complete = static_cast<uint64_t>(n) <= q.max;
  if (q.from_end) std::reverse(page.entries.begin(), page.entries.end());
  if (!page.entries.empty()) {
    auto index = page_index(q, page.total, page.entries.front().id, counter);
    if (!index) return unexpected(index.error());
    page.index = *index;
  }
  return page;
}

Result<uint64_t, PgError> remove(PgConnection& db, const ArchiveKey& key, int64_t before_us) {
  // Every archive of the scope (expiry): the entries older than before_us have ids below
  // it too (see the SQLite store), so the scan is a range of the primary key.
  if (key.owner.empty()) {
    PgParam params[] = {PgParam::text(key.scope), PgParam::integer(before_us)};
    auto r = db.run("DELETE FROM archive WHERE id < $2 AND ts < $2 AND scope = $1", params);
    if (!r) return unexpected(r.error());
    return r->affected();
  }
  PgParam params[] = {PgParam::text(key.scope), PgParam::integer(before_us), PgParam::text(key.owner)};
  auto r = db.run("DELETE FROM archive WHERE scope = $1 AND owner = $3 AND ts < $2", params);
  if (!r) return unexpected(r.error());
  return r->affected();
}

}  // namespace postgres_archive

namespace {

ArchiveError to_archive_error(const PgError& e) {
  if (e.sqlstate == postgres_archive::kNotFound) return ArchiveError{"item-not-found", e.message};
  return ArchiveError{"internal-server-error", e.message};
}

}  // namespace

PostgresArchiveStore::PostgresArchiveStore(std::string url, size_t max_queue)
    : link_(std::move(url), "archive"), queue_(max_queue) {
  link_.set_on_lost([this] { became_unavailable(); });
}

PostgresArchiveStore::~PostgresArchiveStore() { stop(); }

Result<void, Error> PostgresArchiveStore::start() {
  std::lock_guard lock(lifecycle_);
  if (started_) return unexpected(Error{0, "archive store already started"});
  if (auto c = link_.connect(); !c) return unexpected(Error{0, c.error().message});
  if (auto r = pg_migrate(link_.db(), "archive", postgres_archive::migrations()); !r) {
    link_.close();
    return unexpected(Error{0, "migrating the archive schema: " + r.error().message});
  }
  // Ids go on above every id stored, even if the clock went back meanwhile.
  auto rows = link_.db().run("SELECT MAX(id) FROM archive", {});
  if (!rows) {
    link_.close();
    return unexpected(Error{0, rows.error().message});
  }
  uint64_t max_id = rows->rows() && !rows->is_null(0, 0) ? static_cast<uint64_t>(rows->int64(0, 0)) : 0;
  queue_.locked([&] { last_id_ = std::max(last_id_, max_id); });
  thread_ = std::thread([this] { run(); });
  started_ = true;
  return {};
}

void PostgresArchiveStore::fail(Op& op, ArchiveError error) {
  try {
    switch (op.kind) {
      case Op::Kind::append:
        completing(op.entry.id);
        if (op.on_append) op.on_append(unexpected(std::move(error)));
        break;
      case Op::Kind::query:
        if (op.request->on_query) op.request->on_query(unexpected(std::move(error)));
        break;
      case Op::Kind::remove:
        if (op.request->on_remove) op.request->on_remove(unexpected(std::move(error)));
        break;
    }
  } catch (...) {
  }
}

bool PostgresArchiveStore::push(Op&& op, uint64_t* id) {
  // A query also wakes a thread waiting to reconnect: it fails at once, not after the
  // back-off.
  const bool is_query = op.kind == Op::Kind::query;
  bool queued = queue_.push(
      std::move(op),
      [&](Op& queued_op) {
        if (id == nullptr) return;
        // Made under the queue's lock, as the append takes its place (see the SQLite store).
        uint64_t now = queued_op.entry.timestamp_us > 0 ? static_cast<uint64_t>(queued_op.entry.timestamp_us) : 0;
        last_id_ = std::max(last_id_ + 1, now);
        queued_op.entry.id = *id = last_id_;
      },
      is_query);
  if (!queued && id == nullptr)
    fail(op, ArchiveError{"resource-constraint", "the archive store is stopping or its queue is full"});
  return queued;
}

uint64_t PostgresArchiveStore::append(const ArchiveAppend& entry, AppendDone done) {
  Op op{Op::Kind::append, PackedAppend(entry), std::move(done), nullptr};
  uint64_t id = 0;
  return push(std::move(op), &id) ? id : 0;
}

void PostgresArchiveStore::query(ArchiveQuery query, QueryDone done) {
  auto request = std::make_unique<Request>();
  request->query = std::move(query);
  request->on_query = std::move(done);
  push(Op{Op::Kind::query, {}, {}, std::move(request)});
}

void PostgresArchiveStore::remove(ArchiveKey key, int64_t before_us, RemoveDone done) {
  auto request = std::make_unique<Request>();
  request->key = std::move(key);
  request->before_us = before_us;
  request->on_remove = std::move(done);
  push(Op{Op::Kind::remove, {}, {}, std::move(request)});
}

void PostgresArchiveStore::requeue(OpBatch<Op>& batch, size_t from) {
  totals_.clear();  // the transaction they were counted in is gone
  auto failed = queue_.put_back(
      batch, from, [](const Op& op) { return op.kind == Op::Kind::query; },
      [](Op& op) {
        if (op.kind == Op::Kind::append) op.retry = true;
      });
  for (Op& op : failed) fail(op, ArchiveError{"internal-server-error", "the archive database connection was lost"});
}

void PostgresArchiveStore::run() {
  pg_store_run(
      queue_, link_, kMaxBatch, [](const Op& op) { return op.kind == Op::Kind::query; },
      [this](Op& op) { fail(op, ArchiveError{"internal-server-error", "the archive database is unreachable"}); },
      [this](OpBatch<Op>& batch) { run_batch(batch); });
}

bool PostgresArchiveStore::run_batch(OpBatch<Op>& batch) {
  // One transaction for the batch; completions only after the commit, so that nothing is
  // reported stored before it is.
  struct Outcome {
    std::optional<Result<void, PgError>> appended;
    std::optional<Result<ArchivePage, PgError>> page;
    std::optional<Result<uint64_t, PgError>> removed;
  };
  std::vector<Outcome> outcomes(batch.size());
  bool failed = false;  // a statement failed: the transaction is void
  auto begun = link_.db().exec("BEGIN");
  if (!begun) {
    if (!link_.db().broken()) link_.drop();  // a connection that cannot begin is of no use
    requeue(batch, 0);
    return false;
  }
  for (size_t i = 0; i < batch.size() && !failed; ++i) {
    Op& op = batch[i];
    const PgError* error = nullptr;
    switch (op.kind) {
      case Op::Kind::append: {
        // The appends queued one after the other: one statement (group commit's other half).
        size_t end = i;
        bool retry = false;
        std::vector<const PackedAppend*> entries;
        while (end < batch.size() && batch[end].kind == Op::Kind::append) {
          entries.push_back(&batch[end].entry);
          retry = retry || batch[end].retry;
          ++end;
        }
        auto r = postgres_archive::append_many(link_.db(), entries, retry);
        for (size_t k = i; k < end; ++k) outcomes[k].appended = r;
        if (!r) error = &outcomes[i].appended->error();
        // A retried batch may have landed before: its rows are not all new.
        if (r && retry) totals_.clear();
        if (r && !retry)
          for (const PackedAppend* e : entries) totals_.appended(e->scope(), e->owner());
        i = end - 1;
        break;
      }
      case Op::Kind::query:
        outcomes[i].page = postgres_archive::query(link_.db(), op.request->query, &totals_);
        // item-not-found is an answer, not a failed statement.
        if (!*outcomes[i].page && outcomes[i].page->error().sqlstate != postgres_archive::kNotFound)
          error = &outcomes[i].page->error();
        break;
      case Op::Kind::remove:
        if (op.request->key.owner.empty())
          totals_.clear();
        else
          totals_.forget(op.request->key);
        outcomes[i].removed = postgres_archive::remove(link_.db(), op.request->key, op.request->before_us);
        if (!*outcomes[i].removed) error = &outcomes[i].removed->error();
        break;
    }
    if (error != nullptr && error->broken) {
      requeue(batch, 0);
      return false;
    }
    if (error != nullptr) failed = true;
  }
  if (failed) {
    // One operation's error (a duplicate id, say) voids PostgreSQL's transaction: the
    // others must not pay for it. Again, each in a transaction of its own.
    if (auto r = link_.db().exec("ROLLBACK"); !r) {
      requeue(batch, 0);
      return false;
    }
    run_one_by_one(batch);
    return true;
  }
  auto committed = link_.db().exec("COMMIT");
  if (!committed) {
    // Lost during the commit: it may have landed or not. The writes are retried (the
    // appends as no-ops if it did); the queries fail.
    if (committed.error().broken || link_.db().broken()) {
      requeue(batch, 0);
      return false;
    }
    run_one_by_one(batch);
    return true;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    Outcome& out = outcomes[i];
    try {
      switch (op.kind) {
        case Op::Kind::append:
          completing(op.entry.id);
          if (op.on_append) op.on_append(Result<void, ArchiveError>{});
          break;
        case Op::Kind::query:
          if (op.request->on_query) {
            if (*out.page)
              op.request->on_query(std::move(**out.page));
            else
              op.request->on_query(unexpected(to_archive_error(out.page->error())));
          }
          break;
        case Op::Kind::remove:
          if (op.request->on_remove) op.request->on_remove(**out.removed);
          break;
      }
    } catch (...) {
      // Completions must not throw; one that does loses only itself.
    }
  }
  return true;
}

void PostgresArchiveStore::run_one_by_one(OpBatch<Op>& batch) {
  totals_.clear();  // counted in the batch's transaction, which was rolled back; none kept here
  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    auto begun = link_.db().exec("BEGIN");
    if (!begun) {
      if (!link_.db().broken()) link_.drop();
      requeue(batch, i);
      return;
    }
    std::optional<PgError> error;
    std::optional<ArchivePage> page;
    uint64_t removed = 0;
    switch (op.kind) {
      case Op::Kind::append:
        if (auto r = postgres_archive::append(link_.db(), op.entry, op.retry); !r) error = r.error();
        break;
      case Op::Kind::query:
        if (auto r = postgres_archive::query(link_.db(), op.request->query); r)
          page = std::move(*r);
        else
          error = r.error();
        break;
      case Op::Kind::remove:
        if (auto r = postgres_archive::remove(link_.db(), op.request->key, op.request->before_us); r)
          removed = *r;
        else
          error = r.error();
        break;
    }
    if (error && error->broken) {
      requeue(batch, i);
      return;
    }
    auto ended = link_.db().exec(error ? "ROLLBACK" : "COMMIT");
    if (!ended && (ended.error().broken || link_.db().broken())) {
      requeue(batch, i);
      return;
    }
    if (!ended && !error) error = ended.error();
    try {
      if (error) {
        fail(op, to_archive_error(*error));
        continue;
      }
      switch (op.kind) {
        case Op::Kind::append:
          completing(op.entry.id);
          if (op.on_append) op.on_append(Result<void, ArchiveError>{});
          break;
        case Op::Kind::query:
          if (op.request->on_query) op.request->on_query(std::move(*page));
          break;
        case Op::Kind::remove:
          if (op.request->on_remove) op.request->on_remove(removed);
          break;
      }
    } catch (...) {
    }
  }
}

void PostgresArchiveStore::stop() {
  std::lock_guard lock(lifecycle_);
  queue_.stop(stop_grace_);
  if (thread_.joinable()) thread_.join();
  for (Op& op : queue_.drain()) fail(op, ArchiveError{"internal-server-error", "the archive store stopped"});
  link_.close();
}

}  // namespace parley::storage
