// mod_disco: XEP-0030 Service Discovery for the server and for accounts.
//
// The server's features are the ones every module started for this host
// declared (host->server_features), so a module only declares its feature and
// this one advertises it.
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_items = "http://jabber.org/protocol/disco#items";

class ModDisco : public parley::Module {
 public:
  void on_server_info(const parley::IqRequest& request) {
    if (has_node(request)) return on_node(request, PARLEY_EVENT_DISCO_NODE_INFO, ns_info);
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef query = reply.add_child("query", ns_info);
    query.add_child("identity", ns_info).set_attr("category", "server").set_attr("type", "im").set_attr("name", "Parley");
    std::set<std::string, std::less<>> seen;
    auto add_feature = [&](std::string_view var) {
      if (seen.emplace(var).second) query.add_child("feature", ns_info).set_attr("var", var);
    };
    add_feature(ns_info);
    add_feature(ns_items);
    for (const std::string& feature : host().server_features()) add_feature(feature);
    // Then every module's hook on the fold event adds identities and features
    // (a host older than the fold entry simply has none to add).
    if (host().supports(PARLEY_HOST_ENTRY_END(run_fold)))
      host().api()->run_fold(host().handle(), PARLEY_EVENT_DISCO_INFO, query.raw(), request.session());
    host().route(std::move(reply));
  }

  // The host's items are the module services on its subdomains (ABI 1.2:
  // conference, upload, pubsub, ... as their modules registered them).
  void on_server_items(const parley::IqRequest& request) {
    if (has_node(request)) return on_node(request, PARLEY_EVENT_DISCO_NODE_ITEMS, ns_items);
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef query = reply.add_child("query", ns_items);
    for (const auto& [domain, name] : parley::host_services(host())) {
      parley::ElementRef item = query.add_child("item", ns_items);
      item.set_attr("jid", domain);
      if (!name.empty()) item.set_attr("name", name);
    }
    host().route(std::move(reply));
  }

  parley::Result<void, std::string> start() override {
    // The roster asks (events 27-28) need the per-loop state of ABI 1.2; on an
    // older host only the owner sees into the account.
    contacts_see_ = host().supports_1_2();
    if (contacts_see_) asks_.init(host(), "mod_disco");
    return {};
  }

