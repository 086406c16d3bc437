#include "storage/postgres_archive_store.hpp"

#include "storage/pg_binary_array.hpp"

#include <algorithm>
#include <array>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley::storage {

namespace postgres_archive {

namespace {

constexpr std::array<std::string_view, 3> kMigrations = {
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
    // Integer keys in the indexes, as the SQLite archive's step 2: each append put (scope,
    // owner, id) and (scope, owner, with_bare, id), ~60-80 bytes of text, into the indexes,
    // and a third of PostgreSQL's CPU per append went to comparing and deforming those
    // tuples (memcmp, _bt_compare, nocache_index_getattr: bench/chat_mam.py under perf;
    // BENCHMARKS.md, "Session 18"). Keyed by (owner_id, ...) an index tuple is fixed-width
    // and its comparisons are integer ones. The rows are moved in id order and the table
    // rebuilt under its old name.
    "CREATE TABLE archive_owner (id BIGSERIAL PRIMARY KEY, scope TEXT COLLATE \"C\" NOT NULL, "
    "owner TEXT COLLATE \"C\" NOT NULL, UNIQUE (scope, owner));"
    "CREATE TABLE archive_jid (id BIGSERIAL PRIMARY KEY, jid TEXT COLLATE \"C\" NOT NULL UNIQUE);"
    "INSERT INTO archive_owner (scope, owner) SELECT DISTINCT scope, owner FROM archive ORDER BY scope, owner;"
    "INSERT INTO archive_jid (jid) SELECT DISTINCT with_bare FROM archive ORDER BY with_bare;"
    "CREATE TABLE archive_v3 (id BIGINT PRIMARY KEY, owner_id BIGINT NOT NULL, ts BIGINT NOT NULL, "
    "with_id BIGINT NOT NULL, with_full TEXT COLLATE \"C\" NOT NULL, payload BYTEA NOT NULL);"
    "INSERT INTO archive_v3 (id, owner_id, ts, with_id, with_full, payload) "
    "SELECT a.id, o.id, a.ts, j.id, a.with_full, a.payload FROM archive a "
    "JOIN archive_owner o ON o.scope = a.scope AND o.owner = a.owner JOIN archive_jid j ON j.jid = a.with_bare "
    "ORDER BY a.id;"
    "DROP TABLE archive;"
    "ALTER TABLE archive_v3 RENAME TO archive;"
    "ALTER INDEX archive_v3_pkey RENAME TO archive_pkey;"
    "CREATE INDEX archive_by_owner ON archive (owner_id, id);"
    "CREATE INDEX archive_by_with ON archive (owner_id, with_id, id);",
};

// The owner's id, as a scalar subquery of the query's parameters (none stored: NULL, and
// nothing matches).
constexpr std::string_view kOwnerId = "(SELECT id FROM archive_owner WHERE scope = ";

constexpr int64_t kMaxId = std::numeric_limits<int64_t>::max();

PgError not_found(uint64_t id) { return PgError{false, "no entry with id " + std::to_string(id), std::string(kNotFound)}; }

std::string placeholder(std::vector<PgParam>& params, PgParam p) {
  params.push_back(std::move(p));
  return "$" + std::to_string(params.size());
}

// "owner_id = " the key's owner's id, appending its parameters.
std::string owner_is(const ArchiveKey& key, std::vector<PgParam>& params) {
  std::string sql = "owner_id = " + std::string(kOwnerId) + placeholder(params, PgParam::text(key.scope));
  return sql + " AND owner = " + placeholder(params, PgParam::text(key.owner)) + ")";
}

// The filters of a query, appending their parameters.
std::string filters(const ArchiveQuery& q, std::vector<PgParam>& params) {
  std::string sql = " WHERE " + owner_is(q.key, params);
  // A full JID is asked with its bare JID too: archive_by_with's prefix, so that the page
  // reads that contact's entries, not every entry of the owner (a sparse contact's were
  // a scan of the whole archive).
  if (!q.with.empty())
    sql += " AND with_id = (SELECT id FROM archive_jid WHERE jid = " +
           placeholder(params, PgParam::text(archive_bare(q.with))) + ")";
  if (q.with.find('/') != std::string::npos) sql += " AND with_full = " + placeholder(params, PgParam::text(q.with));
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
  std::vector<PgParam> params;
  std::string sql = "SELECT 1 FROM archive WHERE " + owner_is(key, params);
  sql += " AND id = " + placeholder(params, PgParam::integer(static_cast<int64_t>(id)));
  auto rows = db.run(sql, params);
  if (!rows) return unexpected(rows.error());
  return rows->rows() > 0;
}

}  // namespace

std::span<const std::string_view> migrations() { return kMigrations; }

Result<void, PgError> PgKeys::resolve(PgConnection& db, std::span<const PackedAppend* const> entries,
                                      std::vector<int64_t>& owner_ids, std::vector<int64_t>& with_ids) {
  owner_ids.assign(entries.size(), 0);
  with_ids.assign(entries.size(), 0);
  // What neither map knows, each once: made (a row another transaction made first is
  // kept), then read back with the rest (a statement of its own sees both).
  std::vector<std::pair<std::string_view, std::string_view>> owners;
  std::vector<std::string_view> jids;
  std::unordered_map<std::string, bool> asked;
  auto known = [&](bool owner, std::string_view a, std::string_view b) -> int64_t {
    if (owner) ArchiveKeyIds::owner_key(key_, a, b);
    else ArchiveKeyIds::jid_key(key_, a);
    if (const int64_t id = ids_.find(key_); id != 0) return id;
    if (asked.emplace(key_, true).second) {
      if (owner) owners.emplace_back(a, b);
      else jids.push_back(a);
    }
    return 0;
  };
  for (size_t i = 0; i < entries.size(); ++i) {
    owner_ids[i] = known(true, entries[i]->scope(), entries[i]->owner());
    with_ids[i] = known(false, archive_bare_view(entries[i]->with()), {});
  }
  if (!owners.empty()) {
    size_t bytes = 0;
    for (const auto& [scope, owner] : owners) bytes += scope.size() + owner.size();
    BinaryArray scopes(BinaryArray::kText, owners.size(), bytes), names(BinaryArray::kText, owners.size(), bytes);
    for (const auto& [scope, owner] : owners) {
      scopes.add(scope);
      names.add(owner);
    }
    PgParam params[] = {std::move(scopes).param(), std::move(names).param()};
    static const std::string kMake =
        "INSERT INTO archive_owner (scope, owner) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING";
    static const std::string kRead =
        "SELECT o.id, o.scope, o.owner FROM archive_owner o JOIN unnest($1::text[], $2::text[]) AS g(scope, owner) "
        "ON o.scope = g.scope COLLATE \"C\" AND o.owner = g.owner COLLATE \"C\"";
    if (auto r = db.run(kMake, params); !r) return unexpected(r.error());
    auto rows = db.run(kRead, params);
    if (!rows) return unexpected(rows.error());
    for (int i = 0; i < rows->rows(); ++i) {
      ArchiveKeyIds::owner_key(key_, rows->bytes(i, 1), rows->bytes(i, 2));
      ids_.add(key_, rows->int64(i, 0), true);
    }
  }
  if (!jids.empty()) {
    size_t bytes = 0;
    for (std::string_view jid : jids) bytes += jid.size();
    BinaryArray names(BinaryArray::kText, jids.size(), bytes);
    for (std::string_view jid : jids) names.add(jid);
    PgParam params[] = {std::move(names).param()};
    static const std::string kMake =
        "INSERT INTO archive_jid (jid) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING";
    static const std::string kRead =
        "SELECT j.id, j.jid FROM archive_jid j JOIN unnest($1::text[]) AS g(jid) ON j.jid = g.jid COLLATE \"C\"";
    if (auto r = db.run(kMake, params); !r) return unexpected(r.error());
    auto rows = db.run(kRead, params);
    if (!rows) return unexpected(rows.error());
    for (int i = 0; i < rows->rows(); ++i) {
      ArchiveKeyIds::jid_key(key_, rows->bytes(i, 1));
      ids_.add(key_, rows->int64(i, 0), true);
    }
  }
  if (owners.empty() && jids.empty()) return {};
  for (size_t i = 0; i < entries.size(); ++i) {
    if (owner_ids[i] == 0) owner_ids[i] = known(true, entries[i]->scope(), entries[i]->owner());
    if (with_ids[i] == 0) with_ids[i] = known(false, archive_bare_view(entries[i]->with()), {});
    if (owner_ids[i] == 0 || with_ids[i] == 0)  // made and read in this transaction: cannot be missing
      return unexpected(PgError{false, "archive key not found after it was made", {}});
  }
  return {};
}

Result<void, PgError> append(PgConnection& db, PgKeys& keys, const ArchiveKey& key, const ArchiveEntry& entry,
                             bool retry) {
  PackedAppend packed(ArchiveAppend{key.scope, key.owner, entry.with, entry.payload, entry.timestamp_us});
  packed.id = entry.id;
  const PackedAppend* one[] = {&packed};
  return append_many(db, keys, one, retry);
}

Result<void, PgError> append_many(PgConnection& db, PgKeys& keys, std::span<const PackedAppend* const> entries,
                                  bool retry) {
  // Six arrays, one statement, one round trip (an INSERT per entry would cost a round
  // trip each, and bound the store's rate by the latency to the database).
  const size_t n = entries.size();
  size_t with_bytes = 0, payload_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    const PackedAppend& e = *entries[i];
    if (e.id == 0 || e.id > static_cast<uint64_t>(kMaxId))
      return unexpected(PgError{false, "archive id out of range", {}});
    // An element's length is an int32 (a stanza is far smaller: limits.max_stanza_size).
    if (e.payload().size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()) ||
        e.with().size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
      return unexpected(PgError{false, "archive entry too large", {}});
    with_bytes += e.with().size();
    payload_bytes += e.payload().size();
  }
  std::vector<int64_t> owner_ids, with_ids;
  if (auto r = keys.resolve(db, entries, owner_ids, with_ids); !r) return r;
  BinaryArray id(BinaryArray::kInt8, n, n * 8), owner(BinaryArray::kInt8, n, n * 8), ts(BinaryArray::kInt8, n, n * 8),
      with(BinaryArray::kInt8, n, n * 8), full(BinaryArray::kText, n, with_bytes),
      payload(BinaryArray::kBytea, n, payload_bytes);
  for (size_t i = 0; i < n; ++i) {
    const PackedAppend& e = *entries[i];
    id.add(static_cast<int64_t>(e.id));
    owner.add(owner_ids[i]);
    ts.add(e.timestamp_us);
    with.add(with_ids[i]);
    full.add(e.with());
    payload.add(e.payload());
  }
  PgParam params[] = {std::move(id).param(),   std::move(owner).param(), std::move(ts).param(),
                      std::move(with).param(), std::move(full).param(),  std::move(payload).param()};
  static const std::string kInsert =
      "INSERT INTO archive (id, owner_id, ts, with_id, with_full, payload) "
      "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bytea[])";
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
    auto r = db.run("DELETE FROM archive WHERE id < $2 AND ts < $2 AND owner_id IN "
                    "(SELECT id FROM archive_owner WHERE scope = $1)",
                    params);
    if (!r) return unexpected(r.error());
    return r->affected();
  }
  PgParam params[] = {PgParam::text(key.scope), PgParam::integer(before_us), PgParam::text(key.owner)};
  auto r = db.run("DELETE FROM archive WHERE owner_id = (SELECT id FROM archive_owner WHERE scope = $1 AND owner = $3) "
                  "AND ts < $2",
                  params);
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
    : link_(std::move(url), "archive"), queue_(max_queue, kMaxBatch) {
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
  bool queued = queue_.push(std::move(op), [&](Op& queued_op) { give_id(queued_op, id); }, is_query);
  if (!queued && id == nullptr)
    fail(op, ArchiveError{"resource-constraint", "the archive store is stopping or its queue is full"});
  return queued;
}

