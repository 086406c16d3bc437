// mod_http_upload's pure logic (no host, no I/O): the slot's signed token,
// the URLs and their parsing, Range, and the headers that keep a served file
// from running as a page. Unit-tested in tests/unit/modules/mod_http_upload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace upload {

// What a slot is: nothing of it is stored until its PUT; the PUT URL carries
// it, signed.
struct Slot {
  std::string owner;         // bare JID
  std::string filename;      // as requested (sanitized)
  uint64_t size = 0;
  std::string content_type;  // empty: none given
  int64_t expires = 0;       // unix seconds: the PUT URL is refused after it
  std::string nonce;         // random, 16 url-safe characters
};

// HMAC-SHA256(key, every field of the slot), base64url without padding, cut
// to 32 characters (192 bits): the slot's directory name and its GET secret.
std::string token(std::string_view key, const Slot& slot);
bool valid_token(std::string_view t);  // 32 of [A-Za-z0-9_-]

std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes
std::string base64url(std::string_view bytes);
std::string percent_encode(std::string_view s);  // all but unreserved (RFC 3986)
// %XX decoded; nullopt if malformed or decoding to a NUL, or (path) a '/'.
std::optional<std::string> percent_decode(std::string_view s, bool path = true);

// A file name a URL and a Content-Disposition can carry: path separators and
// control characters replaced, at most 200 bytes, never empty, "." or "..".
std::string sanitize_filename(std::string_view name);
// A Content-Type is type/subtype with token characters (and parameters): else empty.
std::string sanitize_content_type(std::string_view ct);

// The query of a PUT URL, and back.
std::string put_query(const Slot& slot);
// Parses the query into slot (all but filename); false if a field is missing or malformed.
bool parse_put_query(std::string_view query, Slot& slot);

// Under the route prefix "/upload/HOST": "/TOKEN/FILENAME".
struct FilePath {
  std::string token;
  std::string filename;  // decoded
};
std::optional<FilePath> parse_file_path(std::string_view rest);

// RFC 9110 §14: one range of a file of `size` bytes.
struct Range {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive
};
enum class RangeResult { none, ok, unsatisfiable };
// none: no usable Range (absent, not bytes, several ranges: the whole file is served).
RangeResult parse_range(std::string_view header, uint64_t size, Range& out);

// Content types served inline (images, audio, video, plain text, PDF): the
// rest, and any HTML, XML or script, goes as an attachment.
bool inline_safe(std::string_view content_type);

// XEP-0082 date-time, UTC ("2017-12-03T23:42:05Z").
std::string xep82(int64_t unix_seconds);

}  // namespace upload
