// core/addr/jid_error.hpp - why an address was refused.
#pragma once

#include <string_view>

namespace parley {

enum class JidError { empty, too_long, bad_localpart, bad_domainpart, bad_resourcepart };

// A short English description, for logs (the stanza error is always jid-malformed).
std::string_view jid_error_name(JidError error);

}  // namespace parley
