// storage/caching_account_store.hpp - a bounded cache of the SCRAM records of accounts
// that logged in recently, in front of any AccountStore (issue 11: "a slow or failing
// database delays the work that needs it and nothing else: logins of cached accounts
// ... keep working").
//
// The database stays the authority: a look-up goes to it first, and the cache answers
// only when it fails (an error, never a "no such user"). So with the database up, a
// login behaves exactly as without the cache, and a password changed by anything that
// reaches the database without this process (another node: out of scope until the
// cluster) is never shadowed while the database answers. What a successful look-up
// returns is kept (LRU, `limits.max_cached_credentials` accounts; 0: no cache).
//
// Every change of an account through this store (create, remove, set_credentials,
// set_disabled: c2s, the control socket's parleyctl commands, XEP-0133 and XEP-0077
// through the host table all go through it) forgets the account's records, after the
// write, whether it succeeded or not (a write cut by a lost connection may have
// landed). A look-up that began before a change never puts what it read after it:
// puts carry the generation seen before the look-up, and a forget bumps it.
//
// The cache is shared by the store's threads (readers and the writer, never a loop):
// a mutex, held for a hash look-up and a list splice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/account_store.hpp"

namespace parley::storage {

class CredentialCache {
 public:
  explicit CredentialCache(size_t capacity) : capacity_(capacity) {}
  // Read before the database look-up whose answer may be put.
  uint64_t generation() const;
  // Keeps the record (one per mechanism per account) unless a forget ran since
  // `seen_generation` was read. Evicts the least recently used account past capacity.
  void put(std::string_view host, std::string_view user, const ScramRecord& record, uint64_t seen_generation);
  void forget(std::string_view host, std::string_view user);
  std::optional<ScramRecord> get(std::string_view host, std::string_view user, std::string_view mechanism);
  bool contains(std::string_view host, std::string_view user) const;
  size_t size() const;

 private:
  struct Entry {
    std::string key;  // host '\0' user
    std::vector<ScramRecord> records;
  };
  static std::string key_of(std::string_view host, std::string_view user);

  const size_t capacity_;
  mutable std::mutex mutex_;
  uint64_t generation_ = 0;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

// The operations of an inner backend, with the cache consulted on errors.
class CachingAccountBackend final : public AccountBackend {
 public:
  CachingAccountBackend(AccountBackend& inner, CredentialCache& cache) : inner_(inner), cache_(cache) {}
  Result<bool, Error> create_user(std::string_view host, std::string_view user,
                                  const std::vector<ScramRecord>& credentials) override;
  Result<bool, Error> remove_user(std::string_view host, std::string_view user) override;
  Result<bool, Error> set_credentials(std::string_view host, std::string_view user,
                                      const std::vector<ScramRecord>& credentials) override;
  Result<std::optional<ScramRecord>, Error> get_credentials(std::string_view host, std::string_view user,
                                                            std::string_view mechanism) override;
  Result<bool, Error> user_exists(std::string_view host, std::string_view user) override;
  Result<std::vector<std::string>, Error> list_users(std::string_view host) override {
    return inner_.list_users(host);
  }
  Result<bool, Error> set_disabled(std::string_view host, std::string_view user, bool disabled) override;
  Result<std::vector<std::string>, Error> list_disabled(std::string_view host) override {
    return inner_.list_disabled(host);
  }

 private:
  AccountBackend& inner_;
  CredentialCache& cache_;
};

class CachingAccountStore final : public AccountStore {
 public:
  CachingAccountStore(std::unique_ptr<AccountStore> inner, size_t capacity)
      : inner_(std::move(inner)), cache_(std::make_shared<CredentialCache>(capacity)) {}
  void read(Job job) override;
  void write(Job job) override;
  size_t queue_length() const override { return inner_->queue_length(); }
  void stop() override { inner_->stop(); }
  const CredentialCache& cache() const { return *cache_; }

 private:
  std::unique_ptr<AccountStore> inner_;
  // Shared with the jobs in flight, which may outlive a stop() of this store.
  std::shared_ptr<CredentialCache> cache_;
};

}  // namespace parley::storage
