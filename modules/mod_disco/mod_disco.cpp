// mod_disco: XEP-0030 Service Discovery for the server and for accounts.
//
// The server's features are the ones every module started for this host
// declared (host->server_features), so a module only declares its feature and
// this one advertises it.
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

  // XEP-0030 section 3.1: the server answers for an account, to its owner
  // only. Anyone else gets service-unavailable, the answer for an account that
  // does not exist (section 7: an entity without access learns nothing).
  void on_account_info(const parley::IqRequest& request) {
    if (!is_owner(request)) return host().bounce(request.iq(), "service-unavailable");
    if (has_node(request)) return host().bounce(request.iq(), "item-not-found");
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef query = reply.add_child("query", ns_info);
    query.add_child("identity", ns_info).set_attr("category", "account").set_attr("type", "registered");
    query.add_child("feature", ns_info).set_attr("var", ns_info);
    query.add_child("feature", ns_info).set_attr("var", ns_items);
    // Modules add the account's own features (mod_mam: urn:xmpp:mam:2); a host
    // without the account fold answers -2 and adds nothing.
    if (host().supports(PARLEY_HOST_ENTRY_END(run_fold)))
      host().api()->run_fold(host().handle(), PARLEY_EVENT_ACCOUNT_DISCO_INFO, query.raw(), request.session());
    host().route(std::move(reply));
  }

  // XEP-0030 section 4.1: the server answers for an account. Its owner sees
  // its own connected resources. Anyone else gets an empty result set, and so
  // does a request for an account that does not exist (the router lets that
  // one through to here): section 7 wants the two to look alike, and the only
  // items, resources, are not for those who do not receive the presence.
  void on_account_items(const parley::IqRequest& request) {
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef query = reply.add_child("query", ns_items);
    if (is_owner(request)) {
      if (has_node(request)) return host().bounce(request.iq(), "item-not-found");
      for (const auto& session : host().user_sessions(parley::bare_jid(request.to())))
        query.add_child("item", ns_items).set_attr("jid", session.full_jid);
    } else if (auto node = request.payload()->attr("node")) {
      query.set_attr("node", *node);  // mirrored, as for any node (section 4.2)
    }
    // Modules add the account's other items (mod_pep: its nodes, to whom
    // their access models admit); one whose items are on another loop takes
    // the reply and answers later (HANDLED). The fold reads the account from
    // the reply's 'from' (absent when the owner asked without a 'to').
    if (!reply.attr("from")) reply.set_attr("from", parley::bare_jid(request.to()));
    if (!has_node(request) && host().supports(PARLEY_HOST_ENTRY_END(run_fold)) &&
        host().api()->run_fold(host().handle(), PARLEY_EVENT_ACCOUNT_DISCO_ITEMS, reply.raw(), request.session()) ==
            PARLEY_HANDLED)
      return;
    host().route(std::move(reply));
  }

 private:
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
              parley::disco_feature(ns_info), parley::disco_feature(ns_items))
