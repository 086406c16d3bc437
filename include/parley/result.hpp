// parley/result.hpp - a small value-or-error type (std::expected is C++23; clang 14
// cannot compile libstdc++'s <expected>, and the fuzz builds use clang).
//
// Header-only and C++ only: it never crosses the plugin ABI, modules compile it in.
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace parley {

template <class E>
struct Unexpected {
  E error;
};

template <class E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return Unexpected<std::decay_t<E>>{std::forward<E>(e)};
}

template <class T, class E>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  using error_type = E;

  Result(const T& v) : data_(std::in_place_index<0>, v) {}
  Result(T&& v) : data_(std::in_place_index<0>, std::move(v)) {}
  template <class G>
  Result(Unexpected<G> u) : data_(std::in_place_index<1>, std::move(u.error)) {}

  bool has_value() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(data_); }
  const T& value() const& { assert(has_value()); return std::get<0>(data_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(data_)); }
  E& error() & { assert(!has_value()); return std::get<1>(data_); }
  const E& error() const& { assert(!has_value()); return std::get<1>(data_); }
  E&& error() && { assert(!has_value()); return std::get<1>(std::move(data_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E> data_;
};

template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  template <class G>
  Result(Unexpected<G> u) : error_(std::move(u.error)), ok_(false) {}

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  void value() const { assert(ok_); }
  E& error() & { assert(!ok_); return error_; }
  const E& error() const& { assert(!ok_); return error_; }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace parley
