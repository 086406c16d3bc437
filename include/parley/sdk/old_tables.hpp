// parley/sdk/old_tables.hpp - retiring a module's own SQLite tables once their rows
// have moved into the typed stores (issue 11).
// Included after parley/module.hpp by the modules that had tables of their own
// (not by module.hpp: the others have no use for it).
//
// A module that kept its data in tables of its own (storage_query, SQLite) before the
// keyval and map stores declares those tables' schema steps still (steps are never
// edited or removed: a server that has them recorded must not see the versions go
// back), and at start:
//   1. reads which of the tables are still there (sqlite_master);
//   2. moves each present table's rows into the keyval or map store (KeyvalMove: put if
//      absent, the rows deleted after unless a put failed);
//   3. once every move is done, drops each of those tables that has no row left. A
//      table that still has rows (a failed move, or another host's rows: the tables
//      are the server's, shared by the module's instances, and each instance moves its
//      host's rows) stays for the next start or for the instance that moves the last
//      rows.
// A fresh server creates the tables with its first start's migration and drops them
// at once, empty; later starts find none and are ready without a read of any table.
// Work that needs the stores waits until the moves are done: when_ready(host, fn), as
// KeyvalMove's.
//
// Every move's `select` (user, key, value rows, in the order wanted) and `clear` take
// the module's host (?1) as their one parameter, or the Move's `param` (a service's
// domain): the only thing a move filters by.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "parley/module.hpp"

namespace parley {

class OldTables {
 public:
  struct Move {
    std::string table;   // the module's table the rows come from ("mod_x_items")
    std::string select;  // SELECT user, key, value FROM mod_x_items WHERE host = ?1
    std::string clear;   // DELETE FROM mod_x_items WHERE host = ?1
    KeyvalMove::Target target = KeyvalMove::Target::keyval;
    // ?1 of select and clear: the module's host when empty; a service's own domain
    // (a module that serves conference.HOST keeps its rows by that domain).
    std::string param = {};
  };

  // From the module's start() (on loop 0: the completions run there).
  void start(Host& host, std::vector<Move> moves) {
    host_ = &host;
    moves_ = std::move(moves);
    std::string sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (";
    std::vector<std::string> names;
    for (const Move& m : moves_) {
      bool seen = false;
      for (const std::string& n : names) seen = seen || n == m.table;
      if (seen) continue;
      sql += names.empty() ? "?" : ", ?";
      names.push_back(m.table);
    }
    sql += ")";
    std::vector<Value> params(names.begin(), names.end());
    host.storage_call(sql, params.data(), params.size(), false, [this](Result<Rows, std::string> rows) {
      if (!rows) {
        host_->error("reading which old tables are left failed: " + rows.error());
        return ready_.store(true, std::memory_order_release);
      }
      for (std::size_t r = 0; r < rows->size(); ++r)
        if (auto name = rows->at(r, 0).text()) present_.insert(*name);
      for (const Move& m : moves_) {
        if (present_.count(m.table) == 0) continue;
        const std::string domain = m.param.empty() ? host_->module_host() : m.param;
        running_.push_back(std::make_unique<KeyvalMove>(m.target));
        running_tables_.push_back(m.table);
        running_.back()->start(*host_, m.select, {Value(domain)}, m.clear, {domain});
      }
      wait(0);
    });
  }

  bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }

  template <class F>
  void when_ready(Host& host, F&& fn) {
    run_when(host, [this] { return ready(); }, std::forward<F>(fn));
  }

 private:
  // On loop 0: each move in turn until all are done, then the drops.
  void wait(std::size_t i) {
    if (i < running_.size()) return running_[i]->when_ready(*host_, [this, i] { wait(i + 1); });
    // running_ stays: a move's last delete may still complete into it.
    ready_.store(true, std::memory_order_release);
    for (const std::string& table : present_) {
      std::size_t moved = 0;
      for (std::size_t r = 0; r < running_.size(); ++r)
        if (running_tables_[r] == table) moved += running_[r]->moved();
      drop_if_empty(table, moved);
    }
  }

  // On the writer, after the moves' deletes (queued before it): the table goes only
  // if no row of any host is left in it.
  // A fresh server's tables were made empty by its first migration: their drop is
  // said at debug level, so that only a move of real rows shows in the log.
  void drop_if_empty(const std::string& table, std::size_t moved) {
    host_->execute("SELECT EXISTS (SELECT 1 FROM " + table + ")", {}, [this, table, moved](Result<Rows, std::string> rows) {
      // An error: another instance dropped it meanwhile (or it will be tried again at the next start).
      if (!rows || rows->size() == 0 || rows->at(0, 0).integer().value_or(1) != 0) return;
      host_->execute("DROP TABLE IF EXISTS " + table, {}, [this, table, moved](Result<Rows, std::string> dropped) {
        if (!dropped) return host_->error("dropping the old table " + table + " failed: " + dropped.error());
        const std::string said = "dropped the old table " + table +
                                 " (rows this instance moved into the typed stores: " + std::to_string(moved) + ")";
        if (moved > 0) host_->info(said);
        else host_->debug(said);
      });
    });
  }

  Host* host_ = nullptr;
  std::vector<Move> moves_;
  std::set<std::string> present_;                    // loop 0's
  std::vector<std::unique_ptr<KeyvalMove>> running_;  // loop 0's; kept for the module's life
  std::vector<std::string> running_tables_;           // loop 0's; the table of each of running_
  std::atomic<bool> ready_{false};
};

}  // namespace parley
