// storage/postgres_account_store.hpp - the account store on PostgreSQL.
//
// Threads of the store's own, each with its own connection: one writer (writes, and the
// look-ups ordered with them, in FIFO order) and `readers` reader threads sharing the read
// queue. A thread whose connection is lost reconnects before its next job, at most once
// per back-off (100 ms doubling to 5 s); while the database is away the jobs still run,
// promptly, and every operation they make returns an error (a login then fails with
// temporary-auth-failure; nothing waits on the loops).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/account_store.hpp"
#include "storage/pg_connection.hpp"

namespace parley::storage {

namespace postgres_accounts {
// The "accounts" component's migration steps (PostgreSQL dialect).
std::span<const std::string_view> migrations();
}  // namespace postgres_accounts

// The operations on one connection (nullptr or broken: every operation fails). With
// `reconnect`, a look-up (credentials, existence, listing) that finds the connection lost
// (PostgreSQL restarted since the last job) asks for a new one and runs once more: the
// first login after a restart does not fail for it. Writes are not run again: whether a
// lost commit landed is unknown, and the caller reports the error.
class PgAccountBackend final : public AccountBackend {
 public:
  explicit PgAccountBackend(PgConnection* conn, std::function<PgConnection*()> reconnect = {})
      : conn_(conn), reconnect_(std::move(reconnect)) {}
  Result<bool, Error> create_user(std::string_view host, std::string_view user,
                                  const std::vector<ScramRecord>& credentials) override;
  Result<bool, Error> remove_user(std::string_view host, std::string_view user) override;
  Result<bool, Error> set_credentials(std::string_view host, std::string_view user,
                                      const std::vector<ScramRecord>& credentials) override;
  Result<std::optional<ScramRecord>, Error> get_credentials(std::string_view host, std::string_view user,
                                                            std::string_view mechanism) override;
  Result<bool, Error> user_exists(std::string_view host, std::string_view user) override;
  Result<std::vector<std::string>, Error> list_users(std::string_view host) override;
  Result<bool, Error> set_disabled(std::string_view host, std::string_view user, bool disabled) override;
  Result<std::vector<std::string>, Error> list_disabled(std::string_view host) override;

 private:
  Result<void, Error> usable() const;
  Result<void, Error> insert_credentials(std::string_view host, std::string_view user,
                                         const std::vector<ScramRecord>& credentials);
  Result<bool, Error> in_transaction(const std::function<Result<bool, Error>()>& body);
  // Runs a look-up; once more on a new connection if this one was lost.
  template <class F>
  auto look_up(F&& f) -> decltype(f());
  PgConnection* conn_;
  std::function<PgConnection*()> reconnect_;
};

class PostgresAccountStore final : public AccountStore {
 public:
  PostgresAccountStore(std::string url, unsigned readers);
  ~PostgresAccountStore() override;  // stop()

  void set_log(std::function<void(std::string_view)> log) { log_ = std::move(log); }

  // Connects the writer, migrates, connects the readers and starts the threads; an error
  // if the database cannot be reached now.
  Result<void, Error> start();

  void read(Job job) override { push(reads_, std::move(job)); }
  void write(Job job) override { push(writes_, std::move(job)); }
  size_t queue_length() const override {
    return reads_.length.load(std::memory_order_relaxed) + writes_.length.load(std::memory_order_relaxed);
  }
  void stop() override;

 private:
  struct Queue {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Job> jobs;
    std::atomic<size_t> length{0};
    bool stopping = false;  // guarded by mutex
  };
  struct Worker {
    std::unique_ptr<PgConnection> conn;
    std::chrono::steady_clock::time_point next_try{};
    std::chrono::milliseconds backoff{100};
    bool was_connected = true;
  };

  void push(Queue& queue, Job&& job);
  void run(Queue& queue, Worker& worker);
  void ensure_connected(Worker& worker);
  void log(std::string_view message);

  std::string url_;
  unsigned readers_;
  std::function<void(std::string_view)> log_;
  Queue reads_;
  Queue writes_;
  std::vector<std::unique_ptr<Worker>> workers_;  // [0] the writer's
  std::vector<std::thread> threads_;
  std::mutex lifecycle_;
  bool started_ = false;
};

}  // namespace parley::storage
