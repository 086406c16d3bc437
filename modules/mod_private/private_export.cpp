// mod_private/private_export.cpp - see private_export.hpp.
#include "private_export.hpp"

namespace mod_private {

parley::Result<std::vector<std::pair<std::string, std::string>>, std::string> group_private(
    const parley::Host& host, parley::ElementView query) {
  std::vector<std::pair<std::string, parley::Element>> groups;
  for (parley::ElementView child : query.children()) {
    std::string ns(child.xmlns());
    if (ns.empty() || ns == ns_private || ns == "jabber:client" || ns == "jabber:server")
      return parley::unexpected("private data needs a namespace of its own (not '" + ns + "')");
    auto it = groups.begin();
    while (it != groups.end() && it->first != ns) ++it;
    if (it == groups.end()) {
      groups.emplace_back(ns, host.element("query", ns_private));
      it = groups.end() - 1;
    }
    it->second.add_child(child.clone());
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [ns, holder] : groups) out.emplace_back(ns, holder.serialize());
  return out;
}

void export_private(const parley::Host& host, const parley::AccountData& data, const std::string& user) {
  bool sent = parley::keyval_list(host, user, [&host, data](auto r) {
    if (!r) return data.fail("reading the private XML failed: " + r.error());
    if (r->empty()) return data.done();
    parley::Element all = host.element("query", ns_private);
    std::size_t namespaces = 0;
    for (const auto& [ns, xml] : *r) {
      auto stored = host.parse(xml);
      if (!stored) return data.fail("the stored private XML of '" + ns + "' does not parse");
      for (parley::ElementRef item : stored->children()) all.add_child(item.clone());
      ++namespaces;
    }
    data.add(all);
    data.done(std::to_string(namespaces) + " private XML namespace" + (namespaces == 1 ? "" : "s"));
  });
  if (!sent) data.fail("the keyval store refused the read");
}

void import_private(const parley::Host& host, const parley::AccountData& data, const std::string& user,
                    const std::vector<std::pair<std::string, std::string>>& groups, uint64_t max_bytes) {
  std::vector<parley::KeyvalItem> items;
  for (const auto& [ns, xml] : groups) items.push_back(parley::KeyvalItem{ns, xml});
  size_t count = groups.size();
  bool sent = host.keyval_put(user, items, max_bytes, 0,
                              [data, count, max_bytes](parley::Result<parley::KeyvalResult, std::string> r) {
                                if (!r && r.error() == "policy-violation")
                                  return data.fail("the private XML exceeds max_bytes_per_user (" +
                                                   std::to_string(max_bytes) + ")");
                                if (!r) return data.fail("storing the private XML failed: " + r.error());
                                data.done(std::to_string(count) + " private XML namespace" + (count == 1 ? "" : "s"));
                              });
  if (!sent) data.fail("the keyval store refused the write");
}

}  // namespace mod_private
