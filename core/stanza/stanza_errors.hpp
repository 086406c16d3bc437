// Stanza errors (RFC 6120 §8.3): the reply to a stanza that cannot be handled.
#pragma once

#include <string_view>

#include "xml/element.hpp"

namespace parley {

// The error type RFC 6120 §8.3.3 gives each defined condition.
std::string_view default_error_type(std::string_view condition);

// Builds the error reply: from/to swapped, type='error', the original payload
// kept (§8.3.1 allows it and clients use it to match the request), and the
// <error/> child. Callers must not answer a stanza of type 'error' (§8.3.1).
xml::Element make_stanza_error(const xml::Element& original, std::string_view condition,
                               std::string_view text = {}, std::string_view type = {});

// <iq type='result'/> to the requester, with from/to swapped and the same id.
xml::Element make_iq_result(const xml::Element& request);

bool is_error_stanza(const xml::Element& stanza);

}  // namespace parley
