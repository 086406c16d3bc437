// xml/serializer.hpp - Element tree -> XML text.
//
// Children in their parent's namespace get no xmlns=; a child in another namespace gets xmlns='...';
// namespaced attributes ("{uri}local") get generated prefixes (xmlns:ns0='uri'), "xml:lang" is written as
// is. Attributes are quoted with '. The output re-parses (inside a stream whose header declared the same
// default namespace and the stream prefix) to an equal tree. Names are written as given: they must be
// valid XML names, and text must consist of valid XML characters (every parsed tree does).
#pragma once

#include <string>
#include <string_view>

#include "xml/element.hpp"

namespace parley::xml {

inline constexpr std::string_view kStreamsNs = "http://etherx.jabber.org/streams";
inline constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";

struct SerializeContext {
  // The namespace in scope (e.g. "jabber:client" for stanzas in a c2s stream): elements in it are
  // written without xmlns=.
  std::string_view default_ns;
  // Elements in http://etherx.jabber.org/streams are written as stream:NAME with no declaration (the
  // stream header declared the prefix).
  bool stream_prefix = true;
};

void serialize_to(std::string& out, const Element& e, const SerializeContext& ctx = {});
std::string serialize(const Element& e, const SerializeContext& ctx = {});

// & < > (and CR as &#13;, which a parser would otherwise turn into LF).
void escape_text_to(std::string& out, std::string_view s);
// & < > ' " (and TAB, LF, CR as character references, which attribute normalization would turn into spaces).
void escape_attr_to(std::string& out, std::string_view s);

}  // namespace parley::xml
