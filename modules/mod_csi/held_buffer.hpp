// The stanzas mod_csi holds for one inactive session: in order, bounded in
// count and bytes, and keeping only the latest presence of each contact (the
// older one is removed and the newer one goes to the end, so that what the
// client finally gets is the stanzas it would have got, in their order, minus
// the superseded presences).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::csi {

struct BufferLimits {
  std::size_t max_stanzas = 256;
  std::size_t max_bytes = 262144;
};

class HeldBuffer {
 public:
  struct Entry {
    std::string key;  // presence_key(): "" if never superseded
    std::string xml;  // the stanza, serialized
  };
  struct Pushed {
    bool superseded = false;  // an older presence with the same key was removed
    bool full = false;        // not held: it would take the buffer over a limit
  };

  explicit HeldBuffer(BufferLimits limits = {}) : limits_(limits) {}

  // Holds `xml` at the end. When it does not fit (full), nothing is added and
  // the caller flushes take() and then sends the stanza itself; a superseded
  // presence is removed all the same.
  Pushed push(std::string key, std::string xml);
  // Everything held, in order; the buffer is empty afterwards.
  std::vector<Entry> take();

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return entries_.empty(); }

  // For a hot reload: "<keylen>:<key><xmllen>:<xml>" per entry.
  std::string save() const;
  // nullopt if malformed. Entries are restored as they were, even past the
  // limits (the next push then finds the buffer full).
  static std::optional<HeldBuffer> restore(std::string_view bytes, BufferLimits limits);

 private:
  void append(std::string key, std::string xml);

  BufferLimits limits_;
  std::list<Entry> entries_;
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;
  std::size_t bytes_ = 0;
};

}  // namespace parley::csi
