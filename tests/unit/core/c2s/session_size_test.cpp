// Memory per connection is a headline number (ARCHITECTURE.md): a change that
// grows the per-session structs fails here and has to say why in this file.
#include <doctest/doctest.h>

#include "core/c2s/c2s_session.hpp"
#include "core/session/session_table.hpp"
#include "xml/stream_parser.hpp"

TEST_CASE("per-session structs stay small") {
  // Measured 2026-11-22: C2sSession 1024 B (of which uv_tcp_t 248, uv_timer_t
  // 152, StreamParser 192, Jid 96). OpenSSL's idle TLS state (~14 KiB) dwarfs
  // it, but this is the part Parley owns.
  CHECK(sizeof(parley::C2sSession) <= 1024);
  CHECK(sizeof(parley::xml::StreamParser) <= 192);
  CHECK(sizeof(parley::SessionRef) <= 64);
}
