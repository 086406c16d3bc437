#include "core/session/session_table.hpp"

#include <functional>
#include <mutex>

namespace parley {

SessionTable::Shard& SessionTable::shard_for(std::string_view bare) {
  return shards_[std::hash<std::string_view>{}(bare) % shard_count];
}
const SessionTable::Shard& SessionTable::shard_for(std::string_view bare) const {
  return shards_[std::hash<std::string_view>{}(bare) % shard_count];
}

SessionTable::BindResult SessionTable::bind(std::string_view bare, std::string_view resource, SessionId id,
                                            size_t max_sessions) {
  Shard& shard = shard_for(bare);
  std::unique_lock lock(shard.mutex);
  auto& list = shard.by_bare[std::string(bare)];
  BindResult result;
  for (auto& ref : list) {
    if (ref.resource == resource) {
      result.ok = true;
      result.replaced = ref.id;
      ref = SessionRef{std::string(resource), id, 0, false};
      return result;
    }
  }
  if (max_sessions != 0 && list.size() >= max_sessions) {
    if (list.empty()) shard.by_bare.erase(std::string(bare));
    return result;
  }
  list.push_back(SessionRef{std::string(resource), id, 0, false});
  result.ok = true;
  return result;
}

bool SessionTable::unbind(std::string_view bare, std::string_view resource, SessionId id) {
  Shard& shard = shard_for(bare);
  std::unique_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return false;
  auto& list = it->second;
  bool removed = false;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].resource == resource && list[i].id == id) {
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      removed = true;
      break;
    }
  }
  if (list.empty()) shard.by_bare.erase(it);
  return removed;
}

void SessionTable::set_presence(std::string_view bare, SessionId id, bool available, int priority) {
  Shard& shard = shard_for(bare);
  std::unique_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return;
  for (auto& ref : it->second) {
    if (ref.id == id) {
      ref.available = available;
      ref.priority = priority;
    }
  }
}

void SessionTable::set_leaving(std::string_view bare, std::string_view resource, SessionId id) {
  Shard& shard = shard_for(bare);
  std::unique_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return;
  for (auto& ref : it->second)
    if (ref.resource == resource && ref.id == id) ref.leaving = true;
}

std::vector<SessionRef> SessionTable::sessions_of(std::string_view bare) const {
  const Shard& shard = shard_for(bare);
  std::shared_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return {};
  return it->second;
}

void SessionTable::targets_of(std::string_view bare, SessionTargets& out) const {
  out.size_ = 0;
  out.more_.clear();
  const Shard& shard = shard_for(bare);
  std::shared_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return;
  const std::vector<SessionRef>& refs = it->second;
  auto target = [](const SessionRef& r) { return SessionTarget{r.id, r.priority, r.available, r.leaving}; };
  if (refs.size() <= SessionTargets::kInline) {
    for (const SessionRef& r : refs) out.inline_[out.size_++] = target(r);
    return;
  }
  out.more_.reserve(refs.size());
  for (const SessionRef& r : refs) out.more_.push_back(target(r));
  out.size_ = refs.size();
}

size_t SessionTable::count_of(std::string_view bare) const {
  const Shard& shard = shard_for(bare);
  std::shared_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  return it == shard.by_bare.end() ? 0 : it->second.size();
}

bool SessionTable::has_sessions(std::string_view bare) const {
  const Shard& shard = shard_for(bare);
  std::shared_lock lock(shard.mutex);
  return shard.by_bare.find(bare) != shard.by_bare.end();
}

std::optional<SessionRef> SessionTable::find(std::string_view bare, std::string_view resource) const {
  const Shard& shard = shard_for(bare);
  std::shared_lock lock(shard.mutex);
  auto it = shard.by_bare.find(bare);
  if (it == shard.by_bare.end()) return std::nullopt;
  for (const auto& ref : it->second) {
    if (ref.resource == resource) return ref;
  }
  return std::nullopt;
}

size_t SessionTable::size() const {
  size_t n = 0;
  for (const auto& shard : shards_) {
    std::shared_lock lock(shard.mutex);
    for (const auto& [bare, list] : shard.by_bare) n += list.size();
  }
  return n;
}

void SessionTable::for_each_in_domain(std::string_view domain,
                                      const std::function<void(std::string_view, const SessionRef&)>& each) const {
  for (const Shard& shard : shards_) {
    std::shared_lock lock(shard.mutex);
    for (const auto& [bare, refs] : shard.by_bare) {
      size_t at = bare.find('@');
      if (at == std::string::npos || std::string_view(bare).substr(at + 1) != domain) continue;
      for (const SessionRef& ref : refs) each(bare, ref);
    }
  }
}

}  // namespace parley
