// xml/limits.hpp - the hostile-input limits of one XML stream (ARCHITECTURE.md, "Hostile input").
#pragma once

#include <cstddef>

namespace parley::xml {

struct Limits {
  // Bytes of one stanza, counted from the last point where the parser was idle between stanzas
  // (so whitespace keepalives and an endless start tag count too). Also bounds the stream header.
  size_t max_stanza_bytes = 262144;
  // Open elements, the stream root included: a stanza's top element is at depth 2.
  size_t max_depth = 32;
  // Attributes of one element, namespace declarations included.
  size_t max_attributes = 64;
  // One attribute value (or namespace URI of a declaration), after unescaping.
  size_t max_attribute_bytes = 8192;
  // One local name, prefix or namespace URI of an element or attribute name.
  size_t max_name_bytes = 1024;
  // Elements of one stanza. Each parsed element costs ~140 bytes of heap, so a
  // stanza of nothing but <a/> would cost ~36x its size without this bound.
  // At most 65535.
  size_t max_stanza_elements = 10000;
};

}  // namespace parley::xml
