// parley/sdk/detail.hpp - the wrapper's plumbing: C string and sink
// conversions, struct-version checks, the logic-error throw.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.h"

// True if a struct that starts with its `size` (args, requests, the host
// table) is recent enough to hold `member`.
#define PARLEY_STRUCT_HAS(type, ptr, member) \
  ((ptr)->size >= offsetof(type, member) + sizeof(type::member))
// For Host::supports: where a host-table entry ends.
#define PARLEY_HOST_ENTRY_END(member) (offsetof(parley_host_api, member) + sizeof(parley_host_api::member))

namespace parley {

namespace detail {

inline parley_str to_c(std::string_view s) noexcept { return parley_str{s.data(), s.size()}; }
inline std::string_view to_sv(parley_str s) noexcept {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

// The host calls append() from C: it must not throw, so a failure is remembered.
struct StringSink {
  std::string out;
  bool failed = false;
  parley_sink sink() noexcept { return parley_sink{this, &append}; }
  static void append(void* ctx, const char* data, size_t len) noexcept {
    auto* self = static_cast<StringSink*>(ctx);
    if (self->failed) return;
    try {
      self->out.append(data, len);
    } catch (...) {
      self->failed = true;
    }
  }
  std::string take() {
    if (failed) throw std::bad_alloc();
    return std::move(out);
  }
};

struct ListSink {
  std::vector<std::string> items;
  bool failed = false;
  parley_sink sink() noexcept { return parley_sink{this, &append}; }
  static void append(void* ctx, const char* data, size_t len) noexcept {
    auto* self = static_cast<ListSink*>(ctx);
    if (self->failed) return;
    try {
      self->items.emplace_back(data, len);
    } catch (...) {
      self->failed = true;
    }
  }
  std::vector<std::string> take() {
    if (failed) throw std::bad_alloc();
    return std::move(items);
  }
};

// The size of the 1.0 host table: the wrapper uses every 1.0 entry unchecked.
inline constexpr size_t host_api_size_1_0 =
    offsetof(parley_host_api, server_features) + sizeof(parley_host_api::server_features);

inline void sink_write(parley_sink sink, std::string_view text) noexcept {
  if (sink.append && !text.empty()) sink.append(sink.ctx, text.data(), text.size());
}

[[noreturn]] inline void fail(const char* what) { throw std::logic_error(what); }

}  // namespace detail

}  // namespace parley
