// core/addr/jid_cache.hpp - addresses prepared once per loop (issue 18).
//
// A client writes to the same few contacts again and again; preparing their
// addresses (RFC 7622: nodeprep, nameprep, resourceprep) on every stanza cost
// about 2,000 instructions per chat message even on the ASCII fast path. This
// keeps the prepared form of the texts seen lately, one cache per thread (a
// worker loop is one thread, so no lock and no sharing): the result is
// exactly Jid::parse's, only successes are kept.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/addr/jid.hpp"

namespace parley::jid_cache {

// Bounds: at most max_entries() texts per thread (`limits.max_cached_addresses`,
// default 2,048; 0: no cache), each at most max_text_bytes (longer ones are
// prepared every time). A full cache starts afresh: nothing to update on a hit,
// and the working set of a loop's clients refills it.
inline constexpr size_t default_max_entries = 2048;
inline constexpr size_t max_text_bytes = 256;

// The bound for every thread's cache; the server sets it from its
// configuration before the loops start (any thread may call it: the bound is
// an atomic, a cache over a lowered bound starts afresh at its next miss).
void set_max_entries(size_t entries);
size_t max_entries();

// Jid::parse(text), from the calling thread's cache when `text` was prepared
// before. `canonical`, if given, says whether `text` is already the prepared
// full form (jid.full() == text), so the caller need not build it to compare.
Result<Jid, JidError> parse(std::string_view text, bool* canonical = nullptr);

// Entries in the calling thread's cache (tests).
size_t size();

}  // namespace parley::jid_cache
