// The stanzas mod_csi holds for one inactive session: in order, bounded in
// count and bytes, and keeping only the latest presence of each contact (the
// older one is removed and the newer one goes to the end, so that what the
// client finally gets is the stanzas it would have got, in their order, minus
// the superseded presences).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parley/sdk/out_bytes.hpp"

namespace parley::csi {

struct BufferLimits {
  std::size_t max_stanzas = 256;
  std::size_t max_bytes = 262144;
};

class HeldBuffer {
 public:
  struct Entry {
    std::string key;  // presence_key(): "" if never superseded
    OutBytes xml;     // the stanza as it was to be written (a broadcast's: shared with the host)
    std::string stamp;      // not empty: its XEP-0203 <delay/> stamp, added when it is released
    std::size_t bytes = 0;  // what counts against max_bytes: xml and that <delay/>
  };
  struct Pushed {
    bool superseded = false;  // an older presence with the same key was removed
    bool full = false;        // not held: it would take the buffer over a limit
  };

  explicit HeldBuffer(BufferLimits limits = {}) : limits_(limits) {}

  // Holds `xml` at the end. When it does not fit (full), nothing is added and
  // the caller flushes take() and then sends the stanza itself; a superseded
  // presence is removed all the same.
  // `stamp`, if any, is kept with it for the release; `extra` bytes (its
  // <delay/>'s) count with it.
  Pushed push(std::string key, OutBytes xml, std::string stamp = {}, std::size_t extra = 0);
  Pushed push(std::string key, std::string xml) { return push(std::move(key), OutBytes(std::move(xml))); }
  // Everything held, in order; the buffer is empty afterwards.
  std::vector<Entry> take();

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return entries_.empty(); }

  // For a hot reload: "<keylen>:<key><xmllen>:<xml>" per entry, the xml
  // given by `text` (the stanza with its <delay/>; unset: the xml as held).
  std::string save(const std::function<std::string(const Entry&)>& text = {}) const;
  // nullopt if malformed. Entries are restored as they were, even past the
  // limits (the next push then finds the buffer full).
  static std::optional<HeldBuffer> restore(std::string_view bytes, BufferLimits limits);

 private:
  void append(Entry entry);

  BufferLimits limits_;
  std::list<Entry> entries_;
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;
  std::size_t bytes_ = 0;
};

}  // namespace parley::csi
