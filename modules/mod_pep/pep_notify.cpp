// mod_pep: notifications (XEP-0163 §4.3: to the owner's available resources
// and to contacts with a 'from' or 'both' subscription that may see the node,
// filtered by their +notify interests), the last items on an available
// presence (§4.3.2 / XEP-0060 send_last_published_item), entity capabilities
// (XEP-0115: <c/> read from presence, disco#info asked once per ver and loop,
// the hash verified, a bounded cache per loop) and the account's disco#info.
#include <chrono>

#include "mod_pep.hpp"
#include "parley/sdk/stamp.hpp"

namespace parley::mod_pep {

std::string ModPep::event_message(const std::string& owner, const std::string& event_xml, int64_t stamp_us) const {
  std::string delay;
  if (stamp_us > 0)
    delay = "<delay xmlns='urn:xmpp:delay' from='" + xml_attr(owner) + "' stamp='" +
            parley::xep0082_stamp(stamp_us / 1000) + "'/>";
  return "<message xmlns='jabber:client' type='headline' from='" + xml_attr(owner) + "'><event xmlns='" +
         std::string(ns_event) + "'>" + event_xml + "</event>" + delay + "</message>";
}

namespace {

int64_t steady_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// A disco#info answer as XEP-0115 §5.1 hashes it (and its features).
CapsInfo read_caps_info(parley::ElementView query, std::set<std::string, std::less<>>& features) {
  CapsInfo info;
  for (auto child : query.children()) {
    if (child.name() == "identity" && child.xmlns() == ns_disco_info) {
      info.identities.push_back(CapsIdentity{std::string(child.attr("category").value_or("")),
                                             std::string(child.attr("type").value_or("")),
                                             std::string(child.attr("xml:lang").value_or("")),
                                             std::string(child.attr("name").value_or(""))});
    } else if (child.name() == "feature" && child.xmlns() == ns_disco_info) {
      info.features.emplace_back(child.attr("var").value_or(""));
      features.emplace(child.attr("var").value_or(""));
    } else if (child.name() == "x" && child.xmlns() == ns_data) {
      CapsForm form;
      bool typed = false;
      for (auto field : child.children()) {
        if (field.name() != "field") continue;
        FormField f{std::string(field.attr("var").value_or("")), {}};
        for (auto v : field.children())
          if (v.name() == "value") f.values.push_back(v.text());
        if (f.var == "FORM_TYPE") {
          // §5.4 3.e/3.f: a FORM_TYPE not hidden, or not one value: the form is ignored.
          typed = field.attr("type").value_or("") == "hidden" && f.values.size() == 1;
          if (typed) form.form_type = f.values.front();
        } else {
          form.fields.push_back(std::move(f));
        }
      }
      if (typed) info.forms.push_back(std::move(form));
    }
  }
  return info;
}

}  // namespace

// On the owner loop: every available session that may see the node gets the
// event, if its caps say +notify for the node (checked on its own loop).
void ModPep::notify(const std::string& owner, const std::string& node, const NodeConfig& config,
                    const std::string& event_xml, bool new_last_item) {
  const std::string message = event_message(owner, event_xml);
  // A session that becomes available while the roster is read gets a new last item
  // from its presence (when the node sends last items then): not twice.
  const int64_t published_us =
      new_last_item && config.send_last == SendLast::on_sub_and_presence ? steady_us() : 0;
  // §4.3.2: resources with a non-negative priority only (the owner's too).
  for (const auto& s : host().user_sessions(owner))
    if (s.available && s.priority >= 0) deliver(s.id, s.full_jid, node, message, published_us);
  if (config.access == AccessModel::whitelist && config.whitelist.empty()) return;  // the owner's alone
  const std::string user = parley::Jid::prepared(owner).local();
  asks_.ask_roster(user, {}, [this, owner, node, config, message, published_us](auto roster) {
    if (!roster) return host().error("reading the roster of " + owner + " failed (no roster module answered)");
    for (const auto& item : *roster) {
      if (!item.has_from()) continue;
      const std::string& contact = item.jid;
      if (contact == owner || check_access(config, false, contact, true, item.groups) != Access::allowed) continue;
      // Local contacts only: there is no server-to-server yet.
      if (parley::Jid::prepared(contact).domain() != host().module_host()) continue;
      for (const auto& s : host().user_sessions(contact))
        if (s.available && s.priority >= 0) deliver(s.id, s.full_jid, node, message, published_us);
    }
  });
}

void ModPep::deliver(parley_session_id session, const std::string& full_jid, const std::string& node,
                     const std::string& message_xml, int64_t published_us) {
  parley::post_to_session(host(), session, [this, session, full_jid, node, message_xml, published_us] {
    auto* caps = host().session_slot<SessionCaps>(session);
    if (!caps || !caps->available || !caps->features || !caps->features->count(node + "+notify")) return;
    if (published_us != 0 && caps->eligible_since_us > published_us) return;  // its presence sends it
    auto message = host().parse(message_xml);
    if (!message) return;
    message->set_attr("to", full_jid);
    // Routed, not written to the session: the filters of what reaches a local user
    // see it. A blocklist must (XEP-0191 3.3): nothing of the owner's reaches a
    // contact the owner blocked, nothing of a blocked owner reaches the user.
    host().route(std::move(*message));
    host().counter_add("notifications");
  });
}

// The session's own presence, on its loop.
parley::Outcome ModPep::on_presence(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.user().empty()) return parley::Outcome::pass;
  const parley_session_id session = event.session();
  const std::string_view type = stanza->attr("type").value_or("");
  auto* caps = host().session_slot<SessionCaps>(session);
  if (type == "unavailable") {
    if (caps) caps->available = false, caps->want_last = false;
    return parley::Outcome::pass;
  }
  if (!type.empty()) return parley::Outcome::pass;
  if (!caps) caps = host().set_session_slot(session, std::make_unique<SessionCaps>());
  if (!caps) return parley::Outcome::pass;
  const bool initial = !caps->available;
  caps->available = true;
  // §4.3.2-3: a resource with a negative priority gets no notification, and
  // no last item on its initial presence (RFC 6121 4.7.2.3: absent is 0).
  // (The core checked the value: an integer from -128 to 127.)
  const std::string priority = stanza->child_text("priority");
  const bool eligible = priority.rfind('-', 0) != 0 || priority.find_first_not_of("-0") == std::string::npos;
  // The interests whose last items the session was sent already (null:
  // none). A later presence whose caps add a +notify interest gets those
  // nodes' last items (as Prosody and ejabberd do, and as clients that add a
  // +notify feature after login expect).
  Features prior;
  if (!initial && caps->eligible) prior = caps->want_last ? caps->last_sent_for : caps->features;
  if (eligible && (initial || !caps->eligible)) caps->eligible_since_us = steady_us();
  caps->eligible = eligible;
  const std::string full(event.jid());
  const std::string bare = event.user_bare();
  caps->full_jid = full;
  auto c = stanza->child("c", ns_caps);
  std::string ver(c ? c->attr("ver").value_or("") : "");
  if (ver.empty()) {
    caps->ver.clear();
    caps->features.reset();
  } else if (ver != caps->ver || !caps->features) {
    // A new ver, or one not known yet (asked, timed out: asked again; a
    // refused one stays refused in the cache).
    if (ver != caps->ver) caps->features.reset();
    caps->ver = ver;
    resolve_caps(session, full, std::string(c->attr("node").value_or("")), ver,
                 std::string(c->attr("hash").value_or("")));
  }
  caps->want_last = false;
  caps->last_sent_for.reset();
  if (eligible && caps->features && caps->features != prior) {
    send_last(session, full, bare, caps->features, std::move(prior));  // every node's, or those newly wanted
  } else if (eligible && !caps->features && !caps->ver.empty()) {
    caps->want_last = true;  // sent once the caps are verified
    caps->last_sent_for = std::move(prior);
  }
  return parley::Outcome::pass;
}

