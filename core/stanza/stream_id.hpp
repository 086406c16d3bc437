// core/stanza/stream_id.hpp - the id the server gives a stream it opens.
#pragma once

#include <cstddef>
#include <string>

#include "core/sasl/crypto.hpp"

namespace parley {

// `length` characters of [0-9a-z], each from a random byte: RFC 6120 section
// 4.7.3 wants an id nobody can guess (SCRAM's channel and a component's
// handshake, which hashes it with the secret, lean on that).
inline std::string make_stream_id(size_t length) {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string raw = sasl::random_bytes(length);
  std::string id;
  id.reserve(raw.size());
  for (unsigned char c : raw) id.push_back(digits[c % 36]);
  return id;
}

}  // namespace parley
