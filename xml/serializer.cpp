#include "xml/serializer.hpp"

#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace parley::xml {

namespace {

bool is_stream_element(const Element& e, const SerializeContext& ctx) {
  return ctx.stream_prefix && e.xmlns() == kStreamsNs;
}

// "{uri}local" -> uri, local. Local names cannot contain '}', so the last one ends the URI.
bool split_clark(std::string_view name, std::string_view& uri, std::string_view& local) {
  if (name.size() < 2 || name.front() != '{') return false;
  size_t close = name.rfind('}');
  if (close == std::string_view::npos) return false;
  uri = name.substr(1, close - 1);
  local = name.substr(close + 1);
  return true;
}

bool is_ns_declaration(std::string_view name) {
  return name == "xmlns" || name.starts_with("xmlns:");
}

void write_attributes(std::string& out, const Element& e) {
  // Prefixes are declared on the element that uses them; a few URIs per element at most, so a vector.
  std::vector<std::string_view> prefixed;
  for (const Attribute& a : e.attrs()) {
    // Namespace declarations are the serializer's business; a stray one would duplicate or contradict ours.
    if (is_ns_declaration(a.name)) continue;
    std::string_view uri;
    std::string_view local;
    out += ' ';
    if (!split_clark(a.name, uri, local)) {
      out += a.name;
    } else if (uri.empty()) {
      out += local;
    } else if (uri == kXmlNs) {
      out += "xml:";
      out += local;
    } else {
      size_t index = 0;
      while (index < prefixed.size() && prefixed[index] != uri) ++index;
      std::string prefix = "ns" + std::to_string(index);
      if (index == prefixed.size()) {
        prefixed.push_back(uri);
        out += "xmlns:";
        out += prefix;
        out += "='";
        escape_attr_to(out, uri);
        out += "' ";
      }
      out += prefix;
      out += ':';
      out += local;
    }
    out += "='";
    escape_attr_to(out, a.value);
    out += '\'';
  }
}

void write_element(std::string& out, const Element& e, std::string_view scope_ns, const SerializeContext& ctx) {
  out += '<';
  const bool stream_el = is_stream_element(e, ctx);
  if (stream_el) {
    out += "stream:";
    out += e.name();
  } else {
    out += e.name();
    if (e.xmlns() != scope_ns) {
      out += " xmlns='";
      escape_attr_to(out, e.xmlns());
      out += '\'';
      scope_ns = e.xmlns();
    }
  }
  write_attributes(out, e);
  if (e.nodes().empty()) {
    out += "/>";
    return;
  }
  out += '>';
  for (const Node& n : e.nodes()) {
    if (n.element) {
      write_element(out, *n.element, scope_ns, ctx);
    } else {
      escape_text_to(out, n.text);
    }
  }
  out += "</";
  if (stream_el) out += "stream:";
  out += e.name();
  out += '>';
}

}  // namespace

void serialize_to(std::string& out, const Element& e, const SerializeContext& ctx) {
  write_element(out, e, ctx.default_ns, ctx);
}

namespace {

// What the element takes written out when nothing needs escaping or a namespace declaration: one
// allocation for the whole text instead of the string's doublings (four per chat message).
size_t plain_size(const Element& e, const std::string& scope_ns) {
  size_t n = 2 * e.name().size() + 5;  // <name ...> ... </name> or <name/>
  if (e.xmlns() != scope_ns) n += e.xmlns().size() + 9;  // xmlns='...'
  for (const Attribute& a : e.attrs()) n += a.name.size() + a.value.size() + 4;
  for (const Node& node : e.nodes()) n += node.element ? plain_size(*node.element, e.xmlns()) : node.text.size();
  return n;
}

}  // namespace

std::string serialize(const Element& e, const SerializeContext& ctx) {
  std::string out;
  out.reserve(plain_size(e, e.xmlns()) + 16);  // + an escape's or a prefix's worth of slack
  serialize_to(out, e, ctx);
  return out;
}

namespace {

// What a byte becomes, or nullptr if it is written as it is. Attribute values are
// written between apostrophes, and their whitespace escaped so that it survives
// attribute-value normalization (XML 1.0 section 3.3.3).
template <bool Attr>
const char* replacement(char c) {
  switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '\r': return "&#13;";
    default: break;
  }
  if constexpr (Attr) {
    switch (c) {
      case '\'': return "&apos;";
      case '"': return "&quot;";
      case '\t': return "&#9;";
      case '\n': return "&#10;";
      default: break;
    }
  }
  return nullptr;
}

// The index of the first byte at or after i that needs escaping, or s.size(). Sixteen
// bytes per step where SSE2 is there (every x86-64): most text has nothing to escape,
// and a byte at a time was most of the serializer's own time (callgrind, a chat message).
#if defined(__SSE2__)
// A mask of the bytes of the 16 at p that need escaping.
template <bool Attr>
int special_bits(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('&')), _mm_cmpeq_epi8(v, _mm_set1_epi8('<'))),
                             _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('>')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
  if constexpr (Attr) {
    const __m128i quotes = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\'')), _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    const __m128i spaces = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
    hit = _mm_or_si128(hit, _mm_or_si128(quotes, spaces));
  }
  return _mm_movemask_epi8(hit);
}
#endif

// The index of the first byte at or after i that needs escaping, or s.size(). Sixteen
// bytes per step where SSE2 is there (every x86-64), the last few through a zeroed
// block (a NUL never needs escaping): most text has nothing to escape, and a byte at a
// time was most of the serializer's own time (callgrind, a chat message).
template <bool Attr>
size_t next_special(std::string_view s, size_t i) {
#if defined(__SSE2__)
  for (; i + 16 <= s.size(); i += 16)
    if (const int bits = special_bits<Attr>(s.data() + i)) return i + static_cast<size_t>(__builtin_ctz(bits));
  if (i < s.size()) {
    char block[16] = {};
    std::memcpy(block, s.data() + i, s.size() - i);
    if (const int bits = special_bits<Attr>(block)) return i + static_cast<size_t>(__builtin_ctz(bits));
  }
  return s.size();
#else
  for (; i < s.size(); ++i)
    if (replacement<Attr>(s[i]) != nullptr) return i;
  return s.size();
#endif
}

template <bool Attr>
void escape_to(std::string& out, std::string_view s) {
  size_t plain = 0;
  for (size_t i = next_special<Attr>(s, 0); i < s.size(); i = next_special<Attr>(s, i + 1)) {
    out.append(s.data() + plain, i - plain);
    out += replacement<Attr>(s[i]);
    plain = i + 1;
  }
  out.append(s.data() + plain, s.size() - plain);
}

}  // namespace

void escape_text_to(std::string& out, std::string_view s) { escape_to<false>(out, s); }

void escape_attr_to(std::string& out, std::string_view s) { escape_to<true>(out, s); }

}  // namespace parley::xml