void ModPep::resolve_caps(parley_session_id session, const std::string& full_jid, const std::string& caps_node,
                          const std::string& ver, const std::string& hash) {
  CapsLoop& loop = caps_.here();
  auto* caps = host().session_slot<SessionCaps>(session);
  if (auto known = loop.known.find(ver); known != loop.known.end()) {
    if (caps) caps->features = known->second;
    return;
  }
  // Legacy caps (no hash) and other hashes cannot be verified: not trusted.
  if (loop.untrusted.count(ver) || hash != "sha-1") return;
  auto asked = loop.asking.find(ver);
  if (asked != loop.asking.end()) {
    // Asked already: the answer serves every session (at most the cache's
    // size of them wait for one ver).
    if (static_cast<int64_t>(asked->second.size()) < caps_cache_size_) asked->second.push_back(session);
    return;
  }
  // As many questions in flight per loop as the cache holds answers; past
  // that a new ver is not asked (that resource gets no notification).
  if (static_cast<int64_t>(loop.asking.size()) >= caps_cache_size_) return;
  loop.asking[ver].push_back(session);
  parley::Element iq = host().element("iq", "jabber:client");
  iq.set_attr("type", "get").set_attr("from", host().module_host()).set_attr("to", full_jid);
  iq.add_child("query", ns_disco_info).set_attr("node", caps_node + "#" + ver);
  host().counter_add("caps_queries");
  parley::send_iq(host(), std::move(iq), std::chrono::seconds(10),
                  [this, ver](std::optional<parley::ElementView> answer) { caps_answer(ver, answer); });
}

