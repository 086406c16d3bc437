// A parley_sink that appends to a std::string: how the core collects what a
// module writes through a sink (an error text from start(), saved state).
#pragma once

#include <string>

#include "parley/module.h"

namespace parley {

inline parley_sink string_sink(std::string& out) {
  return parley_sink{&out, [](void* ctx, const char* data, size_t len) {
                       static_cast<std::string*>(ctx)->append(data, len);
                     }};
}

}  // namespace parley
