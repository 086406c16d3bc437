#include "xml/expat_glue.hpp"

#include <atomic>
#include <cstdlib>
#include <random>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "xml/serializer.hpp"

namespace parley::xml {

namespace {

// Expat's heap, counted for metrics and for the memory budget (ARCHITECTURE.md, "Memory per connection").
std::atomic<size_t> g_expat_bytes{0};

#if defined(__GLIBC__)
void* counting_malloc(size_t n) {
  void* p = std::malloc(n);
  if (p) g_expat_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
  return p;
}

void* counting_realloc(void* p, size_t n) {
  const size_t old = p ? malloc_usable_size(p) : 0;
  void* q = std::realloc(p, n);
  if (q) {
    g_expat_bytes.fetch_sub(old, std::memory_order_relaxed);
    g_expat_bytes.fetch_add(malloc_usable_size(q), std::memory_order_relaxed);
  }
  return q;
}

void counting_free(void* p) {
  if (p) g_expat_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}

const XML_Memory_Handling_Suite kMemorySuite{counting_malloc, counting_realloc, counting_free};
#endif

}  // namespace

size_t expat_heap_bytes() { return g_expat_bytes.load(std::memory_order_relaxed); }

namespace detail {

const XML_Memory_Handling_Suite* counting_memory_suite() {
#if defined(__GLIBC__)
  return &kMemorySuite;
#else
  return nullptr;  // expat's own malloc, uncounted
#endif
}

unsigned long process_hash_salt() {
  static const unsigned long salt = [] {
    std::random_device rd;
    unsigned long s = 0;
    while (s == 0) s = (static_cast<unsigned long>(rd()) << 32) ^ rd();  // 0 means "draw one" to expat
    return s;
  }();
  return salt;
}

QName split_name(const XML_Char* raw) {
  const std::string_view s(raw);
  const size_t a = s.find(kNsSeparator);
  if (a == std::string_view::npos) return QName{{}, s, {}};
  QName q;
  q.uri = s.substr(0, a);
  const std::string_view rest = s.substr(a + 1);
  const size_t b = rest.find(kNsSeparator);
  q.local = rest.substr(0, b);
  if (b != std::string_view::npos) q.prefix = rest.substr(b + 1);
  return q;
}

std::string attribute_name(const QName& q) {
  if (q.uri.empty()) return std::string(q.local);
  std::string out;
  if (q.uri == kXmlNs) {
    out.reserve(4 + q.local.size());
    out += "xml:";
  } else {
    out.reserve(q.uri.size() + q.local.size() + 2);
    out += '{';
    out += q.uri;
    out += '}';
  }
  out += q.local;
  return out;
}

bool is_utf8_label(std::string_view encoding) {
  constexpr std::string_view kUtf8 = "utf-8";
  if (encoding.size() != kUtf8.size()) return false;
  for (size_t i = 0; i < encoding.size(); ++i) {
    const char c = encoding[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != kUtf8[i]) return false;
  }
  return true;
}

ParseError map_expat_error(XML_Error code) {
  switch (code) {
    case XML_ERROR_UNBOUND_PREFIX:
    case XML_ERROR_UNDECLARING_PREFIX:
    case XML_ERROR_RESERVED_PREFIX_XML:
    case XML_ERROR_RESERVED_PREFIX_XMLNS:
    case XML_ERROR_RESERVED_NAMESPACE_URI:
      return ParseError::bad_namespace_prefix;
    // An entity reference other than the five predefined ones is restricted XML (RFC 6120 11.1); without
    // a DTD expat reports it as undefined. The rest cannot happen without a DTD, which we refuse first.
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_RECURSIVE_ENTITY_REF:
    case XML_ERROR_BINARY_ENTITY_REF:
    case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_PARAM_ENTITY_REF:
    case XML_ERROR_ENTITY_DECLARED_IN_PE:
    case XML_ERROR_NOT_STANDALONE:
    case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
      return ParseError::restricted_xml;
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
      return ParseError::unsupported_encoding;
    case XML_ERROR_NO_MEMORY:
      return ParseError::policy_violation;
    default:
      return ParseError::not_well_formed;
  }
}

}  // namespace detail

}  // namespace parley::xml
