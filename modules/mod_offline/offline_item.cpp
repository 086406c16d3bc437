// mod_offline/offline_item.cpp - see offline_item.hpp.
#include "offline_item.hpp"

#include <cstdio>

namespace parley::offline {

std::string encode_item(std::string_view sender, std::string_view xml) {
  std::string out;
  out.reserve(sender.size() + 1 + xml.size());
  out.append(sender);
  out.push_back('\n');
  out.append(xml);
  return out;
}

std::optional<StoredItem> decode_item(std::string_view value) {
  std::size_t nl = value.find('\n');
  if (nl == std::string_view::npos || nl + 1 >= value.size() || value[nl + 1] != '<') return std::nullopt;
  return StoredItem{value.substr(0, nl), value.substr(nl + 1)};
}

std::string item_key(uint64_t unix_us, uint32_t loop, uint32_t counter) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "m%016llx%04x%08x", static_cast<unsigned long long>(unix_us), loop & 0xffffu,
                counter);
  return buf;
}

std::string moved_key(int64_t row_id) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "old%020lld", static_cast<long long>(row_id));
  return buf;
}

}  // namespace parley::offline
