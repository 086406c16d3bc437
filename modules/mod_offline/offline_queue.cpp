#include "offline_queue.hpp"

#include <algorithm>
#include <utility>

namespace parley::offline {

OfflineQueue::Admission OfflineQueue::admit(const std::string& user, HeldMessage message) {
  Admission a;
  UserState& st = state(user);
  if (!st.count_asked) {
    st.count_asked = true;
    st.count_in_flight = true;
    a.ask_count = true;
  }
  // Until the count is known, the rows committed since it was asked are all we know of.
  int64_t stored = st.disk_known ? st.disk : st.pending_delta;
  int64_t total = stored + st.flushing + static_cast<int64_t>(st.held.size());
  if (total >= max_messages_) return a;
  if (max_per_sender_ < max_messages_) {
    auto known = st.senders.find(message.sender);
    int64_t from_sender = known == st.senders.end() ? 0 : known->second;
    for (const HeldMessage& m : st.held) from_sender += m.sender == message.sender;
    if (from_sender >= max_per_sender_) {
      a.sender_share = true;
      return a;
    }
  }
  bytes_ += weight(message);
  st.held.push_back(std::move(message));
  ++held_count_;
  a.accepted = true;
  if (!timer_armed_) {
    timer_armed_ = true;
    a.arm_timer = true;
  }
  a.over_cap = bytes_ > max_bytes_;
  return a;
}

void OfflineQueue::sender_counts(const std::string& user,
                                 const std::vector<std::pair<std::string, int64_t>>& counts) {
  UserState& st = state(user);
  // Flushes issued after the query added theirs already (take_prefix).
  for (const auto& [sender, n] : counts) st.senders[sender] += n;
}

void OfflineQueue::count_result(const std::string& user, std::optional<int64_t> rows) {
  UserState& st = state(user);
  st.count_in_flight = false;
  if (rows) {
    st.disk = *rows + st.pending_delta;
    st.disk_known = true;
  }
  st.pending_delta = 0;
  maybe_forget(user);
}

bool OfflineQueue::write_issued(const std::string& user) {
  UserState& st = state(user);
  ++st.writes_in_flight;
  return st.count_asked;
}

void OfflineQueue::write_done(const std::string& user, int64_t delta, bool counted) {
  UserState& st = state(user);
  --st.writes_in_flight;
  if (counted) {
    if (st.disk_known) st.disk = std::max<int64_t>(0, st.disk + delta);
    else st.pending_delta += delta;
  }
  if (delta < 0) st.senders.clear();  // removed rows of unknown senders
  maybe_forget(user);
}

void OfflineQueue::take_prefix(const std::string& user, UserState& st, std::size_t n, std::vector<FlushPart>& out) {
  if (n == 0) return;
  FlushPart part;
  part.user = user;
  part.messages.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    release(st.held.front());
    ++st.senders[st.held.front().sender];
    part.messages.push_back(std::move(st.held.front()));
    st.held.pop_front();
  }
  held_count_ -= n;
  st.flushing += static_cast<int64_t>(n);
  ++st.writes_in_flight;
  part.counted = st.count_asked;
  out.push_back(std::move(part));
}

std::vector<FlushPart> OfflineQueue::take_expired(int64_t now_ms) {
  std::vector<FlushPart> out;
  for (auto& [user, st] : users_) {
    std::size_t n = 0;
    while (n < st.held.size() && st.held[n].arrived_ms + window_ms_ <= now_ms) ++n;
    take_prefix(user, st, n, out);
  }
  return out;
}

std::vector<FlushPart> OfflineQueue::take_all() {
  std::vector<FlushPart> out;
  for (auto& [user, st] : users_) take_prefix(user, st, st.held.size(), out);
  return out;
}

void OfflineQueue::flush_done(FlushPart&& part, bool ok) {
  UserState& st = state(part.user);
  auto n = static_cast<int64_t>(part.messages.size());
  st.flushing -= n;
  --st.writes_in_flight;
  if (ok) {
    if (part.counted) {
      if (st.disk_known) st.disk += n;
      else st.pending_delta += n;
    }
  } else {
    for (auto it = part.messages.rbegin(); it != part.messages.rend(); ++it) {
      if (auto known = st.senders.find(it->sender); known != st.senders.end() && known->second > 0) --known->second;
      bytes_ += weight(*it);
      st.held.push_front(std::move(*it));
    }
    held_count_ += part.messages.size();
  }
  maybe_forget(part.user);
}

