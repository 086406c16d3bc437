#include "xml/stream_parser.hpp"

#include <algorithm>
#include <cassert>
#include <exception>
#include <string>
#include <utility>

#include "xml/expat_glue.hpp"
#include "xml/serializer.hpp"

namespace parley::xml {

namespace {

using detail::attribute_name;
using detail::QName;
using detail::split_name;

constexpr size_t kNsCacheSize = 8;
constexpr std::string_view kTextBetweenStanzas = "text between stanzas";
// Feed expat at most this much at once, whatever the limits say, so the int length cannot overflow.
constexpr uint64_t kMaxPiece = 1 << 20;

// `c = {}` would pick operator=(initializer_list) and keep the capacity.
template <class Container>
void free_memory(Container& c) {
  Container().swap(c);
}

bool is_xml_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

std::string_view condition_name(ParseError e) {
  switch (e) {
    case ParseError::not_well_formed: return "not-well-formed";
    case ParseError::restricted_xml: return "restricted-xml";
    case ParseError::policy_violation: return "policy-violation";
    case ParseError::unsupported_encoding: return "unsupported-encoding";
    case ParseError::bad_namespace_prefix: return "bad-namespace-prefix";
    case ParseError::bad_format: return "bad-format";
    case ParseError::invalid_xml: return "invalid-xml";
  }
  return "undefined-condition";
}

std::string_view StreamHeader::attr(std::string_view name) const {
  for (const Attribute& a : attrs) {
    if (a.name == name) return a.value;
  }
  return {};
}

// An exception must not unwind through expat: catch it inside, stop the stream, rethrow from feed().
template <class F>
void StreamParser::notify(F&& callback) {
  if (!in_parse_) {
    callback();
    return;
  }
  try {
    callback();
  } catch (...) {
    if (!callback_exception_) callback_exception_ = std::current_exception();
    reset_pending_ = false;
    if (state_ != State::failed) state_ = State::stopped;
    halt();
  }
}

// The expat handlers. Each first checks halted_: expat still delivers the end of an empty element, and
// the rest of a token, after XML_StopParser.
struct StreamParser::Callbacks {
  static StreamParser& self(void* user_data) { return *static_cast<StreamParser*>(user_data); }

  // Checks the limits of one start tag; reports and returns false on a violation.
  static bool check_start(StreamParser& p, const QName& q, const XML_Char** atts, size_t decls) {
    const Limits& lim = *p.limits_;
    if (p.depth_ + 1 > lim.max_depth) {
      p.fail(ParseError::policy_violation, "elements nested too deep");
      return false;
    }
    if (p.depth_ + 1 >= 2) {  // inside a stanza (depth 2 is its top element)
      if (p.depth_ + 1 == 2) p.stanza_elements_ = 0;
      if (p.stanza_elements_ == UINT16_MAX || ++p.stanza_elements_ > lim.max_stanza_elements) {
        p.fail(ParseError::policy_violation, "too many elements in one stanza");
        return false;
      }
    }
    if (q.local.size() > lim.max_name_bytes || q.prefix.size() > lim.max_name_bytes) {
      p.fail(ParseError::policy_violation, "element name too long");
      return false;
    }
    size_t count = decls;
    for (const XML_Char** a = atts; *a; a += 2) ++count;
    if (count > lim.max_attributes) {
      p.fail(ParseError::policy_violation, "too many attributes");
      return false;
    }
    for (const XML_Char** a = atts; *a; a += 2) {
      const QName an = split_name(a[0]);
      if (an.local.size() > lim.max_name_bytes || an.prefix.size() > lim.max_name_bytes) {
        p.fail(ParseError::policy_violation, "attribute name too long");
        return false;
      }
      if (std::char_traits<char>::length(a[1]) > lim.max_attribute_bytes) {
        p.fail(ParseError::policy_violation, "attribute value too long");
        return false;
      }
    }
    return true;
  }

