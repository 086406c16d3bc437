// mod_private: XEP-0049 Private XML Storage (jabber:iq:private).
//
//   set <query><x xmlns='A'/><y xmlns='B'/></query>  stores, per namespace, the children
//                                                    in it (replacing what was stored)
//   get <query><x xmlns='A'/></query>                the stored elements in A, or <x/> as sent
//
// Only for the user's own account: to anybody else it is forbidden (the
// condition XEP-0049 prefers). A child in no namespace of its own (it then
// inherits jabber:iq:private) or in jabber:client / jabber:server is
// not-acceptable. A set may carry several elements of one namespace (the XEP
// allows it): they are stored together and come back together.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_private = "jabber:iq:private";

bool acceptable_namespace(std::string_view ns) {
  return !ns.empty() && ns != ns_private && ns != "jabber:client" && ns != "jabber:server";
}

class ModPrivate : public parley::Module {
 public:
  void on_private(const parley::IqRequest& request) {
    auto query = request.payload();
    if (!query || query->name() != "query") return host().bounce(request.iq(), "bad-request");
    if (parley::bare_jid(request.from()) != request.to())
      return host().bounce(request.iq(), "forbidden", "private data belongs to its owner only");
    std::string_view to = request.to();
    std::string user(to.substr(0, to.find('@')));
    if (request.type() == "set") return store(request, *query, user);
    load(request, *query, user);
  }

  // An account removed and later created again must not inherit the old data.
  void on_user_removed(const parley::Event& event) {
    std::string user(event.user());
    host().execute("DELETE FROM mod_private_items WHERE host = ? AND user = ?", {std::string(event.host()), user},
                   [this, user](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) host().error("removing the private data of " + user + " failed: " + rows.error());
                   });
  }

 private:
  // Every write answers here; the iq is answered once, after the last one.
  struct PendingSet {
    explicit PendingSet(parley::Element iq_) : iq(std::move(iq_)) {}
    parley::Element iq;
    std::size_t outstanding = 0;
    std::string error;
  };

  void store(const parley::IqRequest& request, parley::ElementView query, const std::string& user) {
    // Validate everything before writing anything: a refused set stores nothing.
    if (query.child_count() == 0)
      return host().bounce(request.iq(), "not-acceptable", "a set needs at least one child element");
    std::vector<std::pair<std::string, parley::Element>> groups;  // namespace -> <query/> holding its elements
    for (parley::ElementView child : query.children()) {
      std::string ns(child.xmlns());
      if (!acceptable_namespace(ns))
        return host().bounce(request.iq(), "not-acceptable",
                             "private data needs a namespace of its own (not '" + ns + "')");
      auto it = groups.begin();
      while (it != groups.end() && it->first != ns) ++it;
      if (it == groups.end()) {
        groups.emplace_back(ns, host().element("query", ns_private));
        it = groups.end() - 1;
      }
      it->second.add_child(child.clone());
    }
    auto pending = std::make_shared<PendingSet>(request.iq().clone());
    pending->outstanding = groups.size();
    const std::string domain = host().module_host();
    // The single writer runs these in order; the answer waits for all of them.
    for (auto& [ns, holder] : groups) {
      host().execute("INSERT OR REPLACE INTO mod_private_items (host, user, ns, xml) VALUES (?, ?, ?, ?)",
                     {domain, user, ns, holder.serialize()},
                     [this, pending](parley::Result<parley::Rows, std::string> rows) {
                       if (!rows && pending->error.empty()) pending->error = rows.error();
                       if (--pending->outstanding > 0) return;
                       if (!pending->error.empty()) {
                         host().error("storing private data failed: " + pending->error);
                         return host().bounce(pending->iq, "internal-server-error");
                       }
                       host().route(parley::make_iq_result(pending->iq));
                     });
    }
  }

  void load(const parley::IqRequest& request, parley::ElementView query, const std::string& user) {
    // XEP-0049: a get names exactly one namespace, by one (usually empty) child.
    if (query.child_count() != 1)
      return host().bounce(request.iq(), "bad-request", "a get names exactly one namespace");
    parley::ElementView wanted = query.child_at(0);
    std::string ns(wanted.xmlns());
    if (!acceptable_namespace(ns))
      return host().bounce(request.iq(), "not-acceptable",
                           "private data needs a namespace of its own (not '" + ns + "')");
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    auto asked = std::make_shared<parley::Element>(wanted.clone());
    host().query("SELECT xml FROM mod_private_items WHERE host = ? AND user = ? AND ns = ?",
                 {host().module_host(), user, ns},
                 [this, iq, asked](parley::Result<parley::Rows, std::string> rows) {
                   if (!rows) {
                     host().error("reading private data failed: " + rows.error());
                     return host().bounce(*iq, "internal-server-error");
                   }
                   parley::Element reply = parley::make_iq_result(*iq);
                   parley::ElementRef answer = reply.add_child("query", ns_private);
                   std::optional<parley::Element> stored;
                   if (rows->size() > 0) {
                     stored = host().parse(rows->at(0, 0).bytes().value_or(""));
                     if (!stored) host().error("stored private data does not parse; answering as if there were none");
                   }
                   if (stored && stored->child_count() > 0) {
                     for (parley::ElementRef item : stored->children()) answer.add_child(item.clone());
                   } else {
                     answer.add_child(std::move(*asked));
                   }
                   host().route(std::move(reply));
                 });
  }
};

}  // namespace

PARLEY_MODULE(ModPrivate, "mod_private", "1.0.0",
              parley::iq_handler<&ModPrivate::on_private>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_private),
              parley::hook<&ModPrivate::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::disco_feature(ns_private),
              parley::schema("CREATE TABLE mod_private_items (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "ns TEXT NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (host, user, ns))"))
