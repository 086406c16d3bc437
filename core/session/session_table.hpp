// Who is online where: bare JID -> bound resources, sharded by hash of the bare
// JID so that loops contend only when they touch the same shard, and only for
// the length of a map lookup. Values are session ids; the owning loop is
// encoded in the id (loop_of), so delivery never dereferences another loop's
// objects.
#pragma once

#include <array>
#include <functional>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley {

using SessionId = uint64_t;

constexpr unsigned session_loop_bits = 48;
inline unsigned loop_of(SessionId id) { return static_cast<unsigned>(id >> session_loop_bits); }
inline SessionId make_session_id(unsigned loop, uint64_t serial) {
  return (static_cast<uint64_t>(loop) << session_loop_bits) | (serial & ((uint64_t{1} << session_loop_bits) - 1));
}

struct SessionRef {
  std::string resource;
  SessionId id = 0;
  int priority = 0;
  bool available = false;  // has sent initial presence and not gone unavailable
  // Its connection ended and its loop is still routing what it held (the
  // stanzas it accepted and did not write): routed to as before from other
  // loops (its loop routes those again after what it held), skipped by its
  // own loop's router (Session::leave_session_table says why).
  bool leaving = false;
};

// What routing needs of one bound session: no resource string (the router
// looks a resource up with find(); a bare JID's delivery needs none).
struct SessionTarget {
  SessionId id = 0;
  int priority = 0;
  bool available = false;
  bool leaving = false;
};

// The sessions of one bare JID for routing, copied out of the table without
// allocating for up to kInline of them (nearly always one or two).
class SessionTargets {
 public:
  static constexpr size_t kInline = 8;
  std::span<SessionTarget> all() { return more_.empty() ? std::span(inline_.data(), size_) : std::span(more_); }

 private:
  friend class SessionTable;
  std::array<SessionTarget, kInline> inline_;
  size_t size_ = 0;
  std::vector<SessionTarget> more_;  // only past kInline sessions
};

class SessionTable {
 public:
  struct BindResult {
    bool ok = false;            // false: max_sessions reached
    SessionId replaced = 0;     // a session bound to the same full JID, to be closed with <conflict/>
  };
  BindResult bind(std::string_view bare, std::string_view resource, SessionId id, size_t max_sessions);
  // Removes the entry only if it still belongs to `id` (a replacing session may
  // own it). True if it did.
  bool unbind(std::string_view bare, std::string_view resource, SessionId id);
  void set_presence(std::string_view bare, SessionId id, bool available, int priority);
  // Marks the entry of `id` leaving (SessionRef::leaving); unbind removes it later.
  void set_leaving(std::string_view bare, std::string_view resource, SessionId id);

  std::vector<SessionRef> sessions_of(std::string_view bare) const;
  // The same without the resource strings, into `out` (emptied first): the
  // router's per-stanza look-up, which copied every resource string.
  void targets_of(std::string_view bare, SessionTargets& out) const;
  bool has_sessions(std::string_view bare) const;
  // How many sessions `bare` has bound, without copying them.
  size_t count_of(std::string_view bare) const;
  std::optional<SessionRef> find(std::string_view bare, std::string_view resource) const;
  size_t size() const;
  // issue 17 (XEP-0133, host_sessions): every bound session of `domain`, one
  // shard at a time under its read lock (a snapshot per shard, not of the
  // whole table); `each` must not call back into the table.
  void for_each_in_domain(std::string_view domain,
                          const std::function<void(std::string_view bare, const SessionRef&)>& each) const;

 private:
  static constexpr size_t shard_count = 64;
  // Heterogeneous lookup: routing looks up by string_view without allocating.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::shared_mutex mutex;
    std::unordered_map<std::string, std::vector<SessionRef>, Hash, std::equal_to<>> by_bare;
  };
  Shard& shard_for(std::string_view bare);
  const Shard& shard_for(std::string_view bare) const;

  std::array<Shard, shard_count> shards_;
};

}  // namespace parley
