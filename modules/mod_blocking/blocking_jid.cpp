#include "blocking_jid.hpp"

#include <unordered_set>

namespace mod_blocking {

std::vector<std::string> match_forms(const parley::Jid& address) {
  std::vector<std::string> forms;
  const std::string& domain = address.domain();
  if (address.has_local() && address.has_resource()) forms.push_back(address.full());
  if (address.has_local()) forms.push_back(address.bare_str());
  if (address.has_resource()) forms.push_back(domain + "/" + address.resource());
  forms.push_back(domain);
  const bool ip_literal =
      !domain.empty() && (domain.front() == '[' || domain.find_first_not_of("0123456789.") == std::string::npos);
  if (!ip_literal) {
    for (std::size_t dot = domain.find('.'); dot != std::string::npos; dot = domain.find('.', dot + 1))
      forms.push_back(domain.substr(dot + 1));
  }
  return forms;
}

bool item_blocks(std::string_view item, const parley::Jid& address) {
  for (const std::string& form : match_forms(address))
    if (form == item) return true;
  return false;
}

std::vector<std::string> unavailable_targets(const std::vector<std::string>& added,
                                             const std::vector<std::string>& subscribed) {
  const std::unordered_set<std::string> contacts(subscribed.begin(), subscribed.end());
  std::unordered_set<std::string> seen;
  std::vector<std::string> out;
  auto take = [&](const std::string& address) {
    if (seen.insert(address).second) out.push_back(address);
  };
  for (const std::string& item : added) {
    const parley::Jid jid = parley::Jid::prepared(item);
    if (jid.has_local()) {
      if (contacts.count(jid.bare_str()) != 0) take(item);
      continue;
    }
    for (const std::string& contact : subscribed)
      if (item_blocks(item, parley::Jid::prepared(contact))) take(contact);
  }
  return out;
}

}  // namespace mod_blocking
