// RFC 6120 §8.2.3's rules for an iq, and the presence types of RFC 6121 §4.7.1:
// shared by the streams that take stanzas in (c2s, external components).
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

// A presence's 'type', if it has one, is one of RFC 6121 §4.7.1's ("MUST have one
// of the following values"): anything else is answered with bad-request (RFC 6120
// §8.3.3.1; ejabberd refuses it alike) rather than passed to a recipient that would
// have to guess. (A message of an unknown type is a normal one, RFC 6121 §5.2.2, and
// is routed as such.)
inline bool valid_presence_type(const xml::Element& presence) {
  if (presence.name() != "presence" || !presence.has_attr("type")) return true;
  const std::string_view type = presence.attr("type");
  return type == "unavailable" || type == "subscribe" || type == "subscribed" || type == "unsubscribe" ||
         type == "unsubscribed" || type == "probe" || type == "error";
}

}  // namespace parley
