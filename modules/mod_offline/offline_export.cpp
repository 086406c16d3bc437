// mod_offline/offline_export.cpp - see offline_export.hpp.
#include "offline_export.hpp"

#include "offline_rules.hpp"

namespace parley::offline {

Result<std::vector<ImportedMessage>, std::string> import_messages(const Host& host, ElementView list,
                                                                  std::string_view domain,
                                                                  const std::string& now_stamp) {
  std::vector<ImportedMessage> out;
  for (ElementView child : list.children()) {
    if (child.name() != "message" || child.xmlns() != "jabber:client")
      return unexpected(std::string("<offline-messages/> holds <message xmlns='jabber:client'/> elements only"));
    ImportedMessage m;
    Element copy = child.clone();
    auto delay = copy.child("delay", ns_delay);
    std::string stamp = delay ? std::string(delay->attr("stamp").value_or("")) : std::string();
    if (!delay) {
      copy.add_child("delay", ns_delay).set_attr("from", domain).set_attr("stamp", now_stamp).add_text("Offline Storage");
    }
    m.stamp = stamp.empty() ? now_stamp : stamp;
    // Prepared as the server stamps it (the file's may not be).
    auto from = Jid::parse(host, child.attr("from").value_or(""));
    m.sender = from ? from->bare_str() : std::string();
    m.xml = copy.serialize();
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace parley::offline
