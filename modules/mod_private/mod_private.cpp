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
//
// The data is in the keyval store (issue 11: user = the localpart, key = the namespace,
// value = a serialized <query xmlns='jabber:iq:private'/> holding the elements), the
// quota checked by the store with the write.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "private_export.hpp"

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
    if (!host().supports_keyval()) return parley::unexpected(std::string("this server has no keyval store"));
    // The data of a server that kept it in this module's own table (before the keyval
    // store): moved over once, the table dropped once empty; requests wait for it.
    move_.start(host(), {parley::OldTables::Move{"mod_private_items",
                                                 "SELECT user, ns, xml FROM mod_private_items WHERE host = ?1",
                                                 "DELETE FROM mod_private_items WHERE host = ?1"}});
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

  // XEP-0227 (private_export.cpp): every namespace stored goes out in one
  // <query xmlns='jabber:iq:private'/>; the file's comes in.
  void on_account_export(const parley::Event& event) {
    parley::AccountData data(host(), event);
    if (!data.held()) return;
    std::string user(event.user());
    move_.when_ready(host(), [this, data, user] { mod_private::export_private(host(), data, user); });
  }

  void on_account_import(const parley::Event& event) {
    auto user_el = event.acc();
    auto query = user_el ? user_el->child("query", ns_private) : std::nullopt;
    if (!query || query->child_count() == 0) return;
    parley::AccountData data(host(), event);
    if (!data.held()) return;
    auto groups = mod_private::group_private(host(), *query);
    if (!groups) return data.fail(groups.error());
    std::string user(event.user());
    move_.when_ready(host(), [this, data, user, groups = std::move(*groups)] {
      mod_private::import_private(host(), data, user, groups, static_cast<uint64_t>(max_bytes_));
    });
  }

  // An account removed and later created again must not inherit the old data.
  void on_user_removed(const parley::Event& event) {
    std::string user(event.user());
    move_.when_ready(host(), [this, user] {
      host().keyval_remove_user(user, [this, user](parley::Result<parley::KeyvalResult, std::string> r) {
        if (!r) host().error("removing the private data of " + user + " failed: " + r.error());
      });
    });
  }

 private:
  int64_t max_bytes_ = 1024 * 1024;

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
    move_.when_ready(host(), [this, iq, blobs, user] { write(iq, blobs, user); });
  }

  void refuse_over_quota(const parley::Element& iq) {
    host().bounce(iq, "not-acceptable",
                  "private storage is limited to " + std::to_string(max_bytes_) + " bytes per account");
  }

  void write(std::shared_ptr<parley::Element> iq,
             std::shared_ptr<std::vector<std::pair<std::string, std::string>>> blobs, const std::string& user) {
    // One put of every namespace of the set, with the quota: the store checks it with the
    // write, atomically, so a refused set stores nothing and two sets of one account
    // racing each other cannot both pass it.
    std::vector<parley::KeyvalItem> items;
    for (const auto& [ns, xml] : *blobs) items.push_back(parley::KeyvalItem{ns, xml});
    bool sent = host().keyval_put(user, items, static_cast<uint64_t>(max_bytes_), 0,
                                  [this, iq](parley::Result<parley::KeyvalResult, std::string> r) {
                                    if (!r && r.error() == "policy-violation") return refuse_over_quota(*iq);
                                    if (!r) {
                                      host().error("storing private data failed: " + r.error());
                                      return host().bounce(*iq, "internal-server-error");
                                    }
                                    host().route(parley::make_iq_result(*iq));
                                  });
    if (!sent) host().bounce(*iq, "internal-server-error");
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
    move_.when_ready(host(), [this, iq, asked, user, ns] { read(iq, asked, user, ns); });
  }

  void read(std::shared_ptr<parley::Element> iq, std::shared_ptr<parley::Element> asked, const std::string& user,
            const std::string& ns) {
    bool sent = host().keyval_get(user, ns, [this, iq, asked](parley::Result<parley::KeyvalResult, std::string> r) {
      if (!r) {
        host().error("reading private data failed: " + r.error());
        return host().bounce(*iq, "internal-server-error");
      }
      parley::Element reply = parley::make_iq_result(*iq);
      parley::ElementRef answer = reply.add_child("query", ns_private);
      std::optional<parley::Element> stored;
      if (r->found()) {
        stored = host().parse(r->value());
        if (!stored) host().error("stored private data does not parse; answering as if there were none");
      }
      if (stored && stored->child_count() > 0) {
        for (parley::ElementRef item : stored->children()) answer.add_child(item.clone());
      } else {
        answer.add_child(asked->clone());
      }
      host().route(std::move(reply));
    });
    if (!sent) host().bounce(*iq, "internal-server-error");
  }

  parley::OldTables move_;
};

}  // namespace

PARLEY_MODULE(ModPrivate, "mod_private", "1.0.0",
              parley::iq_handler<&ModPrivate::on_private>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_private),
              parley::hook<&ModPrivate::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModPrivate::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
              parley::hook<&ModPrivate::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
              parley::option("max_bytes_per_user", PARLEY_OPT_INT),
              parley::disco_feature(ns_private),
              // The data before the keyval store: kept so that a server that has rows in
              // it gets them moved (OldTables in start()), then dropped.
              parley::schema("CREATE TABLE mod_private_items (host TEXT NOT NULL, user TEXT NOT NULL, "
                             "ns TEXT NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (host, user, ns))"))
