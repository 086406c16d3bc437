// What the files of the host side of the module ABI (host_api*.cpp) share: the element
// handles' casts, writing to a module's sink, and the session a call names on the
// calling loop.
#pragma once

#include <string_view>

#include "parley/module.h"
#include "xml/element.hpp"

namespace parley {

class Session;

namespace host_support {

// A parley_element is an xml::Element the host made (module.h: element_*).
inline xml::Element* el(parley_element* e) { return reinterpret_cast<xml::Element*>(e); }
inline const xml::Element* el(const parley_element* e) { return reinterpret_cast<const xml::Element*>(e); }
inline parley_element* handle(xml::Element* e) { return reinterpret_cast<parley_element*>(e); }

inline void sink_write(parley_sink sink, std::string_view data) {
  if (sink.append != nullptr) sink.append(sink.ctx, data.data(), data.size());
}

// The session `id` if it is on the calling loop (module.h: session calls are made on the
// session's loop), else nullptr.
Session* session_here(parley_module* m, parley_session_id id);

}  // namespace host_support
}  // namespace parley
