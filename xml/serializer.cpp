#include "xml/serializer.hpp"

#include <vector>

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

void escape_text_to(std::string& out, std::string_view s) {
  size_t plain = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    switch (s[i]) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '\r': rep = "&#13;"; break;
      default: continue;
    }
    out.append(s.data() + plain, i - plain);
    out += rep;
    plain = i + 1;
  }
  out.append(s.data() + plain, s.size() - plain);
}

void escape_attr_to(std::string& out, std::string_view s) {
  size_t plain = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char* rep = nullptr;
    switch (s[i]) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '\'': rep = "&apos;"; break;
      case '"': rep = "&quot;"; break;
      case '\t': rep = "&#9;"; break;
      case '\n': rep = "&#10;"; break;
      case '\r': rep = "&#13;"; break;
      default: continue;
    }
    out.append(s.data() + plain, i - plain);
    out += rep;
    plain = i + 1;
  }
  out.append(s.data() + plain, s.size() - plain);
}

}  // namespace parley::xml
