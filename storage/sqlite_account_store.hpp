// storage/sqlite_account_store.hpp - the account store on SQLite: user_store's SQL on a
// connection of the main file, and jobs on its StoragePool (reads on the readers, writes
// on the one writer: the order the router's checks need).
#pragma once

#include "storage/account_store.hpp"
#include "storage/database.hpp"
#include "storage/storage_pool.hpp"

namespace parley::storage {

// The operations on one connection (parleyctl uses it directly when no server runs).
class SqliteAccountBackend final : public AccountBackend {
 public:
  explicit SqliteAccountBackend(Database& db) : db_(db) {}
  Result<bool, Error> create_user(std::string_view host, std::string_view user,
                                  const std::vector<ScramRecord>& credentials) override {
    return user_store::create_user(db_, host, user, credentials);
  }
  Result<bool, Error> remove_user(std::string_view host, std::string_view user) override {
    return user_store::remove_user(db_, host, user);
  }
  Result<bool, Error> set_credentials(std::string_view host, std::string_view user,
                                      const std::vector<ScramRecord>& credentials) override {
    return user_store::set_credentials(db_, host, user, credentials);
  }
  Result<std::optional<ScramRecord>, Error> get_credentials(std::string_view host, std::string_view user,
                                                            std::string_view mechanism) override {
    return user_store::get_credentials(db_, host, user, mechanism);
  }
  Result<bool, Error> user_exists(std::string_view host, std::string_view user) override {
    return user_store::user_exists(db_, host, user);
  }
  Result<std::vector<std::string>, Error> list_users(std::string_view host) override {
    return user_store::list_users(db_, host);
  }
  Result<bool, Error> set_disabled(std::string_view host, std::string_view user, bool disabled) override {
    return user_store::set_disabled(db_, host, user, disabled);
  }
  Result<std::vector<std::string>, Error> list_disabled(std::string_view host) override {
    return user_store::list_disabled(db_, host);
  }

 private:
  Database& db_;
};

// Jobs on a started pool (not owned: the server starts and stops it).
class SqliteAccountStore final : public AccountStore {
 public:
  explicit SqliteAccountStore(StoragePool& pool) : pool_(pool) {}
  void read(Job job) override {
    pool_.read([job = std::move(job)](Database& db) {
      SqliteAccountBackend backend(db);
      job(backend);
    });
  }
  void write(Job job) override {
    pool_.write([job = std::move(job)](Database& db) {
      SqliteAccountBackend backend(db);
      job(backend);
    });
  }
  size_t queue_length() const override { return pool_.read_queue_length() + pool_.write_queue_length(); }
  void stop() override {}  // the pool's owner stops it

 private:
  StoragePool& pool_;
};

}  // namespace parley::storage
