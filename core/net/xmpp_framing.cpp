#include "core/net/xmpp_framing.hpp"

#include <expat.h>

#include <cstring>

#include "xml/serializer.hpp"

namespace parley::framing {

namespace {

constexpr size_t kMaxFramingElementBytes = 4096;  // an <open/> is a line; never a stanza's size

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

struct OpenParse {
  bool seen = false;
  bool bad = false;
  bool is_open = false;
  bool is_close = false;
  std::string to, version, lang;
};

void XMLCALL on_start(void* data, const XML_Char* name, const XML_Char** attrs) {
  auto* p = static_cast<OpenParse*>(data);
  if (p->seen) {
    p->bad = true;  // <open/> and <close/> have no children
    return;
  }
  p->seen = true;
  std::string_view n = name;  // "namespace\x01local" with XML_ParserCreateNS
  size_t sep = n.find('\x01');
  if (sep == std::string_view::npos || n.substr(0, sep) != kFramingNs) {
    p->bad = true;
    return;
  }
  std::string_view local = n.substr(sep + 1);
  p->is_open = local == "open";
  p->is_close = local == "close";
  if (!p->is_open && !p->is_close) p->bad = true;
  for (size_t i = 0; attrs[i] != nullptr; i += 2) {
    std::string_view a = attrs[i];
    if (a == "to") p->to = attrs[i + 1];
    else if (a == "version") p->version = attrs[i + 1];
    else if (a == "http://www.w3.org/XML/1998/namespace\x01lang") p->lang = attrs[i + 1];
  }
}

void XMLCALL on_doctype(void* data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  static_cast<OpenParse*>(data)->bad = true;  // restricted XML (RFC 6120 §11.1)
}

void XMLCALL on_entity(void* data, const XML_Char*, int, const XML_Char*, int, const XML_Char*, const XML_Char*,
                       const XML_Char*, const XML_Char*) {
  static_cast<OpenParse*>(data)->bad = true;
}

OpenParse parse_framing_element(std::string_view message) {
  OpenParse p;
  if (message.size() > kMaxFramingElementBytes) {
    p.bad = true;
    return p;
  }
  XML_Parser parser = XML_ParserCreateNS(nullptr, '\x01');
  if (parser == nullptr) {
    p.bad = true;
    return p;
  }
  XML_SetUserData(parser, &p);
  XML_SetStartElementHandler(parser, &on_start);
  XML_SetStartDoctypeDeclHandler(parser, &on_doctype);
  XML_SetEntityDeclHandler(parser, &on_entity);
  if (XML_Parse(parser, message.data(), static_cast<int>(message.size()), 1) != XML_STATUS_OK) p.bad = true;
  XML_ParserFree(parser);
  if (!p.seen) p.bad = true;
  return p;
}

// The local name of a message's root, for <open and <close: the text after '<'
// up to a space, '/' or '>'.
std::string_view root_name(std::string_view s) {
  if (s.empty() || s[0] != '<') return {};
  size_t end = 1;
  while (end < s.size() && !is_space(s[end]) && s[end] != '/' && s[end] != '>') ++end;
  return s.substr(1, end - 1);
}

}  // namespace

Inbound translate_in(std::string_view message) {
  Inbound in;
  size_t start = 0;
  while (start < message.size() && is_space(message[start])) ++start;
  if (start == message.size()) {
    in.kind = InKind::ignore;
    return in;
  }
  std::string_view body = message.substr(start);
  if (body.starts_with("<?xml")) {
    size_t end = body.find("?>");
    if (end != std::string_view::npos) {
      std::string_view rest = body.substr(end + 2);
      while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
      if (rest.starts_with("<open") || rest.starts_with("<close")) body = rest;
    }
  }
  std::string_view name = root_name(body);
  if (name != "open" && name != "close") {
    in.kind = InKind::stanza;  // the c2s parser judges it as on TCP
    return in;
  }
  OpenParse p = parse_framing_element(message);
  if (p.bad) {
    in.kind = InKind::invalid;
    return in;
  }
  if (p.is_close) {
    in.kind = InKind::close;
    in.translated = "</stream:stream>";
    return in;
  }
  in.kind = InKind::open;
  std::string& h = in.translated;
  h = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";
  auto attr = [&h](std::string_view key, const std::string& value, bool always) {
    if (value.empty() && !always) return;
    h += ' ';
    h += key;
    h += "='";
    xml::escape_attr_to(h, value);
    h += '\'';
  };
  attr("to", p.to, false);
  attr("version", p.version, false);
  attr("xml:lang", p.lang, false);
  h += '>';
  return in;
}

namespace {

// Scans one tag starting at s[i] == '<'; returns the index after its '>' or
// npos if it is not complete. Quotes are honoured ('>' may stand in a value).
size_t tag_end(std::string_view s, size_t i) {
  char quote = 0;
  for (size_t j = i + 1; j < s.size(); ++j) {
    char c = s[j];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '>') {
      return j + 1;
    }
  }
  return std::string_view::npos;
}

// The attribute names of a start tag `<name a='..' b="..">`.
bool has_attribute(std::string_view tag, std::string_view wanted) {
  size_t i = 1;
  while (i < tag.size() && !is_space(tag[i]) && tag[i] != '>' && tag[i] != '/') ++i;  // the name
  while (i < tag.size()) {
    while (i < tag.size() && is_space(tag[i])) ++i;
    size_t name_start = i;
    while (i < tag.size() && tag[i] != '=' && !is_space(tag[i]) && tag[i] != '>' && tag[i] != '/') ++i;
    std::string_view name = tag.substr(name_start, i - name_start);
    if (name.empty()) break;
    while (i < tag.size() && tag[i] != '\'' && tag[i] != '"') ++i;
    if (i >= tag.size()) break;
    char q = tag[i++];
    while (i < tag.size() && tag[i] != q) ++i;
    ++i;
    if (name == wanted) return true;
  }
  return false;
}

// The value of attribute `wanted` in a start tag (escaped as written).
std::string_view attribute(std::string_view tag, std::string_view wanted) {
  size_t at = 0;
  while ((at = tag.find(wanted, at)) != std::string_view::npos) {
    size_t after = at + wanted.size();
    if (at > 0 && is_space(tag[at - 1]) && after + 1 < tag.size() && tag[after] == '=' &&
        (tag[after + 1] == '\'' || tag[after + 1] == '"')) {
      char q = tag[after + 1];
      size_t end = tag.find(q, after + 2);
      if (end == std::string_view::npos) return {};
      return tag.substr(after + 2, end - after - 2);
    }
    at = after;
  }
  return {};
}

std::string open_from_header(std::string_view tag) {
  std::string out = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'";
  for (std::string_view key : {"id", "from", "version", "xml:lang"}) {
    std::string_view v = attribute(tag, key);
    if (v.empty()) continue;
    out += ' ';
    out += key;
    out += "='";
    out += v;  // already escaped: copied from our own header
    out += '\'';
  }
  out += "/>";
  return out;
}

// The element as a document of its own: its root declares its namespace.
std::string standalone(std::string_view element, size_t root_end) {
  std::string_view root = element.substr(0, root_end);
  std::string_view name = root_name(root);
  size_t insert_at = 1 + name.size();
  std::string out;
  out.reserve(element.size() + 60);
  out.append(element.substr(0, insert_at));
  if (name.starts_with("stream:")) {
    if (!has_attribute(root, "xmlns:stream")) out += " xmlns:stream='http://etherx.jabber.org/streams'";
  } else if (name.find(':') == std::string_view::npos && !has_attribute(root, "xmlns")) {
    out += " xmlns='jabber:client'";
  }
  out.append(element.substr(insert_at));
  return out;
}

}  // namespace

