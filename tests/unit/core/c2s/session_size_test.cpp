// Memory per connection is a headline number (ARCHITECTURE.md): a change that
// grows the per-session structs fails here and has to say why in this file.
#include <doctest/doctest.h>

#include "core/c2s/c2s_stream.hpp"
#include "core/net/connection.hpp"
#include "core/session/session.hpp"
#include "core/session/session_table.hpp"
#include "xml/stream_parser.hpp"

TEST_CASE("per-session structs stay small") {
  // Measured 2026-12-05, after the Connection/Session split: Session 200 B
  // (Jid 96, host 32), C2sStream 712 B (of which its Connection 392 with
  // uv_tcp_t 248, StreamParser 192). Together 912 B in two allocations, where
  // the one C2sSession was 1024 B: the deadline timer (uv_timer_t, 152 B)
  // exists only while armed, which an online session never is. OpenSSL's idle
  // TLS state (~14 KiB) dwarfs it, but this is the part Parley owns.
  // 2026-12-05, issue 12: Session 208 B, +8 for the count of stanzas the
  // client sent (XEP-0198's h, session_stanzas_in): it must live in the
  // session (it survives detach and re-attach) and count what the core refuses
  // before any hook, and the struct had no padding left. Together 920 B.
  // 2026-12-06, issue 13: Connection 400 B (C2sStream 720), +8 for the HTTP
  // transport pointer (null on a c2s listener's connections): WebSocket is a
  // transport of the Connection, so TLS, the rate limit, the bounded write
  // path and migration serve it unchanged. Together 928 B.
  // 2026-12-06, issue 18 (write coalescing): Connection still 400 B. Its
  // slot in the loop's OutputBatch (4 B) took padding once the eleven flags
  // became bits; the batch's buffers are the loop's, reused every turn, so an
  // idle connection holds none.
  // 2026-12-06, issue 18 (idle memory): the sizes checked as they are (no
  // slack left in the bounds): Session 208, C2sStream 720 (its third parser
  // flag, parser_busy_, went into a bit-field with the two others rather
  // than grow it by 8), Connection 400, StreamParser 192, SessionRef 48
  // (the bound was 64). What an idle session costs beyond these is tabled
  // in BENCHMARKS.md ("Idle memory, issue 18"): OpenSSL's ~12.7 KiB, the
  // modules' state, caches that fill up to their limits.
  CHECK(sizeof(parley::Session) <= 208);
  CHECK(sizeof(parley::C2sStream) <= 720);
  CHECK(sizeof(parley::Connection) <= 400);
  CHECK(sizeof(parley::Session) + sizeof(parley::C2sStream) <= 1024 - 96);
  CHECK(sizeof(parley::xml::StreamParser) <= 192);
  CHECK(sizeof(parley::SessionRef) <= 48);
}
