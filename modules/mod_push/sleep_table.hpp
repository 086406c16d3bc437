// Which of the server's sessions sleep, for mod_push: a session whose
// connection was lost and that XEP-0198 keeps for resumption (detached), or
// whose client said <inactive/> (XEP-0352: connected, maybe suspended). A
// user is woken by a push only when every bound session of theirs sleeps
// (or they have none): never while one is connected and active.
//
// Written from the session hooks on each session's loop, read from any loop
// (a room's message wakes its members from the room's loop): one mutex, taken
// only at these state changes and when a push is considered. Bounded by the
// bound sessions (a closed session is forgotten). Free of the host
// (unit-tested in tests/unit/modules/mod_push).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::push {

class SleepTable {
 public:
  enum Flag : uint8_t { detached = 1, inactive = 2 };

  void set(uint64_t session, Flag flag, bool on);
  void forget(uint64_t session);
  bool asleep(uint64_t session) const;
  // Whether every one of `sessions` sleeps (true for none). A session this
  // table never heard of is awake.
  bool all_asleep(const std::vector<uint64_t>& sessions) const;
  size_t size() const;

  // Hot reload: "ID FLAGS\n" per sleeping session.
  std::string save() const;
  bool restore(std::string_view bytes);

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, uint8_t> flags_;
};

}  // namespace parley::push