  static void start_element(void* user_data, const XML_Char* name, const XML_Char** atts) {
    StreamParser& p = self(user_data);
    if (p.halted_) return;
    const size_t decls = p.element_decls_;
    p.element_decls_ = 0;
    const QName q = split_name(name);
    if (!p.priming_ && !check_start(p, q, atts, decls)) return;
    ++p.depth_;

    if (p.depth_ == 1) {
      if (p.priming_) {
        p.mark_idle();
        return;
      }
      std::string qname;
      if (!q.prefix.empty()) {
        qname += q.prefix;
        qname += ':';
      }
      qname += q.local;
      p.primer_ = "<" + qname + p.primer_ + ">";
      p.primer_.shrink_to_fit();
      StreamHeader header;
      header.name = std::string(q.local);
      header.xmlns = std::string(q.uri);
      header.default_xmlns = std::move(p.root_default_ns_);
      for (const XML_Char** a = atts; *a; a += 2) {
        header.attrs.push_back(Attribute{attribute_name(split_name(a[0])), a[1]});
      }
      p.state_ = State::open;
      p.mark_idle();
      p.notify([&] { p.handler_.on_stream_open(header); });
      return;
    }

    Element* e;
    if (p.depth_ == 2) {
      p.stanza_ = std::make_unique<Element>();
      e = p.stanza_.get();
    } else {
      e = &p.open_.back()->add_child(Element());
    }
    e->set_name(std::string(q.local));
    e->set_xmlns_ref(p.intern(q.uri));
    size_t count = 0;
    for (const XML_Char** a = atts; *a; a += 2) ++count;
    // One list of the right size instead of three growths; a stanza gets its `from` stamped next.
    if (count != 0 || p.depth_ == 2) e->reserve_attrs(count + (p.depth_ == 2 ? 1 : 0));
    for (const XML_Char** a = atts; *a; a += 2) e->append_attr(attribute_name(split_name(a[0])), a[1]);
    p.open_.push_back(e);
  }

  static void end_element(void* user_data, const XML_Char*) {
    StreamParser& p = self(user_data);
    if (p.halted_) return;
    --p.depth_;
    if (p.depth_ == 0) {
      // Whatever follows </stream:stream> is not ours to parse.
      p.state_ = State::closed;
      p.halt();
      p.notify([&] { p.handler_.on_stream_close(); });
      return;
    }
    p.open_.pop_back();
    if (p.depth_ == 1) {
      p.mark_idle();
      std::unique_ptr<Element> stanza = std::move(p.stanza_);
      p.notify([&] { p.handler_.on_stanza(std::move(*stanza)); });
    }
  }

  static void character_data(void* user_data, const XML_Char* s, int len) {
    StreamParser& p = self(user_data);
    if (p.halted_) return;
    const std::string_view text(s, static_cast<size_t>(len));
    if (p.depth_ >= 2) {
      p.open_.back()->add_text(text);
      return;
    }
    // Between stanzas only whitespace (keepalives) is allowed.
    if (!std::all_of(text.begin(), text.end(), is_xml_space)) {
      p.fail(ParseError::bad_format, kTextBetweenStanzas);
      return;
    }
    p.mark_idle();
  }

  static void start_namespace(void* user_data, const XML_Char* prefix, const XML_Char* uri) {
    StreamParser& p = self(user_data);
    if (p.halted_ || p.priming_) return;
    const std::string_view pf = prefix ? prefix : "";
    const std::string_view u = uri ? uri : "";
    if (pf.size() > p.limits_->max_name_bytes || u.size() > p.limits_->max_name_bytes) {
      p.fail(ParseError::policy_violation, "namespace declaration too long");
      return;
    }
    if (p.element_decls_ < UINT16_MAX) ++p.element_decls_;
    if (p.depth_ == 0) {
      // The root's declarations, replayed in the primer of a re-created parser.
      if (!prefix) p.root_default_ns_ = std::string(u);
      p.primer_ += " xmlns";
      if (prefix) {
        p.primer_ += ':';
        p.primer_ += pf;
      }
      p.primer_ += "='";
      escape_attr_to(p.primer_, u);
      p.primer_ += '\'';
    }
  }

  static void xml_decl(void* user_data, const XML_Char*, const XML_Char* encoding, int) {
    StreamParser& p = self(user_data);
    if (p.halted_) return;
    // We create expat with UTF-8 forced, so it would silently ignore another declared encoding.
    if (encoding && !detail::is_utf8_label(encoding)) p.fail(ParseError::unsupported_encoding, "only UTF-8 is supported");
  }

