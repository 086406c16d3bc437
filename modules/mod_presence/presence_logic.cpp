#include "presence_logic.hpp"

#include <charconv>
#include <initializer_list>
#include <memory>
#include <utility>

#include "parley/sdk/subscription.hpp"

namespace mod_presence {

bool known_presence_type(std::string_view type) {
  for (std::string_view known : {"", "unavailable", "probe", "subscribe", "subscribed", "unsubscribe",
                                 "unsubscribed", "error"})
    if (type == known) return true;
  return false;
}

bool has_from(std::string_view subscription) { return parley::subscription_has_from(subscription); }
bool has_to(std::string_view subscription) { return parley::subscription_has_to(subscription); }

std::vector<std::string> subscribers(const std::vector<RosterRow>& roster) {
  std::vector<std::string> out;
  for (const RosterRow& row : roster)
    if (has_from(row.subscription)) out.push_back(row.contact);
  return out;
}

std::vector<std::string> probe_targets(const std::vector<RosterRow>& roster) {
  std::vector<std::string> out;
  for (const RosterRow& row : roster)
    if (has_to(row.subscription)) out.push_back(row.contact);
  return out;
}

std::vector<std::string> unavailable_targets(const std::vector<RosterRow>& roster,
                                             const std::set<std::string>& directed) {
  std::vector<std::string> out = subscribers(roster);
  std::set<std::string, std::less<>> covered(out.begin(), out.end());
  for (const std::string& jid : directed) {
    // Recipients are kept as the server prepared them.
    if (covered.count(parley::Jid::prepared(jid).bare_str()) != 0) continue;
    out.push_back(jid);
  }
  return out;
}

ProbeAnswer answer_probe(const std::optional<std::string>& subscription, bool same_account,
                         std::size_t available_resources) {
  bool allowed = same_account || (subscription && has_from(*subscription));
  if (!allowed) return ProbeAnswer::unsubscribed;
  return available_resources == 0 ? ProbeAnswer::unavailable : ProbeAnswer::available;
}

std::string xmpp_stamp(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buffer, n);
}

void Sequencer::submit(uint64_t key, Job job) {
  auto it = chains_.find(key);
  if (it != chains_.end()) {
    it->second.waiting.push_back(std::move(job));
    return;
  }
  chains_.emplace(key, Chain{});
  run(key, std::move(job));
}

std::size_t Sequencer::active_keys() const { return chains_.size(); }

void Sequencer::run(uint64_t key, Job job) {
  // `done` may be called at most once; a second call would start a job twice.
  auto called = std::make_shared<bool>(false);
  job([this, key, called] {
    if (std::exchange(*called, true)) return;
    next(key);
  });
}

void Sequencer::next(uint64_t key) {
  auto it = chains_.find(key);
  if (it == chains_.end()) return;
  if (it->second.waiting.empty()) {
    chains_.erase(it);
    return;
  }
  Job job = std::move(it->second.waiting.front());
  it->second.waiting.pop_front();
  run(key, std::move(job));
}

std::string encode_fields(const std::vector<std::string>& fields) {
  std::string out;
  for (const std::string& f : fields) {
    out += std::to_string(f.size());
    out += ':';
    out += f;
  }
  return out;
}

std::optional<std::vector<std::string>> decode_fields(std::string_view bytes) {
  std::vector<std::string> out;
  while (!bytes.empty()) {
    std::size_t colon = bytes.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::size_t len = 0;
    auto [end, ec] = std::from_chars(bytes.data(), bytes.data() + colon, len);
    if (ec != std::errc() || end != bytes.data() + colon) return std::nullopt;
    bytes.remove_prefix(colon + 1);
    if (len > bytes.size()) return std::nullopt;
    out.emplace_back(bytes.substr(0, len));
    bytes.remove_prefix(len);
  }
  return out;
}

}  // namespace mod_presence
