// XEP-0082 timestamps, as XEP-0203 <delay stamp=.../> wants them: UTC with
// milliseconds ("2002-09-10T23:08:25.123Z"). For a module that stamps what it
// stores or holds (offline storage, client state indication, stream
// management's unacknowledged messages).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace parley {

// Milliseconds since the Unix epoch; before it too (the remainder is kept
// non-negative, so -1 ms is 23:59:59.999 of the day before).
inline std::string xep0082_stamp(int64_t ms_since_epoch) {
  int64_t secs = ms_since_epoch / 1000;
  int64_t frac = ms_since_epoch % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(frac));
  return buf;
}

inline std::string xep0082_stamp(std::chrono::system_clock::time_point when) {
  return xep0082_stamp(
      static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count()));
}

}  // namespace parley
