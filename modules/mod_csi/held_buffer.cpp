#include "held_buffer.hpp"

#include <charconv>

namespace parley::csi {

HeldBuffer::Pushed HeldBuffer::push(std::string key, OutBytes xml, std::string stamp, std::size_t extra) {
  Pushed out;
  if (!key.empty()) {
    auto it = by_key_.find(key);
    if (it != by_key_.end()) {
      bytes_ -= it->second->bytes;
      entries_.erase(it->second);
      by_key_.erase(it);
      out.superseded = true;
    }
  }
  const std::size_t size = xml.size() + extra;
  if (entries_.size() + 1 > limits_.max_stanzas || bytes_ + size > limits_.max_bytes) {
    out.full = true;
    return out;
  }
  append(Entry{std::move(key), std::move(xml), std::move(stamp), size});
  return out;
}

void HeldBuffer::append(Entry entry) {
  bytes_ += entry.bytes;
  entries_.push_back(std::move(entry));
  if (!entries_.back().key.empty()) by_key_[entries_.back().key] = std::prev(entries_.end());
}

std::vector<HeldBuffer::Entry> HeldBuffer::take() {
  std::vector<Entry> out;
  out.reserve(entries_.size());
  for (Entry& e : entries_) out.push_back(std::move(e));
  entries_.clear();
  by_key_.clear();
  bytes_ = 0;
  return out;
}

std::string HeldBuffer::save(const std::function<std::string(const Entry&)>& text) const {
  std::string out;
  out.reserve(bytes_ + entries_.size() * 16);
  for (const Entry& e : entries_) {
    out += std::to_string(e.key.size()) + ":" + e.key;
    std::string xml = text ? text(e) : e.xml.str();
    out += std::to_string(xml.size()) + ":" + xml;
  }
  return out;
}

namespace {

// "<len>:<bytes>" at the front of `in`, consumed.
std::optional<std::string_view> take_field(std::string_view& in) {
  auto colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::size_t len = 0;
  auto [end, ec] = std::from_chars(in.data(), in.data() + colon, len);
  if (ec != std::errc() || end != in.data() + colon || len > in.size() - colon - 1) return std::nullopt;
  std::string_view field = in.substr(colon + 1, len);
  in.remove_prefix(colon + 1 + len);
  return field;
}

}  // namespace

std::optional<HeldBuffer> HeldBuffer::restore(std::string_view bytes, BufferLimits limits) {
  HeldBuffer buffer(limits);
  while (!bytes.empty()) {
    auto key = take_field(bytes);
    if (!key) return std::nullopt;
    auto xml = take_field(bytes);
    if (!xml || xml->empty()) return std::nullopt;
    buffer.append(Entry{std::string(*key), OutBytes(std::string(*xml)), {}, xml->size()});
  }
  return buffer;
}

}  // namespace parley::csi
