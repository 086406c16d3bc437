// core/export/pie_reader.cpp - see pie_reader.hpp.
#include "core/export/pie_reader.hpp"

#include <expat.h>

#include <cstdio>
#include <vector>

namespace parley::pie {
namespace {

constexpr char kSep = '\x01';  // not an XML character: cannot occur in a name or URI
constexpr std::string_view kXmlNs = "http://www.w3.org/XML/1998/namespace";
constexpr std::string_view kXIncludeNs = "http://www.w3.org/2001/XInclude";
// XEP-0227 before version 1.1 (and the exporters written for it).
constexpr std::string_view kOldPieNs = "http://www.xmpp.org/extensions/xep-0227.html#ns";
constexpr int kMaxIncludeDepth = 4;  // main file -> host file -> user file, with room

bool is_pie(std::string_view uri) { return uri == kPieNs || uri == kOldPieNs; }
// The old namespace is read as the new one, so that modules look for one only.
std::string pie_ns(std::string_view uri) { return std::string(uri == kOldPieNs ? kPieNs : uri); }

struct Name {
  std::string_view uri;
  std::string_view local;
};

Name split(const XML_Char* raw) {
  std::string_view s(raw);
  size_t at = s.find(kSep);
  if (at == std::string_view::npos) return {{}, s};
  return {s.substr(0, at), s.substr(at + 1)};
}

std::string attribute_name(const Name& n) {
  if (n.uri.empty()) return std::string(n.local);
  if (n.uri == kXmlNs) return "xml:" + std::string(n.local);
  return "{" + std::string(n.uri) + "}" + std::string(n.local);
}

}  // namespace

std::string PieError::to_string() const {
  return line ? "line " + std::to_string(line) + ": " + message : message;
}

// Levels: 0 outside the root, 1 in server-data, 2 in host, 3+ in a user (kept) or in a
// skipped element (skip_depth counts its open elements).
struct PieReader::State {
  XML_Parser parser = nullptr;
  UserFn on_user;
  PieLimits limits;
  int level = 0;
  size_t skip_depth = 0;
  bool root_seen = false;
  bool root_closed = false;
  std::string host;
  PieUser user;
  std::vector<xml::Element*> stack;  // the open elements of the user being built
  int64_t user_start = 0;            // byte index of its start tag (of its part's cut)
  uint64_t users = 0;
  bool failed = false;
  PieError error;
  // Where the root is expected: 0 a <server-data/> document, 1 a <host/> (an XInclude'd
  // host file), 2 a <user/> (an XInclude'd user file, host already known).
  int base_level = 0;
  std::string base_dir;   // for XInclude hrefs; empty: includes are refused
  int include_depth = 0;  // files open above this one

  void fail(std::string message) {
    if (failed) return;
    failed = true;
    error = PieError{XML_GetCurrentLineNumber(parser), std::move(message)};
    XML_StopParser(parser, XML_FALSE);
  }

  bool over_user_limit() {
    if (XML_GetCurrentByteIndex(parser) - user_start <= static_cast<int64_t>(limits.max_user_bytes)) return false;
    fail("user '" + user.name + "' is larger than " + std::to_string(limits.max_user_bytes) + " bytes" +
         (limits.part_bytes ? " without a place to cut it (an entry of its archive or offline messages)" : ""));
    return true;
  }

