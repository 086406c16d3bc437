// The request ids of one BOSH session (XEP-0124 §14): requests are processed
// in rid order whatever order they arrive in (a request ahead of a gap waits,
// inside a window of `window` ids past the last one processed); a repeated
// rid gets the answer it had (kept for the last `keep` answers); anything
// else is item-not-found. Pure and bounded: at most `window` requests wait,
// at most `keep` answers are kept. Its unit test drives it alone.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace parley::bosh {

enum class Admit {
  queued,      // taken: next_ready() hands it out once the rids before it came
  replaced,    // the same rid was waiting already: this copy replaces it (its old one is returned)
  replay,      // processed and answered before: answer(rid) is the answer to send again
  repeat_held, // processed, its answer not given yet: the caller answers the new copy instead
  not_found,   // outside the window, or answered too long ago (item-not-found)
};

template <class Request>
class RidWindow {
 public:
  // The session creation request had `first` (processed at once).
  RidWindow(uint64_t first, unsigned window, unsigned keep) : next_(first + 1), window_(window), keep_(keep) {}

  // `rid` arrived with `request`. `held(rid)` tells whether a processed rid
  // is still waiting for its answer. For `replaced` the earlier copy is
  // moved into `displaced`.
  template <class Held>
  Admit admit(uint64_t rid, Request&& request, Held&& held, std::optional<Request>& displaced) {
    if (rid < next_) {
      if (answer(rid) != nullptr) return Admit::replay;
      if (held(rid)) return Admit::repeat_held;
      return Admit::not_found;
    }
    if (rid - next_ >= window_) return Admit::not_found;
    auto it = waiting_.find(rid);
    if (it != waiting_.end()) {
      displaced.emplace(std::move(it->second));
      it->second = std::move(request);
      return Admit::replaced;
    }
    waiting_.emplace(rid, std::move(request));
    return Admit::queued;
  }

  // The next request in rid order, once it is there.
  std::optional<std::pair<uint64_t, Request>> next_ready() {
    auto it = waiting_.find(next_);
    if (it == waiting_.end()) return std::nullopt;
    std::pair<uint64_t, Request> out{next_, std::move(it->second)};
    waiting_.erase(it);
    ++next_;
    return out;
  }

  // The answer to `rid` was sent (at `sent_ms`): kept for a repeat of it.
  void answered(uint64_t rid, std::string answer, uint64_t sent_ms = 0) {
    answers_.push_back(Answer{rid, std::move(answer), sent_ms});
    while (answers_.size() > keep_) answers_.pop_front();
  }
  const std::string* answer(uint64_t rid) const {
    for (const auto& a : answers_)
      if (a.rid == rid) return &a.body;
    return nullptr;
  }
  // When the kept answer to `rid` was sent (§9.3's 'time'), if it is kept.
  std::optional<uint64_t> sent_at(uint64_t rid) const {
    for (const auto& a : answers_)
      if (a.rid == rid) return a.sent_ms;
    return std::nullopt;
  }
  // The client acknowledged every answer up to `rid` (its 'ack'): those need
  // not be kept (XEP-0124 §14.3).
  void acknowledged(uint64_t rid) {
    while (!answers_.empty() && answers_.front().rid <= rid) answers_.pop_front();
  }

  // The highest rid processed: every one below it was (a response's 'ack').
  uint64_t last_processed() const { return next_ - 1; }
  size_t waiting() const { return waiting_.size(); }
  // The waiting request with the highest rid, or null: the last of the
  // client's sequence so far, whatever order the requests arrived in.
  const Request* last_waiting() const { return waiting_.empty() ? nullptr : &waiting_.rbegin()->second; }
  size_t kept() const { return answers_.size(); }
  // Waiting requests, for a session that ends (answered, in rid order).
  std::map<uint64_t, Request> take_waiting() { return std::exchange(waiting_, {}); }

 private:
  uint64_t next_;
  unsigned window_;
  unsigned keep_;
  std::map<uint64_t, Request> waiting_;
  struct Answer {
    uint64_t rid;
    std::string body;
    uint64_t sent_ms;
  };
  std::deque<Answer> answers_;
};

}  // namespace parley::bosh
