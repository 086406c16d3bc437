// storage/wal_checkpointer.hpp - checkpoints a WAL database from a thread and a connection
// of its own, so that the connection that writes never stops for them.
//
// SQLite checkpoints on the writing connection by default: after the commit that takes
// the WAL past 1,000 pages, that commit also copies every page changed since the last
// checkpoint into the database file and syncs it (reads of the WAL, writes and an fsync).
// For the message archive's one writer that was about a third of its time at saturation
// (session 16: without checkpoints it committed 1.6x as much), time in which every
// client paced by the archive waits. Here the writer's commit only signals; this thread
// runs a PASSIVE checkpoint (it copies what it can without blocking the writer), and
// SQLite restarts the WAL from its beginning at a write once everything was copied.
//
// A WAL that a steady stream of commits outruns never gets wholly copied, so it would
// grow without end: past `restart_pages` the writer's commit runs a RESTART checkpoint
// itself, which waits for the copying to finish and starts the WAL over (the old cost,
// rarely). Durability is SQLite's with synchronous=NORMAL either way: a commit is in the
// WAL, the checkpoint syncs the database file.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "storage/database.hpp"

namespace parley::storage {

class WalCheckpointer {
 public:
  static constexpr int kPages = 1000;           // SQLite's own wal_autocheckpoint
  static constexpr int kRestartPages = 16000;   // 64 MiB of 4 KiB pages

  explicit WalCheckpointer(std::string path, int pages = kPages, int restart_pages = kRestartPages);
  ~WalCheckpointer();  // stop()
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Opens its connection to `path` and starts its thread, then takes over the writer's
  // checkpoints (its WAL hook, which replaces wal_autocheckpoint). Call before the
  // writer's thread uses the connection; `writer` must outlive stop().
  Result<void, Error> start(Database& writer);
  // Ends the thread after the checkpoint under way, and gives the writer its automatic
  // checkpoints back. Call once the writer's thread no longer uses the connection.
  // Idempotent.
  void stop();

  // Checkpoints run here, and RESTART checkpoints the writer ran (any thread: tests).
  uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }
  uint64_t restarts() const { return restarts_.load(std::memory_order_relaxed); }

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void run();

  const std::string path_;
  const int pages_;
  const int restart_pages_;
  std::unique_ptr<Database> conn_;  // this thread's
  Database* writer_ = nullptr;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool wanted_ = false;    // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> restarts_{0};
};

}  // namespace parley::storage
