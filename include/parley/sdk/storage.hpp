// parley/sdk/storage.hpp - module storage values: query parameters
// (Value) and results (Cell, Rows).
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"

namespace parley {

// A storage parameter: NULL, an integer, text (UTF-8) or a blob. Borrows its
// bytes: the host copies parameters during storage_query.
class Value {
 public:
  Value(std::nullptr_t = nullptr) noexcept : v_{PARLEY_VALUE_NULL, 0, {nullptr, 0}} {}
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Value(I i) noexcept : v_{PARLEY_VALUE_INT, static_cast<int64_t>(i), {nullptr, 0}} {}
  Value(std::string_view text) noexcept : v_{PARLEY_VALUE_TEXT, 0, detail::to_c(text)} {}
  Value(const char* text) noexcept : Value(std::string_view(text)) {}
  Value(const std::string& text) noexcept : Value(std::string_view(text)) {}
  static Value blob(std::string_view bytes) noexcept {
    Value v(bytes);
    v.v_.type = PARLEY_VALUE_BLOB;
    return v;
  }
  const parley_value& raw() const noexcept { return v_; }

 private:
  parley_value v_;
};

// One cell of a result, borrowed for the completion callback.
class Cell {
 public:
  explicit Cell(parley_value v) noexcept : v_(v) {}
  parley_value_type type() const noexcept { return static_cast<parley_value_type>(v_.type); }
  bool is_null() const noexcept { return v_.type == PARLEY_VALUE_NULL; }
  std::optional<int64_t> integer() const noexcept {
    return v_.type == PARLEY_VALUE_INT ? std::optional<int64_t>(v_.integer) : std::nullopt;
  }
  // TEXT or BLOB bytes.
  std::optional<std::string_view> bytes() const noexcept {
    return v_.type == PARLEY_VALUE_TEXT || v_.type == PARLEY_VALUE_BLOB ? std::optional(detail::to_sv(v_.bytes))
                                                                         : std::nullopt;
  }
  // The same, copied: for what outlives the completion callback.
  std::optional<std::string> text() const {
    auto b = bytes();
    return b ? std::optional<std::string>(std::string(*b)) : std::nullopt;
  }
 private:
  parley_value v_;
};

// A query's result, borrowed for the completion callback: copy what you keep.
class Rows {
 public:
  Rows(const parley_host_api* api, const parley_rows* rows) noexcept : api_(api), rows_(rows) {}
  std::size_t size() const { return api_->rows_count(rows_); }
  std::size_t columns() const { return api_->rows_columns(rows_); }
  int64_t changes() const { return api_->rows_changes(rows_); }  // rows changed by a write
  Cell at(std::size_t row, std::size_t column) const { return Cell(api_->rows_value(rows_, row, column)); }
  const parley_rows* raw() const noexcept { return rows_; }
 private:
  const parley_host_api* api_;
  const parley_rows* rows_;
};

}  // namespace parley
