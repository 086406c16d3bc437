#include "core/addr/jid_cache.hpp"

#include <atomic>
#include <functional>
#include <string>
#include <unordered_map>

namespace parley::jid_cache {
namespace {

struct Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
struct Equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

struct Entry {
  Jid jid;
  bool canonical;
};

std::atomic<size_t> bound{default_max_entries};

std::unordered_map<std::string, Entry, Hash, Equal>& cache() {
  thread_local std::unordered_map<std::string, Entry, Hash, Equal> entries;
  return entries;
}

}  // namespace

Result<Jid, JidError> parse(std::string_view text, bool* canonical) {
  if (text.size() > max_text_bytes) {
    auto jid = Jid::parse(text);
    if (jid && canonical != nullptr) *canonical = jid->full() == text;
    return jid;
  }
  auto& entries = cache();
  if (auto it = entries.find(text); it != entries.end()) {
    if (canonical != nullptr) *canonical = it->second.canonical;
    return it->second.jid;
  }
  auto jid = Jid::parse(text);
  if (!jid) return jid;
  const size_t limit = bound.load(std::memory_order_relaxed);
  if (entries.size() >= limit) {
    entries.clear();
    if (limit == 0) {
      if (canonical != nullptr) *canonical = jid->full() == text;
      return jid;
    }
  }
  const bool same = jid->full() == text;
  entries.emplace(std::string(text), Entry{*jid, same});
  if (canonical != nullptr) *canonical = same;
  return jid;
}

size_t size() { return cache().size(); }

void set_max_entries(size_t entries) { bound.store(entries, std::memory_order_relaxed); }

size_t max_entries() { return bound.load(std::memory_order_relaxed); }

}  // namespace parley::jid_cache