std::optional<int64_t> OfflineQueue::arm_if_idle() {
  if (timer_armed_) return std::nullopt;
  std::optional<int64_t> next;
  for (const auto& [user, st] : users_)
    if (!st.held.empty()) {
      int64_t at = st.held.front().arrived_ms + window_ms_;
      if (!next || at < *next) next = at;
    }
  timer_armed_ = next.has_value();
  return next;
}

OfflineQueue::Delivery OfflineQueue::begin_delivery(const std::string& user, bool always_disk) {
  Delivery d;
  UserState& st = state(user);
  if (st.delivering) {
    st.redeliver = true;
    d.busy = true;
    return d;
  }
  d.memory.reserve(st.held.size());
  for (HeldMessage& m : st.held) {
    release(m);
    d.memory.push_back(std::move(m));
  }
  held_count_ -= st.held.size();
  st.held.clear();
  d.need_disk = always_disk || !st.disk_known || st.disk > 0 || st.flushing > 0 || st.writes_in_flight > 0 ||
                st.count_in_flight;
  if (d.need_disk) st.delivering = true;
  else maybe_forget(user);
  return d;
}

bool OfflineQueue::begin_paced(const std::string& user) {
  UserState& st = state(user);
  if (st.delivering) {
    st.redeliver = true;
    return false;
  }
  st.delivering = true;
  return true;
}

bool OfflineQueue::disk_may_have_rows(const std::string& user) const {
  auto it = users_.find(user);
  if (it == users_.end()) return true;  // nothing known: ask the disk
  const UserState& st = it->second;
  return !st.disk_known || st.disk > 0 || st.flushing > 0 || st.writes_in_flight > 0 || st.count_in_flight;
}

std::vector<HeldMessage> OfflineQueue::take_front(const std::string& user, std::size_t max_count,
                                                  std::size_t max_bytes) {
  std::vector<HeldMessage> out;
  auto it = users_.find(user);
  if (it == users_.end()) return out;
  UserState& st = it->second;
  std::size_t bytes = 0;
  while (!st.held.empty() && out.size() < max_count) {
    HeldMessage& m = st.held.front();
    if (!out.empty() && bytes + m.xml.size() > max_bytes) break;
    bytes += m.xml.size();
    release(m);
    out.push_back(std::move(m));
    st.held.pop_front();
  }
  held_count_ -= out.size();
  return out;
}

void OfflineQueue::requeue_front(const std::string& user, std::vector<HeldMessage> messages) {
  if (messages.empty()) return;
  UserState& st = state(user);
  for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
    bytes_ += weight(*it);
    st.held.push_front(std::move(*it));
  }
  held_count_ += messages.size();
}

bool OfflineQueue::end_delivery(const std::string& user) {
  UserState& st = state(user);
  st.delivering = false;
  bool again = st.redeliver;
  st.redeliver = false;
  maybe_forget(user);
  return again;
}

std::size_t OfflineQueue::remove_user(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end()) return 0;
  std::size_t n = it->second.held.size();
  for (HeldMessage& m : it->second.held) release(m);
  held_count_ -= n;
  it->second.held.clear();
  it->second.senders.clear();
  maybe_forget(user);
  return n;
}

std::optional<int64_t> OfflineQueue::known_disk_count(const std::string& user) const {
  auto it = users_.find(user);
  if (it == users_.end() || !it->second.disk_known) return std::nullopt;
  return it->second.disk;
}

void OfflineQueue::maybe_forget(const std::string& user) {
  auto it = users_.find(user);
  if (it == users_.end()) return;
  const UserState& st = it->second;
  if (!st.held.empty() || st.flushing != 0 || st.writes_in_flight != 0 || st.delivering || st.count_in_flight ||
      st.redeliver)
    return;
  if (st.disk_known && st.disk > 0) return;  // worth remembering for the quota
  users_.erase(it);
}

}  // namespace parley::offline