  void start(const XML_Char* raw, const XML_Char** attrs) {
    if (failed) return;
    Name n = split(raw);
    if (skip_depth > 0) {
      ++skip_depth;
      return;
    }
    auto attr = [&](std::string_view want) -> const XML_Char* {
      for (const XML_Char** a = attrs; *a; a += 2)
        if (std::string_view(a[0]) == want) return a[1];
      return nullptr;
    };
    if (level == base_level && root_seen) return fail("more than one root element");
    if ((level == 1 || level == 2) && level > base_level && n.uri == kXIncludeNs && n.local == "include")
      return include(attr("href"), attr("parse"), attr("xpointer"));
    switch (level) {
      case 0:
        if (!is_pie(n.uri) || n.local != "server-data")
          return fail("not a XEP-0227 document: the root is not <server-data xmlns='urn:xmpp:pie:0'/>");
        root_seen = true;
        level = 1;
        return;
      case 1: {
        if (!is_pie(n.uri) || n.local != "host") {
          if (level == base_level) return fail("an included host file's root is not <host/>");
          skip_depth = 1;  // xs:any ##other
          return;
        }
        const XML_Char* jid = attr("jid");
        if (!jid || !*jid) return fail("<host/> without a jid");
        root_seen = true;
        host = jid;
        level = 2;
        return;
      }
      case 2: {
        if (!is_pie(n.uri) || n.local != "user") {
          if (level == base_level) return fail("an included user file's root is not <user/>");
          skip_depth = 1;
          return;
        }
        const XML_Char* name = attr("name");
        if (!name || !*name) return fail("<user/> without a name");
        root_seen = true;
        user = PieUser{};
        user.host = host;
        user.name = name;
        user.line = XML_GetCurrentLineNumber(parser);
        user.user = xml::Element(std::string(n.local), pie_ns(n.uri));
        for (const XML_Char** a = attrs; *a; a += 2) user.user.append_attr(attribute_name(split(a[0])), a[1]);
        user_start = XML_GetCurrentByteIndex(parser);
        stack.assign(1, &user.user);
        level = 3;
        return;
      }
      default: {
        if (over_user_limit()) return;
        if (stack.size() >= limits.max_depth)
          return fail("elements nested deeper than " + std::to_string(limits.max_depth) + " in user '" + user.name + "'");
        xml::Element& child = stack.back()->add_child(std::string(n.local), pie_ns(n.uri));
        for (const XML_Char** a = attrs; *a; a += 2) child.append_attr(attribute_name(split(a[0])), a[1]);
        stack.push_back(&child);
        return;
      }
    }
  }

  // XEP-0227 section 4: <xi:include href='relative URI'/> with neither 'parse' nor
  // 'xpointer' (which an importer MUST support) in <server-data/> (a host file) or in a
  // <host/> (a user file), read where it stands.
  void include(const XML_Char* href, const XML_Char* parse, const XML_Char* xpointer);
  void end(const XML_Char*) {
    if (failed) return;
    if (skip_depth > 0) {
      --skip_depth;
      return;
    }
    switch (level) {
      case 1:
        level = 0;
        break;
      case 2:
        level = 1;
        if (base_level < 1) host.clear();
        break;
      case 3:
        if (stack.size() > 1) {
          stack.pop_back();
          if (stack.size() == 2 && limits.part_bytes > 0 && is_list(*stack[1]) &&
              XML_GetCurrentByteIndex(parser) - user_start >= static_cast<int64_t>(limits.part_bytes))
            cut();
          return;
        }
        if (over_user_limit()) return;
        stack.clear();
        level = 2;
        ++users;
        user.last = true;
        if (!on_user(std::move(user))) fail("stopped");
        user = PieUser{};
        break;
      default:
        return;
    }
    if (level == base_level) root_closed = true;
  }

  static bool is_list(const xml::Element& e) {
    return (e.name() == "archive" && e.xmlns() == "urn:xmpp:pie:0#mam") ||
           (e.name() == "offline-messages" && e.xmlns() == kPieNs);
  }

  // Hands over the user read so far as a part, and goes on with an empty one: the same
  // <user/> around the same list, open.
  void cut() {
    const xml::Element& list = *stack[1];
    xml::Element next_user(std::string(user.user.name()), std::string(user.user.xmlns()));
    for (const auto& a : user.user.attrs()) next_user.append_attr(a.name, a.value);
    xml::Element next_list(std::string(list.name()), std::string(list.xmlns()));
    for (const auto& a : list.attrs()) next_list.append_attr(a.name, a.value);
    PieUser part;
    part.host = user.host;
    part.name = user.name;
    part.line = user.line;
    part.part = user.part;
    part.last = false;
    part.user = std::move(user.user);
    user.user = std::move(next_user);
    ++user.part;
    stack.assign(1, &user.user);
    stack.push_back(&user.user.add_child(std::move(next_list)));
    user_start = XML_GetCurrentByteIndex(parser);
    if (!on_user(std::move(part))) fail("stopped");
  }

