#include "upload_logic.hpp"

#include "parley/sdk/percent.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace upload {

namespace {

bool url_safe(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
}

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string base64url(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string token(std::string_view key, const Slot& slot) {
  // Every field with its length, so that no two slots sign the same bytes.
  std::string data;
  auto field = [&](std::string_view v) {
    data += std::to_string(v.size());
    data += ':';
    data += v;
  };
  field("put");
  field(slot.owner);
  field(slot.filename);
  field(std::to_string(slot.size));
  field(slot.content_type);
  field(std::to_string(slot.expires));
  field(slot.nonce);
  return base64url(hmac_sha256(key, data)).substr(0, 32);
}

bool valid_token(std::string_view t) {
  if (t.size() != 32) return false;
  for (char c : t)
    if (!url_safe(c)) return false;
  return true;
}

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    if (url_safe(c) || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[(uint8_t(c) >> 4) & 15];
      out += hex[uint8_t(c) & 15];
    }
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view s, bool path) {
  auto out = parley::percent_decode(s);
  if (!out) return std::nullopt;
  for (char c : *out)
    if (c == '\0' || (path && c == '/')) return std::nullopt;
  return out;
}

std::string sanitize_filename(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (out.size() >= 200) break;
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '/' || c == '\\' || c == '"') out += '_';
    else out += c;
  }
  // A UTF-8 sequence cut at the end is dropped.
  size_t cont = out.size();
  while (cont > 0 && (static_cast<unsigned char>(out[cont - 1]) & 0xC0) == 0x80) --cont;
  if (cont > 0) {
    unsigned char lead = static_cast<unsigned char>(out[cont - 1]);
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (out.size() - (cont - 1) < need) out.resize(cont - 1);
  }
  if (out.empty() || out == "." || out == "..") out = "file";
  return out;
}

std::string sanitize_content_type(std::string_view ct) {
  if (ct.empty() || ct.size() > 255) return {};
  std::string_view main = ct.substr(0, ct.find(';'));
  while (!main.empty() && main.back() == ' ') main.remove_suffix(1);
  size_t slash = main.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == main.size()) return {};
  for (size_t i = 0; i < main.size(); ++i)
    if (i != slash && !token_char(main[i])) return {};
  for (char c : ct)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return {};
  std::string out;
  for (char c : main) out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string put_query(const Slot& slot) {
  return "e=" + std::to_string(slot.expires) + "&s=" + std::to_string(slot.size) + "&n=" + slot.nonce +
         "&o=" + percent_encode(slot.owner) + "&t=" + percent_encode(slot.content_type);
}

bool parse_put_query(std::string_view query, Slot& slot) {
  bool e = false, s = false, n = false, o = false, t = false;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view k = item.substr(0, eq);
    auto v = percent_decode(item.substr(eq + 1), false);
    if (!v) return false;
    uint64_t number = 0;
    if (k == "e" && !e) {
      if (!parse_u64(*v, number)) return false;
      slot.expires = static_cast<int64_t>(number);
      e = true;
    } else if (k == "s" && !s) {
      if (!parse_u64(*v, number)) return false;
      slot.size = number;
      s = true;
    } else if (k == "n" && !n) {
      slot.nonce = *v;
      n = true;
    } else if (k == "o" && !o) {
      slot.owner = *v;
      o = true;
    } else if (k == "t" && !t) {
      slot.content_type = *v;
      t = true;
    } else {
      return false;
    }
  }
  return e && s && n && o && t && slot.nonce.size() == 16;
}

std::optional<FilePath> parse_file_path(std::string_view rest) {
  if (!rest.starts_with('/')) return std::nullopt;
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  FilePath out;
  out.token = std::string(rest.substr(0, slash));
  if (!valid_token(out.token)) return std::nullopt;
  auto name = percent_decode(rest.substr(slash + 1));  // a '/' (or %2F) in it: refused
  if (!name || name->empty()) return std::nullopt;
  out.filename = std::move(*name);
  return out;
}

RangeResult parse_range(std::string_view header, uint64_t size, Range& out) {
  if (header.empty()) return RangeResult::none;
  if (!header.starts_with("bytes=")) return RangeResult::none;
  std::string_view spec = header.substr(6);
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
  if (spec.find(',') != std::string_view::npos) return RangeResult::none;  // several: the whole file
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeResult::none;
  std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
  uint64_t first = 0, last = 0;
  if (a.empty()) {
    // A suffix: the last b bytes.
    if (!parse_u64(b, last)) return RangeResult::none;
    if (last == 0 || size == 0) return RangeResult::unsatisfiable;
    out.first = last >= size ? 0 : size - last;
    out.last = size - 1;
    return RangeResult::ok;
  }
  if (!parse_u64(a, first)) return RangeResult::none;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!parse_u64(b, last)) return RangeResult::none;
    if (last < first) return RangeResult::none;  // invalid: ignored (RFC 9110 §14.1.1)
  }
  if (first >= size) return RangeResult::unsatisfiable;
  out.first = first;
  out.last = last >= size ? size - 1 : last;
  return RangeResult::ok;
}

bool inline_safe(std::string_view ct) {
  if (ct == "image/svg+xml") return false;  // SVG runs scripts
  return ct.starts_with("image/") || ct.starts_with("audio/") || ct.starts_with("video/") || ct == "text/plain" ||
         ct == "application/pdf";
}

std::string xep82(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace upload