void ModPep::caps_answer(const std::string& ver, std::optional<parley::ElementView> answer) {
  CapsLoop& loop = caps_.here();
  auto waiting = std::move(loop.asking[ver]);
  loop.asking.erase(ver);
  std::optional<parley::ElementView> query;
  if (answer && answer->attr("type").value_or("") == "result") query = answer->child("query", ns_disco_info);
  if (!query) return;  // an error or no answer: not cached, the next presence with it asks again
  auto features = std::make_shared<std::set<std::string, std::less<>>>();
  CapsInfo info = read_caps_info(*query, *features);
  const auto computed = caps_ver(info);
  if (!computed || *computed != ver) {
    host().counter_add("caps_untrusted");
    remember(loop, ver, nullptr);
    return;
  }
  Features shared = features;
  remember(loop, ver, shared);
  for (parley_session_id session : waiting) {
    auto* caps = host().session_slot<SessionCaps>(session);
    if (!caps || caps->ver != ver) continue;
    caps->features = shared;
    if (caps->want_last && caps->available) {
      caps->want_last = false;
      send_last(session, caps->full_jid, caps->bare(), shared, std::move(caps->last_sent_for));
      caps->last_sent_for.reset();
    }
  }
}

void ModPep::remember(CapsLoop& loop, const std::string& ver, Features features) {
  if (features) loop.known[ver] = std::move(features);
  else loop.untrusted.insert(ver);
  loop.order.push_back(ver);
  while (static_cast<int64_t>(loop.order.size()) > caps_cache_size_) {
    const std::string old = std::move(loop.order.front());
    loop.order.pop_front();
    loop.known.erase(old);
    loop.untrusted.erase(old);
  }
}

// The last item of each node the session's user may see, of its own account
// and of the accounts it is subscribed to (its roster's 'to' and 'both'),
// each filtered by the session's +notify on its loop.
void ModPep::send_last(parley_session_id session, const std::string& full_jid, const std::string& bare,
                       Features wanted, Features except) {
  send_last_of(session, full_jid, bare, bare, wanted, false, except);
  const std::string user = parley::Jid::prepared(bare).local();
  asks_.ask_roster(user, {}, [this, session, full_jid, bare, wanted, except](auto roster) {
    if (!roster) return host().error("reading the roster of " + bare + " failed (no roster module answered)");
    for (const auto& item : *roster) {
      if (!item.has_to()) continue;
      if (item.jid == bare || parley::Jid::prepared(item.jid).domain() != host().module_host()) continue;
      send_last_of(session, full_jid, bare, item.jid, wanted, false, except);
    }
  });
}

void ModPep::send_last_of(parley_session_id session, const std::string& full_jid, const std::string& bare,
                          const std::string& owner, Features wanted, bool approved, Features except) {
  // On presence: on_sub_and_presence nodes; on a subscription the owner just
  // approved: on_sub ones too.
  auto send = [this, session, full_jid, bare, owner, wanted, approved, except](UserPep& u, const Relation& rel) {
    for (const auto& [node, n] : u.nodes) {
      const std::string notify = node + "+notify";
      // Chosen by the caps this send is for: had the session announced new caps
      // while the reads above were answered, those caps' own send covers them
      // (deliver() checks the session's caps again: wanted by both).
      if (!wanted || !wanted->count(notify)) continue;
      if (except && except->count(notify)) continue;  // sent already
      const bool when = n.config.send_last == SendLast::on_sub_and_presence ||
                        (approved && n.config.send_last == SendLast::on_sub);
      if (n.items.empty() || !when || !n.config.deliver_notifications) continue;
      if (check_access(n.config, bare == owner, bare, rel.subscribed_from, rel.groups) != Access::allowed) continue;
      deliver(session, full_jid, node,
              // A last item sent later than it was published carries a XEP-0203 <delay/>.
              event_message(owner, "<items xmlns='" + std::string(ns_event) + "' node='" + xml_attr(node) + "'>" +
                                       item_xml(n.items.back(), n.config.deliver_payloads) + "</items>",
                            n.items.back().stamp_us));
    }
  };
  if (bare == owner) {
    with_user(owner, [send](UserPep* u) {
      if (u) send(*u, Relation{});
    });
    return;
  }
  relation(parley::Jid::prepared(owner).local(), bare, [this, owner, send, approved](std::optional<Relation> rel) {
    if (!rel) return;
    // Only contacts the owner lets see its presence: its roster says so, or
    // it has just said so with a 'subscribed' (its roster may not show it yet).
    if (approved) rel->subscribed_from = true;
    if (!rel->subscribed_from) return;
    with_user(owner, [send, rel](UserPep* u) {
      if (u) send(*u, *rel);
    });
  });
}

