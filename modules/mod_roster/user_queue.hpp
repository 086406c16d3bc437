// mod_roster/user_queue.hpp - one line per user: the roster work of a user
// (a roster set, a subscription stanza in either direction) runs one piece at
// a time, in arrival order, whatever loop it arrived on. A read-modify-write
// of a roster item therefore never races another one for the same user.
//
// A ticket is taken synchronously (so two stanzas of one session keep their
// order); the work starts when the ticket reaches the head of its line. The
// caller polls `at_head` from its own loop (the SDK has no way to wake another
// loop), and calls `leave` when the work is done. Standard library only.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mod_roster {

class UserQueue {
 public:
  struct Ticket {
    uint64_t id = 0;
    bool at_head = false;
  };

  Ticket enter(const std::string& user) {
    std::lock_guard lock(mu_);
    auto& line = lines_[user];
    const uint64_t id = next_++;
    line.push_back(id);
    return Ticket{id, line.front() == id};
  }

  bool at_head(const std::string& user, uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = lines_.find(user);
    return it != lines_.end() && !it->second.empty() && it->second.front() == id;
  }

  // Removes the ticket wherever it is (the head, normally).
  void leave(const std::string& user, uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = lines_.find(user);
    if (it == lines_.end()) return;
    auto& line = it->second;
    for (auto t = line.begin(); t != line.end(); ++t) {
      if (*t == id) {
        line.erase(t);
        break;
      }
    }
    if (line.empty()) lines_.erase(it);
  }

  std::size_t waiting(const std::string& user) {
    std::lock_guard lock(mu_);
    auto it = lines_.find(user);
    return it == lines_.end() ? 0 : it->second.size();
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<uint64_t>> lines_;
  uint64_t next_ = 1;
};

}  // namespace mod_roster
