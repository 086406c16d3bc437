// core/addr/utf8.hpp - strict UTF-8 decoding, shared by the address and SASL code.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace parley {

// Decodes UTF-8 into code points. Refuses overlong forms, surrogates, code points
// past U+10FFFF and truncated sequences: each of them has been used to smuggle a
// '/' or '@' past a byte-level check.
std::optional<std::u32string> utf8_decode(std::string_view text);

// True when `text` is well-formed UTF-8 (see utf8_decode) and holds no NUL, which
// a C string API such as libidn's would silently cut the text at.
bool is_clean_utf8(std::string_view text);

}  // namespace parley