  static void doctype(void* user_data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
    StreamParser& p = self(user_data);
    if (!p.halted_) p.fail(ParseError::restricted_xml, "DOCTYPE");
  }

  static void entity_decl(void* user_data, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                          const XML_Char*, const XML_Char*, const XML_Char*) {
    StreamParser& p = self(user_data);
    if (!p.halted_) p.fail(ParseError::restricted_xml, "entity declaration");
  }

  static void comment(void* user_data, const XML_Char*) {
    StreamParser& p = self(user_data);
    if (!p.halted_) p.fail(ParseError::restricted_xml, "comment");
  }

  static void processing_instruction(void* user_data, const XML_Char*, const XML_Char*) {
    StreamParser& p = self(user_data);
    if (!p.halted_) p.fail(ParseError::restricted_xml, "processing instruction");
  }
};

StreamParser::StreamParser(Handler& handler, const Limits& limits) : handler_(handler), limits_(&limits) {}

StreamParser::~StreamParser() { destroy_parser(); }

bool StreamParser::create_parser() {
  parser_ = XML_ParserCreate_MM("UTF-8", detail::counting_memory_suite(), &detail::kNsSeparator);
  if (!parser_) {
    fail(ParseError::policy_violation, "out of memory");
    return false;
  }
  XML_SetUserData(parser_, this);
  XML_SetHashSalt(parser_, detail::process_hash_salt());
  XML_SetReturnNSTriplet(parser_, XML_TRUE);
#ifdef PARLEY_EXPAT_HAS_REPARSE_DEFERRAL
  // Deferral (expat >= 2.6, or backported) may hold a complete stanza back until more bytes arrive:
  // right for files, wrong for an interactive stream. Our stanza limit already bounds re-parsing.
  XML_SetReparseDeferralEnabled(parser_, XML_FALSE);
#endif
  XML_SetElementHandler(parser_, &Callbacks::start_element, &Callbacks::end_element);
  XML_SetCharacterDataHandler(parser_, &Callbacks::character_data);
  XML_SetStartNamespaceDeclHandler(parser_, &Callbacks::start_namespace);
  XML_SetXmlDeclHandler(parser_, &Callbacks::xml_decl);
  XML_SetStartDoctypeDeclHandler(parser_, &Callbacks::doctype);
  XML_SetEntityDeclHandler(parser_, &Callbacks::entity_decl);
  XML_SetCommentHandler(parser_, &Callbacks::comment);
  XML_SetProcessingInstructionHandler(parser_, &Callbacks::processing_instruction);
  fed_ = 0;
  idle_at_ = 0;
  depth_ = 0;
  element_decls_ = 0;
  halted_ = false;

  if (state_ == State::open) {
    // Re-created after release_if_idle(): replay the stream header's namespace context.
    priming_ = true;
    in_parse_ = true;
    const XML_Status status = XML_Parse(parser_, primer_.data(), static_cast<int>(primer_.size()), XML_FALSE);
    in_parse_ = false;
    priming_ = false;
    fed_ = primer_.size();
    if (status != XML_STATUS_OK || depth_ != 1 || idle_at_ != fed_) {
      fail(ParseError::not_well_formed, "cannot restore the stream context");
      return false;
    }
  }
  return true;
}

void StreamParser::destroy_parser() {
  if (parser_) XML_ParserFree(parser_);
  parser_ = nullptr;
}

void StreamParser::clear_stream() {
  destroy_parser();
  stanza_.reset();
  free_memory(open_);
  free_memory(ns_cache_);
  free_memory(primer_);
  free_memory(root_default_ns_);
  fed_ = 0;
  idle_at_ = 0;
  depth_ = 0;
  element_decls_ = 0;
  halted_ = false;
  reset_pending_ = false;
  utf8_.reset();
  state_ = State::awaiting_header;
}

void StreamParser::halt() {
  halted_ = true;
  if (in_parse_ && parser_) XML_StopParser(parser_, XML_FALSE);
}

void StreamParser::fail(ParseError error, std::string_view detail) {
  if (state_ == State::failed || state_ == State::stopped || state_ == State::closed) return;
  state_ = State::failed;
  halt();
  notify([&] { handler_.on_parse_error(error, detail); });
}

uint64_t StreamParser::event_end() const {
  return static_cast<uint64_t>(XML_GetCurrentByteIndex(parser_)) + static_cast<uint64_t>(XML_GetCurrentByteCount(parser_));
}

void StreamParser::mark_idle() { idle_at_ = event_end(); }

NamespaceRef StreamParser::intern(std::string_view uri) {
  if (uri.empty()) return nullptr;
  for (const NamespaceRef& ref : ns_cache_) {
    if (*ref == uri) return ref;
  }
  if (ns_cache_.size() >= kNsCacheSize) ns_cache_.erase(ns_cache_.begin());
  ns_cache_.push_back(std::make_shared<const std::string>(uri));
  return ns_cache_.back();
}

bool StreamParser::feed(std::string_view bytes) {
  feed_pausable(bytes);
  return state_ != State::failed;
}

size_t StreamParser::feed_pausable(std::string_view bytes) {
  assert(!in_feed_ && "feed() called from a StreamParser callback");
  if (in_feed_) return bytes.size();
  in_feed_ = true;
  // Runs however feed() is left, an exception from a callback included.
  struct Finish {
    StreamParser& p;
    ~Finish() {
      p.in_feed_ = false;
      p.in_parse_ = false;
      p.reset_pending_ = false;
      p.pause_pending_ = false;
      if (p.state_ != State::awaiting_header && p.state_ != State::open) {
        // The stream is over: nothing will be parsed any more, free the memory now.
        p.destroy_parser();
        p.stanza_.reset();
        free_memory(p.open_);
      }
    }
  } finish{*this};

  size_t pos = 0;
  size_t consumed = bytes.size();
  while (pos < bytes.size() && (state_ == State::awaiting_header || state_ == State::open)) {
    if (!parser_ && !create_parser()) break;
    // Hand expat no more than the stanza in progress may still grow by, so a limit violation is seen
    // exactly where it happens, before expat buffers more: an unfinished stanza that already holds
    // max_stanza_bytes can only end up larger.
    const uint64_t max = limits_->max_stanza_bytes;
    const uint64_t pending = fed_ - idle_at_;
    const uint64_t allowance = pending < max ? max - pending : 1;
    const size_t n = static_cast<size_t>(std::min<uint64_t>({bytes.size() - pos, allowance, kMaxPiece}));
    const std::string_view piece = bytes.substr(pos, n);
    const size_t valid = utf8_.validate(piece);
    const uint64_t piece_start = fed_;
    if (valid > 0) {
      fed_ += valid;
      in_parse_ = true;
      const XML_Status status = XML_Parse(parser_, piece.data(), static_cast<int>(valid), XML_FALSE);
      in_parse_ = false;
      if (callback_exception_) std::rethrow_exception(std::exchange(callback_exception_, nullptr));
      if (status == XML_STATUS_ERROR && !halted_) {
        const XML_Error code = XML_GetErrorCode(parser_);
        const ParseError error = classify_error(code);
        // The same detail as when the text is seen (see classify_error).
        fail(error, error == ParseError::bad_format ? kTextBetweenStanzas : XML_ErrorString(code));
      }
    }
    if (reset_pending_) {
      const bool discard = reset_discard_;
      const uint64_t used = stop_at_ > piece_start ? std::min<uint64_t>(stop_at_ - piece_start, valid) : 0;
      clear_stream();
      if (discard) break;
      pos += static_cast<size_t>(used);
      if (pause_pending_) {
        // Paused as well: the rest waits for the caller, for the new stream.
        pause_pending_ = false;
        consumed = pos;
        break;
      }
      continue;
    }
    if (pause_pending_) {
      pause_pending_ = false;
      const uint64_t used = stop_at_ > piece_start ? std::min<uint64_t>(stop_at_ - piece_start, valid) : 0;
      // The expat parser was stopped for good at a stanza boundary: drop it as an idle stream's is
      // dropped (release_if_idle), so the next feed() goes on with a primed one. The validator saw
      // the bytes after the pause, which will be validated again when they come back.
      destroy_parser();
      free_memory(open_);
      fed_ = 0;
      idle_at_ = 0;
      utf8_.reset();
      consumed = pos + static_cast<size_t>(used);
      break;
    }
    if (state_ != State::awaiting_header && state_ != State::open) break;
    if (fed_ - idle_at_ >= max && fed_ > idle_at_) {
      fail(ParseError::policy_violation, "stanza too large");
      break;
    }
    if (valid < n) {
      if (piece[valid] == '\0') {
        fail(ParseError::not_well_formed, "NUL character");
      } else {
        fail(ParseError::unsupported_encoding, "invalid UTF-8");
      }
      break;
    }
    pos += n;
  }
  return consumed;
}

ParseError StreamParser::classify_error(int code) const {
  const auto expat_code = static_cast<XML_Error>(code);
  const ParseError error = detail::map_expat_error(expat_code);
  if (error != ParseError::not_well_formed) return error;
  // Look only at bytes expat needed to decide, never beyond the error position, so that the answer does
  // not depend on how the input was split.
  int offset = 0;
  int size = 0;
  const char* context = XML_GetInputContext(parser_, &offset, &size);
  if (!context || offset < 0 || offset >= size) return error;
  const std::string_view s(context, static_cast<size_t>(size));
  const auto at = static_cast<size_t>(offset);
  auto declaration_at = [&](size_t i) {
    return i + 2 < s.size() && s[i] == '<' && s[i + 1] == '!' && is_ascii_alpha(s[i + 2]);
  };
  // A DOCTYPE or other markup declaration where none may stand is a syntax error to expat; it is still
  // restricted XML to us. In the prolog expat reports a syntax error at the '<' of a complete "<!NAME"
  // token; in content an invalid token at the letter after "<!".
  if (expat_code == XML_ERROR_SYNTAX && declaration_at(at)) return ParseError::restricted_xml;
  if (expat_code == XML_ERROR_INVALID_TOKEN && at >= 2 && declaration_at(at - 2)) return ParseError::restricted_xml;
  // "]]>" in text makes expat reject its whole run of text, which it would otherwise have reported (and
  // does, when the run is cut by the end of a feed). Between stanzas that text is what we reject.
  if (expat_code == XML_ERROR_INVALID_TOKEN && depth_ == 1 && at >= 2 && s.substr(at - 2, 3) == "]]>") {
    return ParseError::bad_format;
  }
  return error;
}

void StreamParser::reset(bool discard_rest) {
  if (in_parse_) {
    // Inside an expat callback: stop this parser; feed() continues with the rest, or drops it.
    reset_pending_ = true;
    reset_discard_ = discard_rest || state_ == State::failed;
    stop_at_ = event_end();
    halt();
    return;
  }
  // Outside expat: between feeds, or from on_parse_error for an error feed() found itself, after which
  // the rest of that feed() is dropped.
  clear_stream();
  if (in_feed_) {
    reset_pending_ = true;
    reset_discard_ = true;
  }
}

void StreamParser::pause() {
  // Only between depth-1 elements (on_stanza runs at the end of one), where a re-created parser
  // can go on after the stream header's context is replayed.
  if (!in_parse_ || state_ != State::open || depth_ != 1) return;
  pause_pending_ = true;
  stop_at_ = event_end();
  halt();
}

void StreamParser::stop() {
  reset_pending_ = false;
  if (state_ != State::failed) state_ = State::stopped;
  if (in_parse_) {
    halt();
  } else if (!in_feed_) {
    destroy_parser();
    stanza_.reset();
    free_memory(open_);
  }
}

bool StreamParser::release_if_idle() {
  if (in_feed_ || !parser_) return false;
  if (state_ != State::awaiting_header && state_ != State::open) {
    destroy_parser();
    stanza_.reset();
    free_memory(open_);
    return true;
  }
  if (state_ != State::open || depth_ != 1 || stanza_ || fed_ != idle_at_ || !utf8_.at_boundary()) return false;
  destroy_parser();
  free_memory(open_);
  free_memory(ns_cache_);
  fed_ = 0;
  idle_at_ = 0;
  return true;
}

}  // namespace parley::xml
