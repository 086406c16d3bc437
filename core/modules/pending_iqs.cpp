#include "core/modules/pending_iqs.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/modules/module_instance.hpp"
#include "core/sasl/crypto.hpp"
#include "core/server/server_context.hpp"

namespace parley {

namespace {

constexpr std::string_view id_prefix = "piq.";

std::string nonce() {
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string raw = sasl::random_bytes(8);
  std::string out;
  for (unsigned char c : raw) out.push_back(digits[c % 36]);
  return out;
}

}  // namespace

PendingIqs::PendingIqs(LoopContext& loop) : loop_(loop) {}

// At shutdown the loop closed every handle already (WorkerLoop::stop), and
// the loop has ended: what is left here is only memory.
PendingIqs::~PendingIqs() = default;

std::string PendingIqs::add(parley_module* module, std::string to, bool to_is_bare, uint64_t timeout_ms,
                            parley_iq_reply_fn done, void* arg) {
  std::string id = std::string(id_prefix) + std::to_string(loop_.loop.index()) + "." +
                   std::to_string(next_serial_++) + "." + nonce();
  auto entry = std::make_unique<Entry>();
  entry->owner = this;
  entry->id = id;
  entry->module = module;
  entry->to = std::move(to);
  entry->to_is_bare = to_is_bare;
  entry->done = done;
  entry->arg = arg;
  uv_timer_init(loop_.loop.uv(), &entry->timer);
  entry->timer.data = entry.get();
  uv_timer_start(&entry->timer, &PendingIqs::on_timeout, timeout_ms, 0);
  module->tasks_in_flight.fetch_add(1);
  pending_.emplace(id, std::move(entry));
  return id;
}

std::optional<unsigned> PendingIqs::owner_loop(std::string_view id) {
  if (id.substr(0, id_prefix.size()) != id_prefix) return std::nullopt;
  id.remove_prefix(id_prefix.size());
  unsigned loop = 0;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), loop);
  if (ec != std::errc() || end == id.data() || end == id.data() + id.size() || *end != '.') return std::nullopt;
  return loop;
}

bool PendingIqs::complete(const xml::Element& reply, const Jid& from) {
  auto it = pending_.find(reply.attr("id"));
  if (it == pending_.end()) return false;
  const Entry& entry = *it->second;
  // RFC 6120 §8.2.3: the answer comes from the entity the iq went to. For a
  // user's bare JID, its server answers on its behalf or a resource does.
  bool from_addressee = from.full() == entry.to || (entry.to_is_bare && from.bare_str() == entry.to);
  if (!from_addressee) {
    spdlog::debug("send_iq: answer to {} from {} ignored (sent to {})", entry.id, from.full(), entry.to);
    return false;
  }
  finish(it, &reply);
  return true;
}

void PendingIqs::on_timeout(uv_timer_t* timer) {
  auto* entry = static_cast<Entry*>(timer->data);
  PendingIqs* self = entry->owner;
  auto it = self->pending_.find(entry->id);
  if (it != self->pending_.end()) self->finish(it, nullptr);
}

void PendingIqs::finish(std::map<std::string, std::unique_ptr<Entry>, std::less<>>::iterator it,
                        const xml::Element* reply) {
  Entry* entry = it->second.release();
  pending_.erase(it);
  uv_timer_stop(&entry->timer);
  parley_module* module = entry->module;
  module->gate.run([&] {
    try {
      entry->done(module->state, entry->arg, reinterpret_cast<const parley_element*>(reply));
    } catch (...) {
      spdlog::error("module {}: exception escaped an iq callback", module->library->name);
    }
  });
  module->tasks_in_flight.fetch_sub(1);
  uv_close(reinterpret_cast<uv_handle_t*>(&entry->timer), &PendingIqs::on_closed);
}

void PendingIqs::on_closed(uv_handle_t* handle) { delete static_cast<Entry*>(handle->data); }

void PendingIqs::expire_all() {
  for (int round = 0; round < 4 && !pending_.empty(); ++round) {
    std::vector<std::string> ids;
    for (const auto& [id, entry] : pending_) ids.push_back(id);
    for (const std::string& id : ids)
      if (auto it = pending_.find(id); it != pending_.end()) finish(it, nullptr);
  }
}

}  // namespace parley