  // XEP-0030 section 3.1: the server answers for an account. Section 7, rule 1:
  // only to its owner and to the entities its presence goes to (a 'from' or
  // 'both' subscription in its roster); anyone else gets service-unavailable,
  // the answer for an account that does not exist, so nobody else learns
  // which accounts there are.
  // A node of the account (XEP-0060 sections 5.3-5.5 as PEP uses them) is answered
  // under the same rule, by the module that serves it (account_node).
  void on_account_info(const parley::IqRequest& request) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    parley_session_id session = request.session();
    const bool node = has_node(request);
    std::string account(parley::bare_jid(request.to()));
    if (is_owner(request))
      return node ? account_node(*iq, account, session, Sees::connected) : account_info(*iq, session);
    if_presence_allowed(request, [this, iq, account, session, node](bool allowed) {
      if (!allowed) return host().bounce(*iq, "service-unavailable");
      node ? account_node(*iq, account, session, Sees::connected) : account_info(*iq, session);
    });
  }

  // XEP-0030 section 4.1: the server answers for an account. Its owner and the
  // entities its presence goes to (a 'from' or 'both' subscription: they see
  // the resources in presence anyway) see its available resources ("as
  // appropriate", a SHOULD). Anyone else gets the items other modules add (PEP
  // nodes, by access model) and no resource, and so does a request for an
  // account that does not exist (the router lets that one through to here):
  // section 8, rule 2, wants the two to look alike.
  void on_account_items(const parley::IqRequest& request) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    const parley_session_id session = request.session();
    const std::string account(parley::bare_jid(request.to()));
    if (is_owner(request)) {
      if (has_node(request)) return account_node(*iq, account, session, Sees::connected);
      return account_items(*iq, session, Sees::connected);
    }
    if (has_node(request)) return account_node(*iq, account, session, Sees::nothing);
    if_presence_allowed(request, [this, iq, session](bool allowed) {
      // On with a fresh stack: mod_pep's part of the fold asks the roster itself,
      // which should not run inside this module's roster answer.
      parley::post(host(), static_cast<uint32_t>(parley::current_loop(host())), [this, iq, session, allowed] {
        account_items(*iq, session, allowed ? Sees::available : Sees::nothing);
      });
    });
  }

  void on_roster_answer(const parley::Event& event) {
    if (contacts_see_) asks_.on_answer(event);
  }

 private:
  // What of the account's sessions the requester sees: none, the available ones (a
  // contact: what presence shows it), or every connected one (the owner).
  enum class Sees { nothing, available, connected };

  void account_info(const parley::Element& iq, parley_session_id session) {
    parley::Element reply = parley::make_iq_result(iq);
    parley::ElementRef query = reply.add_child("query", ns_info);
    query.add_child("identity", ns_info).set_attr("category", "account").set_attr("type", "registered");
    query.add_child("feature", ns_info).set_attr("var", ns_info);
    query.add_child("feature", ns_info).set_attr("var", ns_items);
    // Modules add the account's own features (mod_mam: urn:xmpp:mam:2, mod_pep:
    // the pep identity); a host without the account fold answers -2 and adds nothing.
    if (host().supports(PARLEY_HOST_ENTRY_END(run_fold)))
      host().api()->run_fold(host().handle(), PARLEY_EVENT_ACCOUNT_DISCO_INFO, query.raw(), session);
    host().route(std::move(reply));
  }

  void account_items(const parley::Element& iq, parley_session_id session, Sees sees) {
    parley::Element reply = parley::make_iq_result(iq);
    parley::ElementRef query = reply.add_child("query", ns_items);
    std::string account(parley::bare_jid(iq.attr("to").value_or("")));
    if (sees != Sees::nothing)
      for (const auto& s : host().user_sessions(account))
        if (sees == Sees::connected || s.available) query.add_child("item", ns_items).set_attr("jid", s.full_jid);
    // Modules add the account's other items (mod_pep: its nodes, to whom
    // their access models admit); one whose items are on another loop takes
    // the reply and answers later (HANDLED). The fold reads the account from
    // the reply's 'from' (absent when the owner asked without a 'to').
    if (!reply.attr("from")) reply.set_attr("from", account);
    if (host().supports(PARLEY_HOST_ENTRY_END(run_fold)) &&
        host().api()->run_fold(host().handle(), PARLEY_EVENT_ACCOUNT_DISCO_ITEMS, reply.raw(), session) ==
            PARLEY_HANDLED)
      return;
    host().route(std::move(reply));
  }

  // Whether the account's presence goes to the requester (section 7: a 'from'
  // or 'both' subscription in the account's roster), as the roster module
  // answers (events 27-28); without one that answers, nobody's does.
  void if_presence_allowed(const parley::IqRequest& request, std::function<void(bool)> then) {
    if (!contacts_see_) return then(false);
    std::string requester(parley::bare_jid(request.from()));
    std::string user = parley::Jid::prepared(parley::bare_jid(request.to())).local();
    asks_.ask_roster(user, requester, [then = std::move(then), requester](auto roster) {
      bool allowed = false;
      if (roster)
        for (const auto& item : *roster)
          allowed = allowed || (item.jid == requester && item.has_from());
      then(allowed);
    });
  }

  bool contacts_see_ = false;
  parley::AccountQuery asks_;

  // A node of the server's domain (issue 17): the module that serves it fills
  // the reply in the node fold (HANDLED) or answers itself (STOP); a node no
  // module serves is item-not-found (XEP-0030 sections 3.2 and 4.2).
  void on_node(const parley::IqRequest& request, parley_event event, const char* ns) {
    if (!host().supports(PARLEY_HOST_ENTRY_END(server_stop))) return host().bounce(request.iq(), "item-not-found");
    parley::Element reply = parley::make_iq_result(request.iq());
    reply.add_child("query", ns).set_attr("node", *request.payload()->attr("node"));
    int result = host().run_fold(event, reply, request.session());
    if (result == PARLEY_HANDLED) return host().route(std::move(reply));
    if (result == PARLEY_STOP) return;
    host().bounce(request.iq(), result == PARLEY_ERROR ? "internal-server-error" : "item-not-found");
  }
  // A node of an account (ABI 1.10, events 32-33): as a node of the server's domain,
  // answered from the account's bare JID by the module that serves it, which decides
  // who sees the node. disco#info comes here only for the owner and those the
  // account's presence goes to (section 8, rule 1); a node nobody serves is then
  // item-not-found. disco#items comes from anyone: a node nobody serves (an account
  // that does not exist included) is an empty result to anyone but the owner
  // (rule 2: the two must look alike), item-not-found to the owner.
  void account_node(const parley::Element& iq, const std::string& account, parley_session_id session, Sees sees) {
    const bool info = iq.child("query", ns_info).has_value();
    const char* ns = info ? ns_info : ns_items;
    parley::Element reply = parley::make_iq_result(iq);
    reply.set_attr("from", account);
    reply.add_child("query", ns).set_attr("node", iq.child("query", ns)->attr("node").value_or(""));
    const parley_event event = info ? PARLEY_EVENT_ACCOUNT_NODE_INFO : PARLEY_EVENT_ACCOUNT_NODE_ITEMS;
    int result = host().run_fold(event, reply, session);
    if (result == PARLEY_HANDLED) return host().route(std::move(reply));
    if (result == PARLEY_STOP) return;
    if (result == PARLEY_ERROR) return host().bounce(iq, "internal-server-error");
    if (!info && sees == Sees::nothing) return host().route(std::move(reply));
    host().bounce(iq, "item-not-found");
  }
  static bool is_owner(const parley::IqRequest& request) {
    return parley::bare_jid(request.from()) == parley::bare_jid(request.to());
  }
  static bool has_node(const parley::IqRequest& request) {
    auto query = request.payload();
    return query && query->has_attr("node");
  }
};

}  // namespace

PARLEY_MODULE(ModDisco, "mod_disco", "1.2.0",
              parley::iq_handler<&ModDisco::on_server_info>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_info),
              parley::iq_handler<&ModDisco::on_server_items>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns_items),
              parley::iq_handler<&ModDisco::on_account_info>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET, ns_info),
              parley::iq_handler<&ModDisco::on_account_items>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET, ns_items),
              parley::hook<&ModDisco::on_roster_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              parley::disco_feature(ns_info), parley::disco_feature(ns_items))
