// The account's side: its queue removed with it, and XEP-0227 export and import
// (offline_export.hpp) of the stored messages.
#include <chrono>

#include "mod_offline.hpp"
#include "offline_export.hpp"
#include "offline_item.hpp"
#include "offline_rules.hpp"

namespace mod_offline {

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

// XEP-0227 export: the stored messages, oldest first. Messages held in memory by
// write_back durability are not stored yet and not exported.
void ModOffline::on_account_export(const parley::Event& event) {
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  std::string user(event.user());
  move_.when_ready(host(), [this, data, user] {
    bool sent = host().map_get(user, [this, data](parley::Result<parley::MapResult, std::string> items) {
      if (!items) return data.fail("reading the offline messages failed: " + items.error());
      if (items->size() == 0) return data.done();
      parley::Element list = host().element("offline-messages", parley::kPieNs);
      std::size_t n = 0;
      for (std::size_t i = 0; i < items->size(); ++i) {
        auto item = parley::offline::decode_item(items->at(i).value);
        auto stanza = item ? host().parse(item->xml) : std::nullopt;
        if (!stanza) continue;  // as delivery does: an item that does not parse is not a message
        list.add_child(std::move(*stanza));
        ++n;
      }
      data.add(list);
      data.done(std::to_string(n) + " offline message" + (n == 1 ? "" : "s"));
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
