// The account's side: its queue removed with it, and XEP-0227 export and import
// (offline_export.hpp) of the stored messages.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mod_offline.hpp"
#include "offline_export.hpp"
#include "offline_item.hpp"
#include "offline_rules.hpp"

namespace mod_offline {
namespace {

// Messages added to an export between two waits for its reader (ABI 1.8
// account_data_when_ready): the server holds about limits.max_account_part_bytes of
// the export on its way to parleyctl and one batch, not a whole queue's elements.
constexpr std::size_t kExportBatch = 64;

struct OfflineExport {
  explicit OfflineExport(parley::AccountData d) : data(std::move(d)) {}
  parley::AccountData data;
  std::vector<std::string> stanzas;  // the stored messages' XML, oldest first
  std::size_t next = 0;
  std::size_t exported = 0;
};

void export_batch(const parley::Host& host, const std::shared_ptr<OfflineExport>& st) {
  for (std::size_t end = std::min(st->stanzas.size(), st->next + kExportBatch); st->next < end; ++st->next) {
    std::string xml = std::move(st->stanzas[st->next]);  // freed as it goes
    auto stanza = host.parse(xml);
    if (!stanza) continue;  // as delivery does: an item that does not parse is not a message
    if (!st->data.add_to("offline-messages", parley::kPieNs, *stanza))
      return st->data.fail("the export refused an offline message");
    ++st->exported;
  }
  if (st->next >= st->stanzas.size()) {
    const std::size_t n = st->exported;
    return st->data.done(std::to_string(n) + " offline message" + (n == 1 ? "" : "s"));
  }
  st->data.when_ready([&host, st] { export_batch(host, st); });
}

}  // namespace

// An account removed (and perhaps created again) must not inherit messages: on the
// owner loop, after the puts it issued, what is held is dropped and the map cleared.
void ModOffline::on_user_removed(const parley::Event& event) {
  std::string user(event.user());
  on_owner(user, [this, user] {
    LoopState& loop = here();
    if (auto it = loop.users.find(user); it != loop.users.end()) {
      UserState& st = it->second;
      std::size_t held = st.held.size();
      for (const Incoming& m : st.held) loop.held_bytes -= m.xml.size() + m.key.size() + m.sender.size() + sizeof(Incoming);
      loop.held_count -= held;
      st.held.clear();
      st.stale = true;
      if (held > 0) host().debug("dropped " + std::to_string(held) + " held message(s) of removed user " + user);
    }
    move_.when_ready(host(), [this, user] {
      host().map_clear(user, [this, user](parley::Result<parley::MapResult, std::string> r) {
        if (!r) host().error("removing the offline messages of " + user + " failed: " + r.error());
      });
    });
    maybe_forget(user);
  });
}

// XEP-0227 export: the stored messages, oldest first, a batch at a time as parleyctl
// reads (export_batch). Messages held in memory by write_back durability are not
// stored yet and not exported.
void ModOffline::on_account_export(const parley::Event& event) {
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  move_.when_ready(host(), [this, data, user] {
    bool sent = host().map_get(user, [this, data](parley::Result<parley::MapResult, std::string> items) {
      if (!items) return data.fail("reading the offline messages failed: " + items.error());
      if (items->size() == 0) return data.done();
      // The result is the store's until this returns: the messages' XML is copied out.
      auto st = std::make_shared<OfflineExport>(data);
      st->stanzas.reserve(items->size());
      for (std::size_t i = 0; i < items->size(); ++i)
        if (auto item = parley::offline::decode_item(items->at(i).value)) st->stanzas.emplace_back(item->xml);
      export_batch(host(), st);
    });
    if (!sent) data.fail("the map store refused the read");
  });
}

// XEP-0227 import: the file's <offline-messages/>, stored as if they had arrived
// (their delay kept), in one put counted in the user's quota.
void ModOffline::on_account_import(const parley::Event& event) {
  auto user_el = event.acc();
  auto list = user_el ? user_el->child("offline-messages", parley::kPieNs) : std::nullopt;
  if (!list || list->child_count() == 0) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  auto messages = parley::offline::import_messages(host(), *list, domain_,
                                                   parley::offline::delay_stamp(std::chrono::system_clock::now()));
  if (!messages) return data.fail(messages.error());
  if (static_cast<int64_t>(messages->size()) > max_messages_)
    return data.fail("more offline messages than max_messages (" + std::to_string(max_messages_) + ")");
  std::string user(event.user());
  std::vector<std::string> keys, values;
  for (const auto& m : *messages) {
    keys.push_back(new_key());
    values.push_back(parley::offline::encode_item(m.sender, m.xml));
  }
  std::size_t n = messages->size();
  move_.when_ready(host(), [this, data, user, keys, values, n] {
    std::vector<parley::KeyvalItem> items;
    for (std::size_t i = 0; i < keys.size(); ++i) items.push_back(parley::KeyvalItem{keys[i], values[i]});
    bool sent = host().map_put(user, items, static_cast<uint64_t>(max_messages_),
                               [this, data, user, n](parley::Result<parley::MapResult, std::string> r) {
                                 if (!r) return data.fail("storing the offline messages failed: " + r.error());
                                 // The owner's counts (if it has any) are low now: read them again.
                                 on_owner(user, [this, user] {
                                   if (auto it = here().users.find(user); it != here().users.end())
                                     it->second.stale = true;
                                 });
                                 data.done(std::to_string(n) + " offline message" + (n == 1 ? "" : "s"));
                               });
    if (!sent) data.fail("the map store refused the put");
  });
}

}  // namespace mod_offline
