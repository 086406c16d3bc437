// Every stanza a session reads or writes, in the log at loglevel debug (its top
// tag and the name of its payload) or trace (the whole stanza). The level
// check comes first and is one load: nothing is formatted when it is off.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "xml/element.hpp"

namespace parley {

inline bool stanza_log_enabled() { return spdlog::should_log(spdlog::level::debug); }

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
