// parley/sdk/out_bytes.hpp - what an outgoing filter keeps of a stanza it
// passes, by reference when the host can (module.h stanza_out_bytes, ABI 1.7,
// issue 15): a room's broadcast is serialized once for every occupant, and a
// filter that keeps what was written (stream management's unacknowledged
// queue) holds a reference to those bytes instead of serializing its own copy.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own (OutBytes itself needs only parley/module.h, so that a
// module's host-free logic can hold one).
//
//   parley::OutBytes kept = parley::stanza_out_bytes(host(), *ev.stanza());
//   kept.size();   // bytes as written
//   kept.str();    // the text, assembled (to parse it again)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "parley/module.h"

namespace parley {

// The bytes of one stanza as written: the module's own text, or a host handle
// (immutable, released when this goes; may go on any thread). Move-only.
class OutBytes {
 public:
  OutBytes() = default;
  explicit OutBytes(std::string text) : text_(std::move(text)) {}
  // Takes `handle` (from api->stanza_out_bytes; null: empty).
  OutBytes(const parley_host_api* api, parley_out_bytes* handle) noexcept {
    if (handle == nullptr || api == nullptr) return;
    handle_ = handle;
    release_ = api->out_bytes_release;
    parley_str parts[kMaxParts];
    size_t n = api->out_bytes_parts(handle, parts, kMaxParts);
    if (n > kMaxParts) {
      // Not a form this SDK knows (a newer host's): copied, and let go.
      release_(handle_);
      handle_ = nullptr;
      return;
    }
    count_ = n;
    for (size_t i = 0; i < n; ++i) {
      parts_[i] = std::string_view(parts[i].ptr, parts[i].len);
      size_ += parts[i].len;
    }
  }
  OutBytes(OutBytes&& o) noexcept { take(o); }
  OutBytes& operator=(OutBytes&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  OutBytes(const OutBytes&) = delete;
  OutBytes& operator=(const OutBytes&) = delete;
  ~OutBytes() { reset(); }

  // Whether the bytes are the host's (shared) rather than a text of our own.
  bool shared() const noexcept { return handle_ != nullptr; }
  std::size_t size() const noexcept { return handle_ ? size_ : text_.size(); }
  bool empty() const noexcept { return size() == 0; }
  void append_to(std::string& out) const {
    if (!handle_) {
      out += text_;
      return;
    }
    for (size_t i = 0; i < count_; ++i) out += parts_[i];
  }
  std::string str() const {
    if (!handle_) return text_;
    std::string out;
    out.reserve(size_);
    append_to(out);
    return out;
  }

 private:
  static constexpr size_t kMaxParts = 3;
  void reset() noexcept {
    if (handle_ && release_) release_(handle_);
    handle_ = nullptr;
    count_ = size_ = 0;
    text_.clear();
  }
  void take(OutBytes& o) noexcept {
    text_ = std::move(o.text_);
    handle_ = o.handle_;
    release_ = o.release_;
    count_ = o.count_;
    size_ = o.size_;
    for (size_t i = 0; i < kMaxParts; ++i) parts_[i] = o.parts_[i];
    o.handle_ = nullptr;
    o.count_ = o.size_ = 0;
  }

  std::string text_;
  parley_out_bytes* handle_ = nullptr;
  void (*release_)(parley_out_bytes*) = nullptr;
  std::string_view parts_[kMaxParts];  // borrowed from the handle, which is immutable
  size_t count_ = 0;
  size_t size_ = 0;
};

}  // namespace parley
