// parley/sdk/archive.hpp - the archive store (module.h: archive_append, archive_query,
// archive_remove): a query (ArchiveQuery) and the page a completion gets (ArchivePage,
// borrowed for the callback). Host::archive_* make the calls.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"

namespace parley {

// See parley_archive_query: the result set (owner, with, start/end, after/before ids,
// ids) and the page of it (page_after, or from_end back from page_before; max).
struct ArchiveQuery {
  std::string owner;  // bare JID
  std::string with;
  int64_t start_us = std::numeric_limits<int64_t>::min();
  int64_t end_us = std::numeric_limits<int64_t>::max();
  uint64_t after_id = 0;
  uint64_t before_id = 0;
  bool by_ids = false;
  std::vector<uint64_t> ids;
  uint64_t page_after = 0;
  uint64_t page_before = 0;
  bool from_end = false;
  uint32_t max = 0;
  uint64_t min_id = 0;  // ABI 1.10: a retention bound (parley_archive_query.min_id)
};

// One entry, borrowed for the callback.
struct ArchiveEntryView {
  uint64_t id;
  int64_t timestamp_us;
  std::string_view with;
  std::string_view payload;
};

// A page, borrowed for the callback: copy what you keep.
class ArchivePage {
 public:
  explicit ArchivePage(const parley_archive_page* p) noexcept : p_(p) {}
  std::size_t size() const noexcept { return p_ ? p_->count : 0; }
  ArchiveEntryView at(std::size_t i) const noexcept {
    const parley_archive_entry& e = p_->entries[i];
    return ArchiveEntryView{e.id, e.timestamp_us, detail::to_sv(e.with), detail::to_sv(e.payload)};
  }
  uint64_t total() const noexcept { return p_ ? p_->total : 0; }  // query: the set's size; remove: removed
  uint64_t index() const noexcept { return p_ ? p_->index : 0; }
  bool complete() const noexcept { return p_ && p_->complete != 0; }

 private:
  const parley_archive_page* p_;
};

}  // namespace parley
