#include "blocking_jid.hpp"

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

}  // namespace mod_blocking