void PostgresArchiveStore::give_id(Op& op, uint64_t* id) {
  if (id == nullptr) return;
  // Made under the queue's lock, as the append takes its place (see the SQLite store).
  uint64_t now = op.entry.timestamp_us > 0 ? static_cast<uint64_t>(op.entry.timestamp_us) : 0;
  last_id_ = std::max(last_id_ + 1, now);
  op.entry.id = *id = last_id_;
}

uint64_t PostgresArchiveStore::append(const ArchiveAppend& entry, AppendDone done) {
  uint64_t id = 0;
  const bool queued = queue_.push_built(
      [&](std::string buffer) {
        return Op{Op::Kind::append, PackedAppend(entry, std::move(buffer)), std::move(done), nullptr};
      },
      [&](Op& op) { give_id(op, &id); });
  return queued ? id : 0;
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
  keys_.end_transaction(false);  // and the keys it made
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
        auto r = postgres_archive::append_many(link_.db(), keys_, entries, retry);
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
    keys_.end_transaction(false);
    run_one_by_one(batch);
    return true;
  }
  auto committed = link_.db().exec("COMMIT");
  // Not committed (a commit cut by a lost connection may have landed: its keys are read
  // again, then, by the next append that needs them).
  keys_.end_transaction(committed.has_value());
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
      case Op::Kind::append: {
        const PackedAppend* one[] = {&op.entry};
        if (auto r = postgres_archive::append_many(link_.db(), keys_, one, op.retry); !r) error = r.error();
        break;
      }
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
    keys_.end_transaction(ended.has_value() && !error);
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
