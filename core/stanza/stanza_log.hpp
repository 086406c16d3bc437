// Every stanza a session reads or writes, in the log at loglevel debug (its top
// tag and the name of its payload) or trace (the whole stanza). The level
// check comes first and is one load: nothing is formatted when it is off.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "xml/element.hpp"

namespace parley {

namespace detail {
// The level set_log_level last set, where every stanza's check reads it with one
// relaxed load. spdlog::should_log is three calls into Debian's shared spdlog (the
// default logger's registry behind a function-local static): 1% of parleyd's CPU
// at light load, twice per message (perf, session 20).
inline std::atomic<int> log_level{spdlog::level::info};  // spdlog's own default
}  // namespace detail

// Sets the server's log level: spdlog's, and the copy the stanza path reads. The
// level is set only through this (start, reload, the control socket's set-loglevel).
inline void set_log_level(spdlog::level::level_enum level) {
  spdlog::set_level(level);
  detail::log_level.store(level, std::memory_order_relaxed);
}

inline bool stanza_log_enabled() { return detail::log_level.load(std::memory_order_relaxed) <= spdlog::level::debug; }

// "<iq type='get' id='a1' to='example.org'> {urn:xmpp:ping}ping": the start
// tag (with xmlns= when not jabber:client) and the first child's name.
std::string stanza_summary(const xml::Element& element);

// Whether the element may carry a secret (SASL data, an XEP-0077 password): it
// is never logged beyond its summary, at any level.
bool carries_credentials(const xml::Element& element);

// Logs what session `session` read (`in`) or wrote. `serialized`, when the
// caller has it, is the element as written (no second serialization at trace).
void log_stanza(uint64_t session, bool in, const xml::Element& element, std::string_view serialized = {});

}  // namespace parley
