// mod_roster: the stored form of a roster in the map store (roster_codec.hpp).
#include "roster_codec.hpp"

#include <algorithm>
#include <charconv>

namespace mod_roster {

namespace {

// The next space-terminated field of `s` (consumed with its space).
std::string_view field(std::string_view& s) {
  const auto sp = s.find(' ');
  std::string_view f = s.substr(0, sp);
  s.remove_prefix(sp == std::string_view::npos ? s.size() : sp + 1);
  return f;
}

std::optional<int64_t> number(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string encode_item(const RosterItem& item) {
  std::string out = std::to_string(item.ver);
  out += ' ';
  out += subscription_name(item.state.sub);
  out += item.state.pending_out ? " 1" : " 0";
  out += item.state.approved ? " 1 " : " 0 ";
  if (item.name) {
    out += std::to_string(item.name->size());
    out += ':';
    out += *item.name;
  } else {
    out += '-';
  }
  out += encode_groups(item.groups);
  return out;
}

std::string encode_tombstone(int64_t ver) { return std::to_string(ver) + " remove"; }

std::optional<StoredEntry> decode_entry(std::string_view contact, std::string_view value) {
  StoredEntry e;
  e.item.jid = std::string(contact);
  auto ver = number(field(value));
  if (!ver) return std::nullopt;
  e.item.ver = *ver;
  std::string_view sub = field(value);
  if (sub == "remove") {
    e.removed = true;
    return e;
  }
  auto parsed = parse_subscription(sub);
  if (!parsed) return std::nullopt;
  e.item.state.sub = *parsed;
  e.item.state.pending_out = field(value) == "1";
  e.item.state.approved = field(value) == "1";
  if (!value.empty() && value.front() == '-') {
    value.remove_prefix(1);
  } else {
    const auto colon = value.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto len = number(value.substr(0, colon));
    if (!len || *len < 0 || static_cast<std::size_t>(*len) > value.size() - colon - 1) return std::nullopt;
    e.item.name = std::string(value.substr(colon + 1, static_cast<std::size_t>(*len)));
    value.remove_prefix(colon + 1 + static_cast<std::size_t>(*len));
  }
  e.item.groups = decode_groups(value);
  return e;
}

int64_t StoredRoster::version() const {
  int64_t v = floor;
  for (const RosterItem& i : items) v = std::max(v, i.ver);
  for (const auto& r : removed) v = std::max(v, r.second);
  return v;
}

int64_t StoredRoster::bytes() const {
  int64_t sum = 0;
  for (const RosterItem& i : items) sum += static_cast<int64_t>(item_cost(i.jid, i.name, encode_groups(i.groups)));
  return sum;
}

const RosterItem* StoredRoster::find(std::string_view contact) const {
  for (const RosterItem& i : items)
    if (i.jid == contact) return &i;
  return nullptr;
}

bool StoredRoster::has_pending(std::string_view contact) const {
  for (const auto& p : pending)
    if (p.first == contact) return true;
  return false;
}

bool add_map_item(StoredRoster& out, std::string_view key, std::string_view value) {
  if (key == floor_key) {
    out.floor = number(value).value_or(0);
    return true;
  }
  if (key.substr(0, item_prefix.size()) == item_prefix) {
    auto e = decode_entry(key.substr(item_prefix.size()), value);
    if (!e) return false;
    if (e->removed) out.removed.emplace_back(std::move(e->item.jid), e->item.ver);
    else out.items.push_back(std::move(e->item));
    return true;
  }
  if (key.substr(0, pending_prefix.size()) == pending_prefix) {
    out.pending.emplace_back(std::string(key.substr(pending_prefix.size())), std::string(value));
    return true;
  }
  return false;
}

}  // namespace mod_roster
