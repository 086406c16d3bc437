// storage/pg_binary_array.hpp - array parameters for PostgreSQL in its binary format,
// shared by the stores that send many values in one statement (the archive's batched
// appends, keyval's get of many users).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "storage/pg_connection.hpp"

namespace parley::storage {

// A one-dimensional array parameter in PostgreSQL's binary format (what array_recv
// reads): no text to build and escape here nor to parse there, and a payload goes as its
// bytes, not as twice as many hex digits (both showed in the profiles of an archiving
// server: bench/chat_mam.py). Everything big-endian: the number of dimensions (1), a
// has-nulls flag (0), the element type's OID, the dimension's length and lower bound (1),
// then each element as its length and its bytes.
class BinaryArray {
 public:
  // The built-in types' OIDs (pg_type.dat: fixed, the same in every database).
  static constexpr uint32_t kInt8 = 20, kText = 25, kBytea = 17;

  BinaryArray(uint32_t element_oid, size_t count, size_t bytes) {
    out_.reserve(20 + count * 4 + bytes);
    put32(1);
    put32(0);
    put32(element_oid);
    put32(static_cast<uint32_t>(count));
    put32(1);
  }
  void add(std::string_view v) {
    put32(static_cast<uint32_t>(v.size()));
    out_.append(v);
  }
  void add(int64_t v) {
    put32(8);
    for (int shift = 56; shift >= 0; shift -= 8) out_ += static_cast<char>((static_cast<uint64_t>(v) >> shift) & 0xff);
  }
  PgParam param() && { return PgParam::bytes(std::move(out_)); }

 private:
  void put32(uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out_ += static_cast<char>((v >> shift) & 0xff);
  }
  std::string out_;
};

}  // namespace parley::storage
