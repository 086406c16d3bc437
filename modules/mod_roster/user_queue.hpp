// mod_roster/user_queue.hpp - one line per user: the roster work of a user
// (a roster get or set, a subscription stanza in either direction) runs one
// piece at a time, in arrival order. A read-modify-write of a roster item
// therefore never races another one for the same user.
//
// One loop owns a user's line (mod_roster picks it by a hash of the user and
// posts the work there), so the line is touched by that loop only: no lock,
// and nothing polls. The head's work is taken out to run; it stays the head
// (the user stays busy) until leave(). Standard library only.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

namespace mod_roster {

template <class Work>
class UserLines {
 public:
  // Appends `work` to `user`'s line; true if it is the head: take_head() and run it now.
  bool enter(const std::string& user, Work work) {
    auto& line = lines_[user];
    line.push_back(std::move(work));
    return line.size() == 1;
  }

  // The head's work, moved out to be run (the head keeps its place until leave()).
  Work take_head(const std::string& user) {
    auto it = lines_.find(user);
    if (it == lines_.end() || it->second.empty()) return Work();
    return std::move(it->second.front());
  }

  // The head is done: true if another piece waits (take_head() it next).
  bool leave(const std::string& user) {
    auto it = lines_.find(user);
    if (it == lines_.end()) return false;
    if (!it->second.empty()) it->second.pop_front();
    if (!it->second.empty()) return true;
    lines_.erase(it);
    return false;
  }

  std::size_t waiting(const std::string& user) const {
    auto it = lines_.find(user);
    return it == lines_.end() ? 0 : it->second.size();
  }
  std::size_t users() const { return lines_.size(); }

 private:
  std::unordered_map<std::string, std::deque<Work>> lines_;
};

}  // namespace mod_roster
