// The blocklist in XEP-0227 export and import (issue 11): the account's
// <blocklist xmlns='urn:xmpp:blocking'><item jid='...'/></blocklist> as a child of its
// <user/>, the form XEP-0191's blocklist result has (and Prosody's exporter writes).
#include <memory>
#include <unordered_set>
#include <utility>

#include "mod_blocking.hpp"

namespace mod_blocking {

void ModBlocking::on_account_export(const parley::Event& event) {
  if (event.host() != domain_) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  const std::string user(event.user());
  move_.when_ready(host(), [this, data, user] {
    bool sent = host().map_get(user, [this, data](parley::Result<parley::MapResult, std::string> r) {
      if (!r) return data.fail("reading the blocklist failed: " + r.error());
      if (r->size() == 0) return data.done();
      parley::Element list = host().element("blocklist", ns_blocking);
      for (std::size_t i = 0; i < r->size(); ++i) list.add_child("item", ns_blocking).set_attr("jid", r->at(i).key);
      data.add(list);
      data.done(std::to_string(r->size()) + " blocked JID" + (r->size() == 1 ? "" : "s"));
    });
    if (!sent) data.fail("the map store refused the read");
  });
}

void ModBlocking::on_account_import(const parley::Event& event) {
  if (event.host() != domain_) return;
  auto user_el = event.acc();
  auto list = user_el ? user_el->child("blocklist", ns_blocking) : std::nullopt;
  if (!list || list->child_count() == 0) return;
  parley::AccountData data(host(), event);
  if (!data.held()) return;
  // As a block command checks them: each item a JID, prepared; duplicates once.
  auto items = std::make_shared<std::vector<std::string>>();
  std::unordered_set<std::string> seen;
  for (parley::ElementView child : list->children()) {
    auto attr = child.attr("jid");
    if (child.name() != "item" || !attr) return data.fail("a <blocklist/> holds <item jid='...'/> elements only");
    auto jid = parley::Jid::parse(host(), *attr);
    if (!jid) return data.fail("a blocked JID is malformed: " + std::string(*attr));
    std::string item = jid->full();
    if (seen.insert(item).second) items->push_back(std::move(item));
  }
  if (items->size() > max_items_)
    return data.fail("the blocklist exceeds max_items (" + std::to_string(max_items_) + ")");
  const std::string user(event.user());
  move_.when_ready(host(), [this, data, user, items] {
    std::vector<parley::KeyvalItem> put;
    for (const std::string& jid : *items) put.push_back(parley::KeyvalItem{jid, {}});
    bool sent = host().map_put(user, put, max_items_, [this, data, user, items](parley::Result<parley::MapResult, std::string> r) {
      // A list cached before (a stanza to the address before the account existed) is stale.
      forget_everywhere(user);
      if (!r) return data.fail("storing the blocklist failed: " + r.error());
      data.done(std::to_string(items->size()) + " blocked JID" + (items->size() == 1 ? "" : "s"));
    });
    if (!sent) data.fail("the map store refused the write");
  });
}

}  // namespace mod_blocking