// XEP-0163 §4.3 / XEP-0060 send_last_published_item on_sub: the owner
// approves a local contact's subscription (RFC 6121 3.1.5, its 'subscribed'
// on its own stream): the contact's available resources get the last items
// (each filtered by its own +notify, on its loop). And a client's private
// storage set of XEP-0048 bookmarks (pep_bookmarks.cpp).
parley::Outcome ModPep::on_stanza_in(const parley::Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.user().empty()) return parley::Outcome::pass;
  if (stanza->name() == "iq") {
    private_bookmarks_set(event, *stanza);  // XEP-0411: the node follows; mod_private stores it
    vcard_set(event, *stanza);              // XEP-0153: the photo's hash follows; mod_vcard stores it
    return parley::Outcome::pass;
  }
  if (stanza->name() == "presence" && !stanza->attr("type")) {
    add_photo(event.session(), *stanza);
    return parley::Outcome::pass;
  }
  if (stanza->name() != "presence" || stanza->attr("type").value_or("") != "subscribed")
    return parley::Outcome::pass;
  auto to = stanza->attr("to");
  if (!to) return parley::Outcome::pass;
  const std::string contact(parley::bare_jid(*to));  // 'to' is prepared before STANZA_IN
  const std::string owner = event.user_bare();
  if (contact == owner || parley::Jid::prepared(contact).domain() != host().module_host())
    return parley::Outcome::pass;
  for (const auto& s : host().user_sessions(contact)) {
    if (!s.available || s.priority < 0) continue;
    parley::post_to_session(host(), s.id, [this, session = s.id, full = s.full_jid, contact, owner] {
      auto* caps = host().session_slot<SessionCaps>(session);
      if (caps && caps->features) send_last_of(session, full, contact, owner, caps->features, true);
    });
  }
  return parley::Outcome::pass;
}

parley::Result<std::string, std::string> ModPep::save_session_data(parley_session_id, const SessionCaps& caps) {
  std::vector<std::string> out{"v3",        caps.available ? "1" : "0", caps.ver, caps.full_jid, caps.bare(),
                               caps.photo ? (caps.photo_pep ? "2" : "1") : "0", caps.photo.value_or(""),
                               caps.eligible ? "1" : "0", caps.features ? "1" : "0"};
  if (caps.features) out.insert(out.end(), caps.features->begin(), caps.features->end());
  return encode_strings(out);
}

parley::Result<std::unique_ptr<SessionCaps>, std::string> ModPep::restore_session_data(parley_session_id,
                                                                                       std::string_view bytes) {
  auto in = decode_roster_groups(bytes);
  // v1 (before the avatar's hash): as v2 without its two fields; v2 (before
  // the priority): as v3 without `eligible` (taken as its availability).
  if (in.size() >= 6 && in[0] == "v1") in.insert(in.begin() + 5, {"0", ""});
  if (in.size() >= 7 && (in[0] == "v1" || in[0] == "v2")) in.insert(in.begin() + 7, in[1]);
  if (in.size() < 9 || (in[0] != "v1" && in[0] != "v2" && in[0] != "v3"))
    return parley::unexpected(std::string("malformed mod_pep session caps"));
  auto caps = std::make_unique<SessionCaps>();
  caps->available = in[1] == "1";
  caps->ver = in[2];
  caps->full_jid = in[3];  // in[4], the bare JID, is derived from it
  if (in[5] != "0") caps->photo = in[6];
  caps->photo_pep = in[5] == "2";
  caps->eligible = in[7] == "1";
  if (in[8] == "1") caps->features = std::make_shared<std::set<std::string, std::less<>>>(in.begin() + 9, in.end());
  return caps;
}

