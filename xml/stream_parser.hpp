// xml/stream_parser.hpp - the incremental XMPP stream parser (RFC 6120 section 4 and 11) on expat.
//
// Feeds bytes as they arrive, in any split, and calls back with the stream header, every complete
// depth-1 element (stanzas and negotiation elements), the stream close, or one error. Enforces restricted
// XML (no DOCTYPE, entity declaration, comment or processing instruction; only predefined entities),
// UTF-8 only, and the Limits, counting bytes before they reach expat so a hostile peer cannot make it
// buffer more than one stanza's worth.
//
// Memory: between stanzas the expat parser (about 10 KiB) can be dropped with release_if_idle(); the next
// feed() re-creates it and primes it with a synthetic stream header carrying the namespace declarations of
// the real one, so the stanzas that follow parse exactly as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xml/element.hpp"
#include "xml/limits.hpp"
#include "xml/utf8_validator.hpp"

struct XML_ParserStruct;  // expat's parser; kept out of this header

namespace parley::xml {

// The stream error each failure maps to (RFC 6120 section 4.9.3).
enum class ParseError {
  not_well_formed,
  restricted_xml,
  policy_violation,
  unsupported_encoding,
  bad_namespace_prefix,
  bad_format,
  invalid_xml,  // never reported by this parser (it does not validate); here for the callers' mapping
};

// "not-well-formed", "restricted-xml", ...: the element name of the stream error condition.
std::string_view condition_name(ParseError e);

// Heap bytes held by all expat parsers of the process right now (a gauge for the metrics).
size_t expat_heap_bytes();

struct StreamHeader {
  std::string name;           // local name of the root element (expect "stream")
  std::string xmlns;          // its namespace (expect "http://etherx.jabber.org/streams")
  std::string default_xmlns;  // from xmlns= on the root (expect "jabber:client" or "jabber:server")
  std::vector<Attribute> attrs;  // to, from, version, id, xml:lang, ... (namespace declarations excluded)
  std::string_view attr(std::string_view name) const;  // "" when absent
};

class StreamParser {
 public:
  // Callbacks run synchronously inside feed(). They may call reset(), stop(), set_limits(), but must not
  // call feed() or destroy the parser (call stop() and destroy it after feed() returned). An exception
  // thrown by a callback stops the stream and propagates out of feed().
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void on_stream_open(const StreamHeader& header) = 0;
    virtual void on_stanza(Element&& stanza) = 0;  // every complete depth-1 child (stanzas, <auth/>, <starttls/>, ...)
    virtual void on_stream_close() = 0;            // </stream:stream>; later input is ignored
    virtual void on_parse_error(ParseError error, std::string_view detail) = 0;  // at most once per stream
  };

  StreamParser(Handler& handler, const Limits& limits);  // limits are referenced: they must outlive the parser
  ~StreamParser();
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // Parses `bytes`, calling back synchronously. Returns false once an error was reported; from then on
  // (and after stop() or the stream close) input is ignored until reset().
  bool feed(std::string_view bytes);
  // The same, returning how many bytes were parsed (or dropped by an error, a stop or a discarding
  // reset): all of them unless pause() was called during it.
  size_t feed_pausable(std::string_view bytes);

  // Stream restart (after STARTTLS or SASL success): the next bytes start a new document, XML
  // declaration allowed. From inside a callback: with discard_rest=false the rest of the current feed()
  // is parsed as the start of the new stream (pipelining after SASL success); with discard_rest=true it
  // is dropped (STARTTLS: plaintext after <starttls/> must never be processed). From inside
  // on_parse_error the rest is always dropped.
  void reset(bool discard_rest);

  // From inside on_stanza (or on_stream_open): parse nothing after this element in the current
  // feed_pausable(), which returns less than its size; the caller keeps the rest and feeds it later,
  // to this stream or, after a reset(), to the next one. For an outcome that comes later and decides
  // how the bytes after it are read (SASL: after <success/> they start a new stream, RFC 6120
  // §6.4.6). Outside a callback it does nothing.
  void pause();

  // From inside a callback or outside: ignore everything from now on (the connection is closing).
  void stop();

  // Frees the expat parser if the stream is open, no stanza is in progress and no partial token is
  // buffered (or if the stream is over). Returns true if a parser was freed. Not from inside a callback.
  bool release_if_idle();
  bool has_live_parser() const { return parser_ != nullptr; }
  // No stanza and no partial token is pending: what was fed ends between two top-level elements (or the
  // stream is not open). RFC 7395 framing checks it after each WebSocket message (one stanza each).
  bool at_stanza_boundary() const { return state_ != State::open || (!stanza_ && depth_ <= 1 && fed_ == idle_at_); }

  // Bytes of the current unfinished stanza (or header) fed but not yet complete, for metrics.
  size_t buffered_bytes() const { return parser_ ? static_cast<size_t>(fed_ - idle_at_) : 0; }

  // Switch limits mid-stream (e.g. a smaller stanza size before authentication). Referenced, as above.
  void set_limits(const Limits& limits) { limits_ = &limits; }

 private:
  enum class State : uint8_t { awaiting_header, open, closed, failed, stopped };
  struct Callbacks;  // the expat handlers
  friend struct Callbacks;

  bool create_parser();
  void destroy_parser();
  void clear_stream();
  void fail(ParseError error, std::string_view detail);
  template <class F>
  void notify(F&& callback);
  void halt();
  void mark_idle();
  uint64_t event_end() const;
  ParseError classify_error(int expat_error_code) const;
  NamespaceRef intern(std::string_view uri);

  Handler& handler_;
  const Limits* limits_;
  XML_ParserStruct* parser_ = nullptr;
  std::exception_ptr callback_exception_;  // thrown by a callback inside expat, rethrown by feed()
  std::unique_ptr<Element> stanza_;    // the stanza being built
  std::vector<Element*> open_;         // its open elements, innermost last
  std::vector<NamespaceRef> ns_cache_;  // recently seen namespace URIs, shared by the elements
  // The synthetic stream header that primes a re-created parser: the root's prefixed name and namespace
  // declarations. Before the root is complete, its declarations collect here.
  std::string primer_;
  std::string root_default_ns_;        // the root's xmlns=, until on_stream_open took it
  uint64_t fed_ = 0;                   // bytes handed to the current expat parser (a document offset)
  uint64_t idle_at_ = 0;               // offset where it was last idle between stanzas
  // Offset of the end of the event inside which reset() or pause() was called (the same event when
  // both are).
  uint64_t stop_at_ = 0;
  uint32_t depth_ = 0;                 // open elements, root included
  uint16_t element_decls_ = 0;         // namespace declarations of the element being started
  uint16_t stanza_elements_ = 0;       // elements of the stanza being parsed (the limit is at most 65535)
  State state_ = State::awaiting_header;
  // Bit-fields: the parser lives in every session, and these flags kept the
  // struct a word larger than it needs to be.
  bool in_feed_ : 1 = false;
  bool in_parse_ : 1 = false;          // inside XML_Parse: expat handlers (and so callbacks) may run
  bool halted_ : 1 = false;            // ignore the current expat parser's remaining events
  bool priming_ : 1 = false;           // parsing the synthetic header of a re-created parser
  bool reset_pending_ : 1 = false;
  bool reset_discard_ : 1 = false;
  bool pause_pending_ : 1 = false;
  Utf8Validator utf8_;
};

}  // namespace parley::xml