void Outbound::split(std::string_view bytes, std::vector<std::string>& messages) {
  std::string joined;
  if (!pending_.empty()) {
    joined = std::move(pending_);
    joined.append(bytes);
    pending_.clear();
    bytes = joined;
  }
  size_t i = 0;
  while (i < bytes.size()) {
    while (i < bytes.size() && bytes[i] != '<') ++i;  // whitespace keepalives are not sent (ping does that)
    if (i >= bytes.size()) break;
    size_t start = i;
    std::string_view rest = bytes.substr(i);
    if (rest.starts_with("<?")) {
      size_t end = rest.find("?>");
      if (end == std::string_view::npos) break;
      i += end + 2;
      continue;
    }
    size_t end = tag_end(bytes, i);
    if (end == std::string_view::npos) break;
    std::string_view first = bytes.substr(i, end - i);
    if (first.starts_with("</")) {
      // Only the stream's own end can close at the top level.
      if (first.starts_with("</stream:stream")) messages.emplace_back("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
      i = end;
      continue;
    }
    if (root_name(first) == "stream:stream") {
      messages.push_back(open_from_header(first));
      i = end;
      continue;
    }
    size_t root_end = end - start;
    // Walk to the end of this element.
    int depth = first.ends_with("/>") ? 0 : 1;
    size_t j = end;
    bool complete = depth == 0;
    while (!complete) {
      while (j < bytes.size() && bytes[j] != '<') ++j;
      if (j >= bytes.size()) break;
      size_t e = tag_end(bytes, j);
      if (e == std::string_view::npos) break;
      std::string_view tag = bytes.substr(j, e - j);
      if (tag.starts_with("</")) --depth;
      else if (!tag.ends_with("/>") && !tag.starts_with("<?") && !tag.starts_with("<!")) ++depth;
      j = e;
      if (depth == 0) complete = true;
    }
    if (!complete) {
      i = start;
      break;
    }
    messages.push_back(standalone(bytes.substr(start, j - start), root_end));
    i = j;
  }
  if (i < bytes.size()) {
    // An element cut between writes: keep it (and nothing before it).
    size_t keep = i;
    while (keep < bytes.size() && bytes[keep] != '<') ++keep;
    if (keep < bytes.size()) pending_.assign(bytes.substr(keep));
  }
}

}  // namespace parley::framing