parley::Outcome ModPep::on_account_disco(const parley::Event& event) {
  auto query = event.acc();
  if (!query) return parley::Outcome::pass;
  query->add_child("identity", ns_disco_info).set_attr("category", "pubsub").set_attr("type", "pep");
  for (const char* feature :
       {"http://jabber.org/protocol/pubsub", "http://jabber.org/protocol/pubsub#publish",
        "http://jabber.org/protocol/pubsub#auto-create", "http://jabber.org/protocol/pubsub#auto-subscribe",
        "http://jabber.org/protocol/pubsub#publish-options", "http://jabber.org/protocol/pubsub#retrieve-items",
        "http://jabber.org/protocol/pubsub#retract-items", "http://jabber.org/protocol/pubsub#purge-nodes",
        "http://jabber.org/protocol/pubsub#delete-nodes", "http://jabber.org/protocol/pubsub#create-nodes",
        "http://jabber.org/protocol/pubsub#config-node", "http://jabber.org/protocol/pubsub#persistent-items",
        "http://jabber.org/protocol/pubsub#last-published", "http://jabber.org/protocol/pubsub#item-ids",
        "http://jabber.org/protocol/pubsub#filtered-notifications",
        "http://jabber.org/protocol/pubsub#access-presence", "http://jabber.org/protocol/pubsub#access-open",
        "http://jabber.org/protocol/pubsub#access-roster", "http://jabber.org/protocol/pubsub#access-whitelist",
        "http://jabber.org/protocol/pubsub#modify-affiliations", "http://jabber.org/protocol/pubsub#retrieve-affiliations",
        "http://jabber.org/protocol/pubsub#retrieve-default"})
    query->add_child("feature", ns_disco_info).set_attr("var", feature);
  // XEP-0398 §2: a published avatar becomes the vCard's photo (pep_avatar.cpp).
  if (avatar_presence_) query->add_child("feature", ns_disco_info).set_attr("var", "urn:xmpp:pep-vcard-conversion:0");
  return parley::Outcome::pass;
}

// XEP-0060 §5.2 as XEP-0163 uses it: the account's disco#items lists its
// nodes, all of them to its owner, to anyone else those its access models
// admit. The nodes are on the owner loop: the reply is answered from there.
parley::Outcome ModPep::on_account_items(const parley::Event& event) {
  auto acc = event.acc();
  if (!acc || !acc->child("query", ns_disco_items)) return parley::Outcome::pass;
  const std::string owner(parley::bare_jid(acc->attr("from").value_or("")));
  const std::string requester(parley::bare_jid(acc->attr("to").value_or("")));
  if (owner.find('@') == std::string::npos) return parley::Outcome::pass;
  auto reply = std::make_shared<parley::Element>(acc->clone());
  auto answer = [this, reply, owner, requester](UserPep* u, const Relation& rel) {
    if (u) {
      auto query = reply->child("query", ns_disco_items);
      for (const auto& [node, n] : u->nodes) {
        if (check_access(n.config, owner == requester, requester, rel.subscribed_from, rel.groups) != Access::allowed)
          continue;
        auto item = query->add_child("item", ns_disco_items);
        item.set_attr("jid", owner).set_attr("node", node);
        if (!n.config.title.empty()) item.set_attr("name", n.config.title);
      }
    }
    host().route(std::move(*reply));
  };
  if (owner == requester) {
    with_user(owner, [answer](UserPep* u) { answer(u, Relation{}); });
    return parley::Outcome::handled;
  }
  relation(parley::Jid::prepared(owner).local(), requester, [this, owner, answer](std::optional<Relation> rel) {
    if (!rel) return answer(nullptr, Relation{});  // a storage error: the other items only
    with_user(owner, [answer, rel](UserPep* u) { answer(u, *rel); });
  });
  return parley::Outcome::handled;
}

