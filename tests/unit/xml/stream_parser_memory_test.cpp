// The memory an idle stream costs, with and without a live expat parser (ARCHITECTURE.md, "Memory per
// connection"). Its own binary: it replaces the global operator new to count the C++ heap exactly;
// expat's heap is counted by the library (expat_heap_bytes()).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "parser_recorder.hpp"

#if defined(__GLIBC__)
namespace {
size_t g_cxx_heap = 0;  // usable bytes of live operator new blocks (single-threaded test)
}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  g_cxx_heap += malloc_usable_size(p);
  return p;
}
void operator delete(void* p) noexcept {
  if (p) g_cxx_heap -= malloc_usable_size(p);
  std::free(p);
}
void operator delete(void* p, size_t) noexcept { operator delete(p); }

using namespace parley::xml;

namespace {

struct Discard : StreamParser::Handler {
  void on_stream_open(const StreamHeader&) override {}
  void on_stanza(Element&&) override {}
  void on_stream_close() override {}
  void on_parse_error(ParseError, std::string_view) override {}
};

}  // namespace

TEST_CASE("memory: an idle stream with and without a live expat parser") {
  Discard handler;
  Limits limits;
  const std::string header(parley::xml::test::kClientHeader);
  const std::string stanza = "<message to='a@b' type='chat'><body>hello</body></message>";
  {
    // The element pool (xml/element_pool.hpp) keeps a dropped stanza's blocks for the next one: a
    // stanza parsed first leaves them cached, so the one measured below reuses them and gives them back.
    StreamParser warm(handler, limits);
    warm.feed(header);
    warm.feed(stanza);
  }
  const size_t cxx0 = g_cxx_heap;
  const size_t expat0 = expat_heap_bytes();

  auto* p = new StreamParser(handler, limits);
  p->feed(header);
  p->feed(stanza);
  const size_t cxx_live = g_cxx_heap - cxx0;
  const size_t expat_live = expat_heap_bytes() - expat0;

  REQUIRE(p->release_if_idle());
  const size_t cxx_released = g_cxx_heap - cxx0;
  const size_t expat_released = expat_heap_bytes() - expat0;

  p->feed(stanza);
  const size_t cxx_recreated = g_cxx_heap - cxx0;
  const size_t expat_recreated = expat_heap_bytes() - expat0;
  delete p;

  std::printf("StreamParser memory per idle stream (the object included, sizeof(StreamParser)=%zu):\n"
              "  live expat parser: %zu B (C++ %zu + expat %zu)\n"
              "  released:          %zu B (C++ %zu + expat %zu)\n"
              "  re-created:        %zu B (C++ %zu + expat %zu)\n",
              sizeof(StreamParser), cxx_live + expat_live, cxx_live, expat_live, cxx_released + expat_released,
              cxx_released, expat_released, cxx_recreated + expat_recreated, cxx_recreated, expat_recreated);
  CHECK(g_cxx_heap == cxx0);
  CHECK(expat_heap_bytes() == expat0);
  CHECK(expat_released == 0);
  CHECK(expat_live > 4096);
  CHECK(cxx_released < 512);  // the object and the primer
  CHECK(sizeof(StreamParser) <= 192);
}
#endif
