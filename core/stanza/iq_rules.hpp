// RFC 6120 §8.2.3's rules for an iq, shared by the streams that take stanzas in
// (c2s, external components).
#pragma once

#include <string_view>

#include "xml/element.hpp"

namespace parley {

// An iq needs an id, a known type, and a get or set exactly one payload child
// (a result at most one).
inline bool valid_iq(const xml::Element& iq) {
  std::string_view type = iq.attr("type");
  if (!iq.has_attr("id")) return false;
  if (type == "get" || type == "set") return iq.child_count() == 1;
  if (type == "result") return iq.child_count() <= 1;
  return type == "error";
}

}  // namespace parley