// XEP-0060 §5.3-5.5 as XEP-0163 uses them: a node's disco#info (identity
// pubsub/leaf, the pubsub feature, the meta-data form) and its disco#items (one
// item per published item, named by its id). Only to whom the node's access model
// admits, as the account's disco#items lists it; to anyone else the node does not
// exist: item-not-found, or for disco#items from anyone but the owner an empty
// result, which is also what an account that does not exist answers (XEP-0030
// section 8: mod_disco sends disco#info here only for the owner and those its
// presence goes to).
parley::Outcome ModPep::on_account_node(const parley::Event& event) {
  auto acc = event.acc();
  if (!acc) return parley::Outcome::pass;
  const bool info = acc->child("query", ns_disco_info).has_value();
  auto asked = acc->child("query", info ? ns_disco_info : ns_disco_items);
  if (!asked) return parley::Outcome::pass;
  const std::string node(asked->attr("node").value_or(""));
  const std::string owner(parley::bare_jid(acc->attr("from").value_or("")));
  const std::string requester(parley::bare_jid(acc->attr("to").value_or("")));
  if (owner.find('@') == std::string::npos || node.empty()) return parley::Outcome::pass;
  auto reply = std::make_shared<parley::Element>(acc->clone());
  auto answer = [this, reply, owner, requester, node, info](UserPep* u, const Relation& rel) {
    const auto it = u ? u->nodes.find(node) : decltype(u->nodes.end()){};
    if (!u || it == u->nodes.end() ||
        check_access(it->second.config, owner == requester, requester, rel.subscribed_from, rel.groups) !=
            Access::allowed) {
      if (!info && owner != requester) return host().route(std::move(*reply));  // empty
      reply->set_attr("type", "error");
      auto error = reply->add_child("error", "jabber:client");
      error.set_attr("type", "cancel");
      error.add_child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas");
      return host().route(std::move(*reply));
    }
    const Node& n = it->second;
    auto query = reply->child("query", info ? ns_disco_info : ns_disco_items);
    if (info) {
      pubsub::MetaData meta;
      meta.config = &n.config;
      meta.creator = owner;
      meta.owners = {owner};
      meta.max_items = n.config.effective_max_items(limits_);
      pubsub::add_node_info(*query, meta);
    } else {
      for (const auto& item : n.items) query->add_child("item", ns_disco_items).set_attr("jid", owner).set_attr("name", item.id);
    }
    host().route(std::move(*reply));
  };
  if (owner == requester) {
    with_user(owner, [answer](UserPep* u) { answer(u, Relation{}); });
    return parley::Outcome::stop;
  }
  relation(parley::Jid::prepared(owner).local(), requester, [this, owner, answer](std::optional<Relation> rel) {
    if (!rel) return answer(nullptr, Relation{});  // a storage error: as a node not there
    with_user(owner, [answer, rel](UserPep* u) { answer(u, *rel); });
  });
  return parley::Outcome::stop;
}

// XEP-0115 §6.3: the server's own caps in stream features. The verification
// string is of the server's disco#info as mod_disco answers it (asked over the
// router, so that it is exactly what a client gets), per loop, asked again
// when older than a minute (modules may have been loaded or reloaded since).
void ModPep::refresh_server_caps() {
  ServerCaps& sc = server_caps_.here();
  const auto now = std::chrono::steady_clock::now();
  if (sc.asking || (sc.at != std::chrono::steady_clock::time_point{} && now - sc.at < std::chrono::minutes(1))) return;
  sc.asking = true;
  parley::Element iq = host().element("iq", "jabber:client");
  iq.set_attr("type", "get").set_attr("from", host().module_host()).set_attr("to", host().module_host());
  iq.add_child("query", ns_disco_info);
  const bool sent = parley::send_iq(host(), std::move(iq), std::chrono::seconds(10),
                                    [this](std::optional<parley::ElementView> answer) {
    ServerCaps& sc = server_caps_.here();
    sc.asking = false;
    sc.at = std::chrono::steady_clock::now();
    std::optional<parley::ElementView> query;
    if (answer && answer->attr("type").value_or("") == "result") query = answer->child("query", ns_disco_info);
    if (!query) return;
    std::set<std::string, std::less<>> features;
    if (auto ver = caps_ver(read_caps_info(*query, features))) sc.ver = *ver;
  });
  if (!sent) sc.asking = false;
}

parley::Outcome ModPep::on_stream_features(const parley::Event& event) {
  auto acc = event.acc();
  if (!acc) return parley::Outcome::pass;
  refresh_server_caps();
  const ServerCaps& sc = server_caps_.here();
  if (!sc.ver.empty())
    acc->add_child("c", ns_caps).set_attr("hash", "sha-1").set_attr("node", "urn:parley:server").set_attr("ver", sc.ver);
  return parley::Outcome::pass;
}

}  // namespace parley::mod_pep