  void text(const XML_Char* s, int len) {
    if (failed || skip_depth > 0 || level < 3 || stack.empty()) return;
    if (over_user_limit()) return;
    stack.back()->add_text(std::string_view(s, static_cast<size_t>(len)));
  }
};

PieReader::PieReader(UserFn on_user, PieLimits limits) : s_(std::make_unique<State>()) {
  s_->on_user = std::move(on_user);
  s_->limits = limits;
  s_->parser = XML_ParserCreateNS(nullptr, kSep);
  XML_SetUserData(s_->parser, s_.get());
  XML_SetElementHandler(
      s_->parser,
      [](void* d, const XML_Char* name, const XML_Char** attrs) { static_cast<State*>(d)->start(name, attrs); },
      [](void* d, const XML_Char* name) { static_cast<State*>(d)->end(name); });
  XML_SetCharacterDataHandler(s_->parser,
                              [](void* d, const XML_Char* s, int len) { static_cast<State*>(d)->text(s, len); });
  // No DTD: no entity can expand (billion laughs) and no external one is read.
  XML_SetStartDoctypeDeclHandler(s_->parser, [](void* d, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    static_cast<State*>(d)->fail("a DOCTYPE is not allowed");
  });
}

PieReader::~PieReader() {
  if (s_->parser) XML_ParserFree(s_->parser);
}

uint64_t PieReader::users() const { return s_->users; }
void PieReader::set_base_dir(std::string dir) { s_->base_dir = std::move(dir); }

Result<void, PieError> PieReader::feed(std::string_view bytes) {
  if (s_->failed) return unexpected(s_->error);
  while (!bytes.empty()) {
    // XML_Parse takes an int length.
    size_t n = bytes.size() > (1u << 30) ? (1u << 30) : bytes.size();
    if (XML_Parse(s_->parser, bytes.data(), static_cast<int>(n), XML_FALSE) != XML_STATUS_OK) {
      if (!s_->failed) {
        s_->failed = true;
        s_->error = PieError{XML_GetCurrentLineNumber(s_->parser), XML_ErrorString(XML_GetErrorCode(s_->parser))};
      }
      return unexpected(s_->error);
    }
    bytes.remove_prefix(n);
  }
  return {};
}

Result<void, PieError> PieReader::finish() {
  if (s_->failed) return unexpected(s_->error);
  if (XML_Parse(s_->parser, "", 0, XML_TRUE) != XML_STATUS_OK) {
    if (!s_->failed) {
      s_->failed = true;
      s_->error = PieError{XML_GetCurrentLineNumber(s_->parser), XML_ErrorString(XML_GetErrorCode(s_->parser))};
    }
    return unexpected(s_->error);
  }
  if (!s_->root_closed) {
    s_->failed = true;
    s_->error = PieError{0, "the document ended early"};
    return unexpected(s_->error);
  }
  return {};
}

Result<uint64_t, PieError> read_pie(std::string_view document, const PieReader::UserFn& on_user, PieLimits limits) {
  PieReader reader(on_user, limits);
  if (auto r = reader.feed(document); !r) return unexpected(r.error());
  if (auto r = reader.finish(); !r) return unexpected(r.error());
  return reader.users();
}

namespace {

// Reads `path` into `reader`, chunk by chunk.
Result<void, PieError> feed_file(PieReader& reader, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return unexpected(PieError{0, "cannot open " + path});
  std::vector<char> buf(1 << 16);
  Result<void, PieError> r;
  while (r) {
    size_t n = std::fread(buf.data(), 1, buf.size(), f);
    if (n == 0) break;
    r = reader.feed(std::string_view(buf.data(), n));
  }
  bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (!r) return r;
  if (read_error) return unexpected(PieError{0, "cannot read " + path});
  return reader.finish();
}

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash == 0 ? 1 : slash);
}

}  // namespace

void PieReader::State::include(const XML_Char* href, const XML_Char* parse, const XML_Char* xpointer) {
  skip_depth = 1;  // the <include/> itself (its <fallback/>, if any, is not needed)
  if (!href || !*href) return fail("<xi:include/> without an href");
  if (parse || xpointer) return fail("<xi:include/> with 'parse' or 'xpointer' is not supported");
  std::string_view h(href);
  if (base_dir.empty()) return fail("<xi:include/> outside a file");
  if (h.front() == '/' || h.find(':') != std::string_view::npos)
    return fail("<xi:include/> needs a relative href: " + std::string(h));
  if (include_depth + 1 > kMaxIncludeDepth) return fail("<xi:include/> nested too deep");
  std::string path = base_dir + "/" + std::string(h);
  PieReader nested(on_user, limits);
  nested.s_->base_level = level;  // 1: a host file; 2: a user file of `host`
  nested.s_->level = level;
  nested.s_->host = host;
  nested.s_->base_dir = dir_of(path);
  nested.s_->include_depth = include_depth + 1;
  auto r = feed_file(nested, path);
  users += nested.users();
  if (!r) fail(std::string(h) + ": " + r.error().to_string());
}

Result<uint64_t, PieError> read_pie_file(const std::string& path, const PieReader::UserFn& on_user, PieLimits limits) {
  PieReader reader(on_user, limits);
  reader.set_base_dir(dir_of(path));
  if (auto r = feed_file(reader, path); !r) return unexpected(r.error());
  return reader.users();
}

}  // namespace parley::pie
