#include "sm_logic.hpp"

#include <charconv>
#include <cstdio>
#include <ctime>
#include <random>

#include "parley/sdk/stamp.hpp"

namespace parley::sm {

std::optional<uint32_t> newly_acked(uint32_t last_acked, uint32_t h, std::size_t unacked) noexcept {
  uint32_t n = h - last_acked;  // modulo 2^32: an ack across the wrap is a small n
  if (n > unacked) return std::nullopt;
  return n;
}

void UnackedQueue::push(OutBytes xml, int64_t stamp_ms) {
  bytes_ += xml.size();
  if (!items_) items_ = std::make_unique<std::deque<Unacked>>();
  items_->push_back(Unacked{std::move(xml), stamp_ms});
}

void UnackedQueue::pop(std::size_t n) {
  if (!items_) return;
  for (std::size_t i = 0; i < n && !items_->empty(); ++i) {
    bytes_ -= items_->front().xml.size();
    items_->pop_front();
  }
  if (items_->empty()) items_.reset();
}

const std::deque<Unacked>& UnackedQueue::items() const noexcept {
  static const std::deque<Unacked> none;
  return items_ ? *items_ : none;
}

std::deque<Unacked> UnackedQueue::take() {
  std::deque<Unacked> out;
  if (items_) out.swap(*items_);
  items_.reset();
  bytes_ = 0;
  return out;
}

std::string make_sm_id(uint64_t session, std::string_view token) {
  std::string id = std::to_string(session);
  id += '.';
  id += token;
  return id;
}

std::optional<uint64_t> parse_u64(std::string_view text) noexcept {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<uint32_t> parse_h(std::string_view text) noexcept {
  auto v = parse_u64(text);
  if (!v || *v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

std::optional<SmId> parse_sm_id(std::string_view id) {
  auto dot = id.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto session = parse_u64(id.substr(0, dot));
  std::string_view token = id.substr(dot + 1);
  if (!session || *session == 0 || token.size() != 32) return std::nullopt;
  for (char c : token)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  return SmId{*session, std::string(token)};
}

std::string random_token() {
  thread_local std::mt19937_64 rng{[] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64(seq);
  }()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (int word = 0; word < 2; ++word) {
    uint64_t v = rng();
    for (int i = 0; i < 16; ++i, v >>= 4) out += hex[v & 0xf];
  }
  return out;
}

bool same_token(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool AnswerRate::allow(int64_t now_ms, uint32_t per_second) noexcept {
  if (now_ms - window_start_ >= 1000) {
    window_start_ = now_ms;
    used_ = 0;
  }
  if (used_ >= per_second) return false;
  ++used_;
  return true;
}

void EndedSessions::expire(int64_t now_ms) {
  while (!items_.empty() && (items_.size() > capacity_ || now_ms - items_.front().ended_ms >= ttl_ms_))
    items_.pop_front();
}

void EndedSessions::add(uint64_t session, std::string token, std::string bare, uint32_t h, int64_t now_ms) {
  items_.push_back(Entry{session, std::move(token), std::move(bare), h, now_ms});
  expire(now_ms);
}

std::optional<uint32_t> EndedSessions::find(uint64_t session, std::string_view token, std::string_view bare,
                                            int64_t now_ms) {
  expire(now_ms);
  for (const Entry& e : items_)
    if (e.session == session && e.bare == bare && same_token(e.token, token)) return e.h;
  return std::nullopt;
}

std::string delay_stamp(int64_t ms) { return parley::xep0082_stamp(ms); }

// "sm1 RESUMABLE IN_BASE OUT ACKED RESUME_SECONDS COUNT TOKEN BARE\n" then per
// stanza "STAMP LEN\n" and LEN bytes of XML.
std::string encode(const Saved& s) {
  std::string out = "sm1 ";
  out += s.resumable ? '1' : '0';
  for (uint64_t v : {uint64_t{s.in_base}, uint64_t{s.out}, uint64_t{s.acked}, static_cast<uint64_t>(s.resume_seconds),
                     static_cast<uint64_t>(s.queue.size())}) {
    out += ' ';
    out += std::to_string(v);
  }
  out += ' ';
  out += s.token.empty() ? "-" : s.token;
  out += ' ';
  out += s.bare;
  out += '\n';
  for (const Unacked& u : s.queue) {
    out += std::to_string(u.stamp_ms);
    out += ' ';
    out += std::to_string(u.xml.size());
    out += '\n';
    u.xml.append_to(out);
  }
  return out;
}

namespace {
std::optional<std::string_view> word(std::string_view& in, char sep) {
  auto at = in.find(sep);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view w = in.substr(0, at);
  in.remove_prefix(at + 1);
  return w;
}
}  // namespace

std::optional<Saved> decode(std::string_view in) {
  Saved s;
  auto magic = word(in, ' ');
  auto resumable = magic ? word(in, ' ') : std::nullopt;
  if (!resumable || *magic != "sm1" || (*resumable != "0" && *resumable != "1")) return std::nullopt;
  s.resumable = *resumable == "1";
  uint64_t v[5];
  for (uint64_t& x : v) {
    auto w = word(in, ' ');
    auto n = w ? parse_u64(*w) : std::nullopt;
    if (!n) return std::nullopt;
    x = *n;
  }
  if (v[0] > UINT32_MAX || v[1] > UINT32_MAX || v[2] > UINT32_MAX || v[3] > INT32_MAX) return std::nullopt;
  s.in_base = static_cast<uint32_t>(v[0]);
  s.out = static_cast<uint32_t>(v[1]);
  s.acked = static_cast<uint32_t>(v[2]);
  s.resume_seconds = static_cast<int64_t>(v[3]);
  auto token = word(in, ' ');
  auto bare = token ? word(in, '\n') : std::nullopt;
  if (!bare) return std::nullopt;
  s.token = *token == "-" ? "" : std::string(*token);
  s.bare = std::string(*bare);
  if (static_cast<uint32_t>(s.out - s.acked) != v[4]) return std::nullopt;  // the queue is what is unacked
  for (uint64_t i = 0; i < v[4]; ++i) {
    auto stamp = word(in, ' ');
    auto len = stamp ? word(in, '\n') : std::nullopt;
    auto st = stamp ? parse_u64(*stamp) : std::nullopt;
    auto n = len ? parse_u64(*len) : std::nullopt;
    if (!st || !n || *n > in.size()) return std::nullopt;
    s.queue.push_back(Unacked{OutBytes(std::string(in.substr(0, *n))), static_cast<int64_t>(*st)});
    in.remove_prefix(*n);
  }
  if (!in.empty()) return std::nullopt;
  return s;
}

}  // namespace parley::sm
