// storage/error.hpp - the error every storage call returns.
#pragma once

#include <string>

namespace parley::storage {

struct Error {
  int code = 0;         // SQLite extended result code, or 0 for errors of our own
  std::string message;  // human readable, already names what failed
};

}  // namespace parley::storage
