// xml/expat_glue.hpp - the small pieces between expat and the stream parser: the counting memory suite,
// name splitting, error mapping. Internal to xml/ (it includes expat.h; nothing outside xml/ should).
#pragma once

#include <expat.h>

#include <string>
#include <string_view>

#include "xml/stream_parser.hpp"

namespace parley::xml::detail {

// Expat joins namespace URI, local name and prefix with this. It cannot occur in a name or URI:
// U+0001 is not an XML 1.0 character, not even as a character reference.
inline constexpr char kNsSeparator = '\x01';

// The memory suite that counts expat's heap for expat_heap_bytes(); null where it cannot count.
const XML_Memory_Handling_Suite* counting_memory_suite();

// A random hash salt drawn once per process. Expat would otherwise draw one per parser with a getrandom()
// call, a third of the cost of re-creating a released parser; per process is enough against hash flooding.
unsigned long process_hash_salt();

// An expat name in namespace-triplet mode: "uri SEP local SEP prefix", "uri SEP local" or "local".
struct QName {
  std::string_view uri;
  std::string_view local;
  std::string_view prefix;
};
QName split_name(const XML_Char* raw);

// Attribute::name: "local", "xml:local" or "{uri}local".
std::string attribute_name(const QName& q);

// Case-insensitive "UTF-8".
bool is_utf8_label(std::string_view encoding);

ParseError map_expat_error(XML_Error code);

}  // namespace parley::xml::detail
