// XEP-0082 timestamps, as XEP-0203 <delay stamp=.../> wants them: UTC with
// milliseconds ("2002-09-10T23:08:25.123Z"). For a module that stamps what it
// stores or holds (offline storage, client state indication, stream
// management's unacknowledged messages), and reads the ones clients send
// (archive queries, group chat history 'since').
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

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

namespace detail {

inline bool stamp_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
inline int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace detail

// An XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD; the time zone, Z or
// +hh:mm/-hh:mm, is required) as microseconds since the Unix epoch; nullopt
// when it is not one (a day the month does not have included). A leap second
// (:60) counts as :59. At most 9 digits of fraction, kept to microseconds.
inline std::optional<int64_t> xep0082_parse_us(std::string_view s) {
  using detail::stamp_digits;
  int y, mo, d, h, mi, se;
  if (s.size() < 20 || !stamp_digits(s, 0, 4, y) || s[4] != '-' || !stamp_digits(s, 5, 2, mo) || s[7] != '-' ||
      !stamp_digits(s, 8, 2, d) || s[10] != 'T' || !stamp_digits(s, 11, 2, h) || s[13] != ':' ||
      !stamp_digits(s, 14, 2, mi) || s[16] != ':' || !stamp_digits(s, 17, 2, se))
    return std::nullopt;
  static constexpr int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] + (mo == 2 && leap ? 1 : 0) || h > 23 || mi > 59 ||
      se > 60)
    return std::nullopt;
  std::size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    int64_t scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      micros += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
      if (pos - start > 9) return std::nullopt;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!stamp_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !stamp_digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const int64_t secs = detail::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                       h * 3600 + mi * 60 + (se == 60 ? 59 : se) - offset_s;
  return secs * 1000000 + micros;
}

}  // namespace parley
