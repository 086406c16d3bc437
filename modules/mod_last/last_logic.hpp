// mod_last's bookkeeping (XEP-0012), apart from the SDK so that unit tests can
// drive it: which logout or unavailable presence becomes the stored "last
// activity", and who may read it. Standard library only. Not thread-safe: the
// module keeps one tracker per loop and hands each user's events to the loop
// that owns the user.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace parley::mod_last {

// XEP-0012 section 4 and 8: only an entity allowed to see the user's presence,
// i.e. with a subscription 'from' or 'both' in the user's roster, may learn it.
bool subscription_allows(std::string_view subscription);

// Seconds from `then` to `now` (unix seconds), never negative.
int64_t seconds_since(int64_t then, int64_t now);

// A stored record (the keyval store's value): "SECONDS:STATUS", SECONDS since the epoch.
struct Record {
  int64_t seconds = 0;
  std::string status;
};
std::string format_record(int64_t seconds, std::string_view status);
// nullopt if `value` is not such a record.
std::optional<Record> parse_record(std::string_view value);

// The status text of a user's last unavailable presence, and when the user
// stops being available (XEP-0012 section 4: "how long ago a user logged out
// ... what their status message was at that time"). Keyed by bare JID; an
// entry lives while the user has sessions.
class ActivityTracker {
 public:
  // An unavailable presence (with its <status/> text) from a session of `bare`;
  // `others_available`: another session of the user is still available. The
  // status to store now, or nullopt (the user is still available elsewhere).
  std::optional<std::string> on_unavailable(const std::string& bare, std::string status, bool others_available);

  // A session of `bare` closed: it `was_available` (its end is an unavailable
  // presence without status, RFC 6121 section 4.5.4), other sessions remain
  // (`others_remain`), some of them available (`others_available`). The
  // status to store now, or nullopt.
  std::optional<std::string> on_closed(const std::string& bare, bool was_available, bool others_remain,
                                       bool others_available);

  // The account is gone: nothing more is recorded for it, not even the end
  // of the sessions the core closes after the removal (`has_sessions`), or a
  // new account of the same name would inherit their last activity.
  void removed(const std::string& bare, bool has_sessions);
  // The account exists (again).
  void registered(const std::string& bare);

  std::size_t size() const;

 private:
  std::map<std::string, std::string> last_status_;
  std::set<std::string> removed_;
};

}  // namespace parley::mod_last
