// mod_muc: the encoding of a persistent room's items in the map store.
#include "room_store_codec.hpp"

#include <charconv>
#include <cstdio>
#include <utility>

namespace muc {

namespace store_codec {
namespace {

std::pair<std::string_view, std::string_view> split_line(std::string_view v) {
  const auto nl = v.find('\n');
  if (nl == std::string_view::npos) return {v, {}};
  return {v.substr(0, nl), v.substr(nl + 1)};
}

template <class T>
bool number(std::string_view v, T& out) {
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && end == v.data() + v.size();
}

}  // namespace

std::string room_map(std::string_view room_jid) { return std::string("r") + kSep + std::string(room_jid); }

std::string affiliation_key(std::string_view bare) { return std::string("a") + kSep + std::string(bare); }

std::string affiliation_value(std::string_view affiliation, std::string_view nick, std::string_view reason) {
  // A nick holds no newline (resourceprep forbids control characters); a reason may: it comes last.
  std::string v(affiliation);
  v += '\n';
  v += nick;
  v += '\n';
  v += reason;
  return v;
}

std::string history_key(uint64_t seq) {
  char digits[21];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(seq));
  return std::string("h") + kSep + digits;
}

std::string history_value(int64_t ms, std::string_view xml) { return std::to_string(ms) + "\n" + std::string(xml); }

bool read_item(StoredRoom& room, std::string_view key, std::string_view value) {
  if (key == "config") room.config = std::string(value);
  else if (key == "secret") room.secret = std::string(value);
  else if (key == "subject") room.subject = std::string(value);
  else if (key == "subject_nick") room.subject_nick = std::string(value);
  else if (key.size() > 2 && key[0] == 'a' && key[1] == kSep) {
    const auto [affiliation, rest] = split_line(value);
    const auto [nick, reason] = split_line(rest);
    room.affiliations.push_back(StoredRoom::Affiliation{std::string(key.substr(2)), std::string(affiliation),
                                                        std::string(reason), std::string(nick)});
    room.stored_affiliations.emplace(std::string(key), std::string(value));
  } else if (key.size() > 2 && key[0] == 'h' && key[1] == kSep) {
    const auto [ms, xml] = split_line(value);
    StoredRoom::Message m{0, 0, std::string(xml)};
    if (!number(key.substr(2), m.seq) || !number(ms, m.ms)) return false;
    room.history.push_back(std::move(m));
  } else {
    return false;
  }
  return true;
}

}  // namespace store_codec

}  // namespace muc
