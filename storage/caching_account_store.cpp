// storage/caching_account_store.cpp - see caching_account_store.hpp.
#include "storage/caching_account_store.hpp"

#include <algorithm>
#include <utility>

namespace parley::storage {

std::string CredentialCache::key_of(std::string_view host, std::string_view user) {
  std::string key;
  key.reserve(host.size() + 1 + user.size());
  key.append(host).push_back('\0');
  key.append(user);
  return key;
}

uint64_t CredentialCache::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

void CredentialCache::put(std::string_view host, std::string_view user, const ScramRecord& record,
                          uint64_t seen_generation) {
  if (capacity_ == 0) return;
  std::string key = key_of(host, user);
  std::lock_guard lock(mutex_);
  if (seen_generation != generation_) return;  // a change ran meanwhile: what was read may be old
  auto found = index_.find(key);
  if (found == index_.end()) {
    if (lru_.size() >= capacity_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, {}});
    found = index_.emplace(std::move(key), lru_.begin()).first;
  } else {
    lru_.splice(lru_.begin(), lru_, found->second);
  }
  auto& records = found->second->records;
  auto same = std::find_if(records.begin(), records.end(),
                           [&](const ScramRecord& r) { return r.mechanism == record.mechanism; });
  if (same != records.end())
    *same = record;
  else
    records.push_back(record);
}

void CredentialCache::forget(std::string_view host, std::string_view user) {
  std::string key = key_of(host, user);
  std::lock_guard lock(mutex_);
  ++generation_;
  auto found = index_.find(key);
  if (found == index_.end()) return;
  lru_.erase(found->second);
  index_.erase(found);
}

std::optional<ScramRecord> CredentialCache::get(std::string_view host, std::string_view user,
                                                std::string_view mechanism) {
  std::string key = key_of(host, user);
  std::lock_guard lock(mutex_);
  auto found = index_.find(key);
  if (found == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, found->second);
  for (const auto& record : found->second->records)
    if (record.mechanism == mechanism) return record;
  return std::nullopt;
}

bool CredentialCache::contains(std::string_view host, std::string_view user) const {
  std::string key = key_of(host, user);
  std::lock_guard lock(mutex_);
  return index_.count(key) != 0;
}

size_t CredentialCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

Result<bool, Error> CachingAccountBackend::create_user(std::string_view host, std::string_view user,
                                                       const std::vector<ScramRecord>& credentials) {
  auto result = inner_.create_user(host, user, credentials);
  cache_.forget(host, user);
  return result;
}

Result<bool, Error> CachingAccountBackend::remove_user(std::string_view host, std::string_view user) {
  auto result = inner_.remove_user(host, user);
  cache_.forget(host, user);
  return result;
}

Result<bool, Error> CachingAccountBackend::set_credentials(std::string_view host, std::string_view user,
                                                           const std::vector<ScramRecord>& credentials) {
  auto result = inner_.set_credentials(host, user, credentials);
  cache_.forget(host, user);
  return result;
}

Result<bool, Error> CachingAccountBackend::set_disabled(std::string_view host, std::string_view user,
                                                        bool disabled) {
  auto result = inner_.set_disabled(host, user, disabled);
  cache_.forget(host, user);
  return result;
}

Result<std::optional<ScramRecord>, Error> CachingAccountBackend::get_credentials(std::string_view host,
                                                                                 std::string_view user,
                                                                                 std::string_view mechanism) {
  const uint64_t generation = cache_.generation();
  auto result = inner_.get_credentials(host, user, mechanism);
  if (result) {
    // No record (no such user, or none for this mechanism) is not cached: the
    // database says so again next time, and an unknown account must fail while it is away.
    if (*result) cache_.put(host, user, **result, generation);
    return result;
  }
  if (auto cached = cache_.get(host, user, mechanism)) return std::optional<ScramRecord>(std::move(*cached));
  return result;
}

Result<bool, Error> CachingAccountBackend::user_exists(std::string_view host, std::string_view user) {
  auto result = inner_.user_exists(host, user);
  // An account whose records are cached existed when they were read, and would
  // have been forgotten had it been removed through this store since.
  if (!result && cache_.contains(host, user)) return true;
  return result;
}

void CachingAccountStore::read(Job job) {
  inner_->read([job = std::move(job), cache = cache_](AccountBackend& inner) {
    CachingAccountBackend backend(inner, *cache);
    job(backend);
  });
}

void CachingAccountStore::write(Job job) {
  inner_->write([job = std::move(job), cache = cache_](AccountBackend& inner) {
    CachingAccountBackend backend(inner, *cache);
    job(backend);
  });
}

}  // namespace parley::storage
