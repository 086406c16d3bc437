// mod_pep: XEP-0402 bookmarks kept in sync with XEP-0048 bookmarks in
// private XML storage (XEP-0049), as XEP-0411 describes.
//
// The seam is the protocol itself, not mod_private's table (a module reads a
// dependency's tables, never writes them): a change of the account's
// urn:xmpp:bookmarks:1 node is written to its private storage with an iq set
// the module sends on the account's behalf (send_iq from the bare JID, which
// mod_private serves as from its owner); a client's own jabber:iq:private set
// of storage:bookmarks, seen on its way in (STANZA_IN), becomes the node's
// items (published, or retracted, with their notifications). What this module
// sends does not pass STANZA_IN, so the two directions do not echo.
#include <algorithm>
#include <chrono>

#include "mod_pep.hpp"

namespace parley::mod_pep {

namespace {

constexpr const char* ns_bookmarks2 = "urn:xmpp:bookmarks:1";
constexpr const char* ns_bookmarks1 = "storage:bookmarks";
constexpr const char* ns_private = "jabber:iq:private";

bool truthy(std::string_view v) { return v == "true" || v == "1"; }

// XEP-0402 §6 node configuration.
NodeConfig bookmarks_config() {
  NodeConfig c;
  c.access = AccessModel::whitelist;
  c.max_items = -1;
  c.send_last = SendLast::never;
  return c;
}

}  // namespace

// A XEP-0402 item (id: the room's JID) as a XEP-0048 <conference/>.
static std::string legacy_conference(const parley::Host& host, const Item& item) {
  auto c = host.parse(item.payload);
  if (!c || c->name() != "conference" || c->xmlns() != ns_bookmarks2) return {};
  std::string out = "<conference jid='" + xml_attr(item.id) + "'";
  if (auto name = c->attr("name")) out += " name='" + xml_attr(*name) + "'";
  out += std::string(" autojoin='") + (truthy(c->attr("autojoin").value_or("")) ? "true" : "false") + "'>";
  if (auto nick = c->child("nick", ns_bookmarks2)) out += "<nick>" + xml_attr(nick->text()) + "</nick>";
  if (auto password = c->child("password", ns_bookmarks2)) out += "<password>" + xml_attr(password->text()) + "</password>";
  return out + "</conference>";
}

// On the owner loop, after the bookmarks node changed: private storage gets
// the same bookmarks (XEP-0411 §3).
void ModPep::bookmarks_to_private(const std::string& owner, const UserPep& u) {
  std::string storage = "<storage xmlns='" + std::string(ns_bookmarks1) + "'>";
  if (auto it = u.nodes.find(ns_bookmarks2); it != u.nodes.end())
    for (const Item& item : it->second.items) storage += legacy_conference(host(), item);
  storage += "</storage>";
  auto iq = host().parse("<iq xmlns='jabber:client' type='set' from='" + xml_attr(owner) + "' to='" + xml_attr(owner) +
                         "'><query xmlns='" + std::string(ns_private) + "'>" + storage + "</query></iq>");
  if (!iq) return;
  parley::send_iq(host(), std::move(*iq), std::chrono::seconds(30), [this, owner](std::optional<parley::ElementView> a) {
    if (!a || a->attr("type").value_or("") != "result")
      host().error("writing the XEP-0048 bookmarks of " + owner + " to private storage failed");
    else
      host().counter_add("bookmarks_to_private");
  });
}

// On the owner loop: the account stored XEP-0048 bookmarks in private
// storage; the XEP-0402 node follows (created with §6's configuration if
// needed): changed conferences are published, missing ones retracted.
void ModPep::bookmarks_from_private(const std::string& owner, UserPep& u, const std::string& storage_xml) {
  auto storage = host().parse(storage_xml);
  if (!storage) return;
  std::vector<Item> wanted;
  for (auto c : storage->children()) {
    if (c.name() != "conference" || c.xmlns() != ns_bookmarks1) continue;
    auto jid = host().prepare_jid(c.attr("jid").value_or(""));
    if (!jid || jid->find('/') != std::string::npos) continue;
    std::string payload = "<conference xmlns='" + std::string(ns_bookmarks2) + "'";
    if (auto name = c.attr("name")) payload += " name='" + xml_attr(*name) + "'";
    if (truthy(c.attr("autojoin").value_or(""))) payload += " autojoin='true'";
    payload += ">";
    if (auto nick = c.child("nick", ns_bookmarks1)) payload += "<nick>" + xml_attr(nick->text()) + "</nick>";
    if (auto pw = c.child("password", ns_bookmarks1)) payload += "<password>" + xml_attr(pw->text()) + "</password>";
    payload += "</conference>";
    // Stored as the publish path stores it: re-serialized by the SDK.
    auto parsed = host().parse(payload);
    if (!parsed) continue;
    wanted.push_back(Item{std::string(*jid), parsed->serialize(), {}, 0});
  }
  auto it = u.nodes.find(ns_bookmarks2);
  if (it == u.nodes.end()) {
    if (wanted.empty() || static_cast<int64_t>(u.nodes.size()) >= limits_.max_nodes) return;
    it = u.nodes.emplace(ns_bookmarks2, Node{bookmarks_config(), {}}).first;
    store(owner, {{node_key(ns_bookmarks2), serialize_config(it->second.config)}}, {});
  }
  Node& n = it->second;
  const std::string head = "<items xmlns='" + std::string(ns_event) + "' node='" + std::string(ns_bookmarks2) + "'>";
  // Retract what the new storage no longer has.
  for (auto i = n.items.begin(); i != n.items.end();) {
    const bool kept = std::any_of(wanted.begin(), wanted.end(), [&](const Item& w) { return w.id == i->id; });
    if (kept) {
      ++i;
      continue;
    }
    const std::string id = i->id;
    i = n.items.erase(i);
    store(owner, {}, {item_key(ns_bookmarks2, id)});
    if (n.config.notify_retract) notify(owner, ns_bookmarks2, n.config, head + "<retract id='" + xml_attr(id) + "'/></items>");
  }
  // Publish what is new or changed (within the item limits).
  for (Item& w : wanted) {
    auto old = std::find_if(n.items.begin(), n.items.end(), [&](const Item& i) { return i.id == w.id; });
    if (old != n.items.end() && old->payload == w.payload) continue;
    if (static_cast<int64_t>(w.payload.size()) > limits_.max_item_bytes) continue;
    if (old != n.items.end()) n.items.erase(old);
    w.stamp_us = next_seq();
    n.items.push_back(w);
    while (n.items.size() > static_cast<std::size_t>(n.config.effective_max_items(limits_))) {
      store(owner, {}, {item_key(ns_bookmarks2, n.items.front().id)});
      n.items.pop_front();
    }
    store(owner, {{item_key(ns_bookmarks2, w.id), item_value(n.items.back())}}, {});
    if (n.config.deliver_notifications)
      notify(owner, ns_bookmarks2, n.config, head + item_xml(n.items.back(), n.config.deliver_payloads) + "</items>",
             true);
  }
  host().counter_add("bookmarks_from_private");
}

// A client's jabber:iq:private set of storage:bookmarks for its own account.
bool ModPep::private_bookmarks_set(const parley::Event& event, parley::ElementView stanza) {
  if (stanza.name() != "iq" || stanza.attr("type").value_or("") != "set") return false;
  auto query = stanza.child("query", ns_private);
  if (!query) return false;
  auto storage = query->child("storage", ns_bookmarks1);
  if (!storage) return false;
  const std::string owner = event.user_bare();
  if (auto to = stanza.attr("to"); to && parley::bare_jid(*to) != owner) return false;  // mod_private refuses it
  const std::string xml = storage->serialize();
  if (static_cast<int64_t>(xml.size()) > limits_.max_user_bytes) return false;
  with_user(owner, [this, owner, xml](UserPep* u) {
    if (u) bookmarks_from_private(owner, *u, xml);
  });
  return true;
}

bool ModPep::is_bookmarks(const std::string& node) { return node == ns_bookmarks2; }

}  // namespace parley::mod_pep
