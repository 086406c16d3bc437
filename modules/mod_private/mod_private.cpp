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
//
// Option:
//   max_bytes_per_user  bytes of private XML one account may store, over all
//                       its namespaces (default 1048576), as serialized. A set
//                       that would take the account over is refused with
//                       <not-acceptable/> and a text, and stores nothing:
//                       not-acceptable (type modify) says this request will
//                       not be accepted as it is, as XEP-0060 answers a
//                       payload over its limit; resource-constraint (type
//                       wait) would have the client retry a quota that does
//                       not free itself. See docs/modules/mod_private.md.
#include <cstdint>
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
  parley::Result<void, std::string> start() override {
    max_bytes_ = host().option_int("max_bytes_per_user").value_or(1024 * 1024);
    if (max_bytes_ < 1024) return parley::unexpected(std::string("max_bytes_per_user must be at least 1024"));
    return {};
  }

  void on_private(const parley::IqRequest& request) {
    auto query = request.payload();
    if (!query || query->name() != "query") return host().bounce(request.iq(), "bad-request");
    if (parley::bare_jid(request.from()) != request.to())
      return host().bounce(request.iq(), "forbidden", "private data belongs to its owner only");
    std::string user = parley::Jid::prepared(request.to()).local();  // prepared by the server
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
  int64_t max_bytes_ = 1024 * 1024;

  // Every write answers here; the iq is answered once, after the last one.
  struct PendingSet {
    explicit PendingSet(parley::Element iq_) : iq(std::move(iq_)) {}
    parley::Element iq;
    std::size_t outstanding = 0;
    std::string error;
    bool over_quota = false;
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
    auto blobs = std::make_shared<std::vector<std::pair<std::string, std::string>>>();  // (ns, xml)
    int64_t incoming = 0;
    for (auto& [ns, holder] : groups) {
      blobs->emplace_back(ns, holder.serialize());
      incoming += static_cast<int64_t>(blobs->back().second.size());
    }
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    if (incoming > max_bytes_) return refuse_over_quota(*iq);
    // What the account keeps in the namespaces this set does not replace.
    host().query("SELECT ns, LENGTH(CAST(xml AS BLOB)) FROM mod_private_items WHERE host = ? AND user = ?",
                 {host().module_host(), user},
                 [this, iq, blobs, user, incoming](parley::Result<parley::Rows, std::string> rows) {
                   if (!rows) {
                     host().error("reading private data sizes failed: " + rows.error());
                     return host().bounce(*iq, "internal-server-error");
                   }
                   int64_t kept = 0;
                   for (std::size_t r = 0; r < rows->size(); ++r) {
                     const std::string_view ns = rows->at(r, 0).bytes().value_or("");
                     bool replaced = false;
                     for (const auto& b : *blobs) replaced = replaced || b.first == ns;
                     if (!replaced) kept += rows->at(r, 1).integer().value_or(0);
                   }
                   if (kept + incoming > max_bytes_) return refuse_over_quota(*iq);
                   write(iq, blobs, user);
                 });
  }

  void refuse_over_quota(const parley::Element& iq) {
    host().bounce(iq, "not-acceptable",
                  "private storage is limited to " + std::to_string(max_bytes_) + " bytes per account");
  }

  void write(std::shared_ptr<parley::Element> iq,
             std::shared_ptr<std::vector<std::pair<std::string, std::string>>> blobs, const std::string& user) {
    auto pending = std::make_shared<PendingSet>(iq->clone());
    pending->outstanding = blobs->size();
    const std::string domain = host().module_host();
    // The single writer runs these in order; the answer waits for all of
    // them. Each write checks the quota again itself, so that two sets of
    // one account racing each other cannot both pass the check above and
    // together go over (a set refused that way may have stored its first
    // namespaces: it is answered not-acceptable all the same).
    for (auto& [ns, xml] : *blobs) {
      host().execute(
          "INSERT OR REPLACE INTO mod_private_items (host, user, ns, xml) SELECT ?1, ?2, ?3, ?4 "
          "WHERE (SELECT COALESCE(SUM(LENGTH(CAST(xml AS BLOB))), 0) FROM mod_private_items "
          "WHERE host = ?1 AND user = ?2 AND ns <> ?3) + LENGTH(CAST(?4 AS BLOB)) <= ?5",
          {domain, user, ns, xml, max_bytes_},
          [this, pending](parley::Result<parley::Rows, std::string> rows) {
            if (!rows && pending->error.empty()) pending->error = rows.error();
            if (rows && rows->changes() == 0) pending->over_quota = true;
            if (--pending->outstanding > 0) return;
            if (!pending->error.empty()) {
              host().error("storing private data failed: " + pending->error);
              return host().bounce(pending->iq, "internal-server-error");
            }
            if (pending->over_quota) return refuse_over_quota(pending->iq);
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
              parley::option("max_bytes_per_user", PARLEY_OPT_INT),
              parley::disco_feature(ns_private),
              parley::schema("CREATE TABLE mod_private_items (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "ns TEXT NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (host, user, ns))"))
