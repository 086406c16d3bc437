// parley/sdk/archive_ids.hpp - archive ids nobody can predict (XEP-0313 section 3: "A
// server-assigned UID that MUST be unpredictable and unique within the archive").
// Needs OpenSSL's libcrypto: a module that includes it links OpenSSL::Crypto.
//
// The archive store numbers its entries with increasing integers (the archive's order).
// What a client sees is that number encrypted under a key of the module's own
// (Host::derive_key, ABI 1.9: the same on every start): one AES-128 block, the number's
// 8 bytes big-endian then 8 zero bytes, written as 22 characters of base64url. A block
// cipher is a permutation, so two numbers never share an id, and without the key nothing
// about the next id, the entry's time or the archive's size follows from one seen.
// decode() is the reverse; a text that is not such a block (length, characters, or the
// zero half not zero once decrypted) names no entry. Ids handed out before (decimal
// numbers, up to session 13) still decode, so that a client continuing from the last id
// it kept is not cut off by the upgrade.
//
// Without a key (a host older than ABI 1.9) ids stay decimal numbers. Any thread: the
// object is read-only once made; each thread keeps its own cipher contexts.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

class ArchiveIds {
 public:
  static constexpr std::size_t kKeyBytes = 16;
  static constexpr std::size_t kTextSize = 22;  // 16 bytes in base64url, unpadded

  ArchiveIds() = default;
  // `key`: kKeyBytes bytes (from Host::derive_key); any other size leaves ids decimal.
  explicit ArchiveIds(std::string_view key) {
    if (key.size() != kKeyBytes) return;
    std::memcpy(key_.data(), key.data(), kKeyBytes);
    keyed_ = true;
  }

  bool keyed() const noexcept { return keyed_; }

  // An id's text in place (no allocation: an id goes on every archived message). view()
  // lives as long as the Text: use it within the expression that made a temporary one.
  class Text {
   public:
    std::string_view view() const { return std::string_view(chars_.data(), size_); }

   private:
    friend class ArchiveIds;
    std::array<char, kTextSize> chars_{};  // 22: the base64url text, or up to 20 digits
    std::size_t size_ = 0;
  };

  Text encode_text(uint64_t id) const {
    Text text;
    if (keyed_) {
      std::array<unsigned char, 16> block{};
      for (int i = 0; i < 8; ++i) block[static_cast<std::size_t>(i)] = static_cast<unsigned char>(id >> (56 - 8 * i));
      std::array<unsigned char, 16> out{};
      if (crypt(true, block.data(), out.data())) {  // it cannot fail but for memory
        to_base64url(out.data(), text.chars_.data());
        text.size_ = kTextSize;
        return text;
      }
    }
    char digits[20];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + id % 10);
      id /= 10;
    } while (id != 0);
    for (std::size_t i = 0; i < n; ++i) text.chars_[i] = digits[n - 1 - i];
    text.size_ = n;
    return text;
  }

  std::string encode(uint64_t id) const { return std::string(encode_text(id).view()); }

  std::optional<uint64_t> decode(std::string_view text) const {
    if (keyed_ && text.size() == kTextSize) {
      std::array<unsigned char, 16> block{};
      if (!from_base64url(text, block.data())) return std::nullopt;
      std::array<unsigned char, 16> plain{};
      if (!crypt(false, block.data(), plain.data())) return std::nullopt;
      for (std::size_t i = 8; i < 16; ++i)
        if (plain[i] != 0) return std::nullopt;
      uint64_t id = 0;
      for (std::size_t i = 0; i < 8; ++i) id = (id << 8) | plain[i];
      return valid(id) ? std::optional<uint64_t>(id) : std::nullopt;
    }
    return decimal(text);
  }

 private:
  static bool valid(uint64_t id) { return id != 0 && id <= static_cast<uint64_t>(INT64_MAX); }

  // The form of the ids before session 14 (and of a host without derive_key).
  static std::optional<uint64_t> decimal(std::string_view text) {
    if (text.empty() || text.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    return valid(v) ? std::optional<uint64_t>(v) : std::nullopt;
  }

  // Each thread keeps one context per direction with the last key it used: setting up a
  // context and its key schedule is most of a call's cost (~0.9 us against ~0.1 us).
  // ECB without padding carries nothing from one block to the next.
  struct CipherCache {
    EVP_CIPHER_CTX* ctx = nullptr;
    std::array<unsigned char, kKeyBytes> key{};
    bool ready = false;
    ~CipherCache() { EVP_CIPHER_CTX_free(ctx); }
  };

  bool crypt(bool encrypt, const unsigned char* in, unsigned char* out) const {
    thread_local CipherCache caches[2];
    CipherCache& c = caches[encrypt ? 1 : 0];
    if (c.ctx == nullptr && (c.ctx = EVP_CIPHER_CTX_new()) == nullptr) return false;
    if (!c.ready || c.key != key_) {
      c.ready = false;
      if (EVP_CipherInit_ex(c.ctx, EVP_aes_128_ecb(), nullptr, key_.data(), nullptr, encrypt ? 1 : 0) != 1)
        return false;
      EVP_CIPHER_CTX_set_padding(c.ctx, 0);
      c.key = key_;
      c.ready = true;
    }
    int n = 0;
    return EVP_CipherUpdate(c.ctx, out, &n, in, 16) == 1 && n == 16;
  }

  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  // 16 bytes as kTextSize characters into `out`.
  static void to_base64url(const unsigned char* bytes, char* out) {
    uint32_t acc = 0;
    int bits = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < 16; ++i) {
      acc = (acc << 8) | bytes[i];
      bits += 8;
      while (bits >= 6) {
        bits -= 6;
        out[n++] = kAlphabet[(acc >> bits) & 0x3f];
      }
    }
    if (bits > 0) out[n++] = kAlphabet[(acc << (6 - bits)) & 0x3f];
  }

  static bool from_base64url(std::string_view text, unsigned char* bytes) {
    uint32_t acc = 0;
    int bits = 0;
    std::size_t n = 0;
    for (char c : text) {
      const char* at = std::strchr(kAlphabet, c);
      if (c == '\0' || at == nullptr) return false;
      acc = (acc << 6) | static_cast<uint32_t>(at - kAlphabet);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        if (n == 16) return false;
        bytes[n++] = static_cast<unsigned char>((acc >> bits) & 0xff);
      }
    }
    // 22 characters carry 132 bits: the last 4 must be zero (one text per block).
    return n == 16 && (acc & ((1u << bits) - 1)) == 0;
  }

  std::array<unsigned char, kKeyBytes> key_{};
  bool keyed_ = false;
};

}  // namespace parley
