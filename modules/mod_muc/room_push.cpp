#include "room_push.hpp"

#include <set>

namespace muc {

namespace {
constexpr const char* ns_wake = "urn:parley:wake:0";  // module.h: PARLEY_EVENT_WAKE_UP
}

void wake_absent_members(const Service& service, const std::map<std::string, Affiliation>& affiliations,
                         const std::map<std::string, Occupant>& occupants, const parley::Element& message) {
  if (!service.host || !message.child("body")) return;
  std::set<std::string> present;
  for (const auto& [real, o] : occupants) present.insert(o.bare);
  std::optional<parley::Element> wake;
  for (const auto& [bare, affiliation] : affiliations) {
    if (affiliation < Affiliation::member || present.count(bare)) continue;
    if (!wake) {
      wake = service.host->element("wake", ns_wake);
      wake->set_attr("reason", "groupchat");
    }
    wake->add_child("user", ns_wake).set_attr("jid", bare);
  }
  if (!wake) return;
  parley::Element copy = message.clone();
  copy.remove_attr("to");
  wake->add_child(std::move(copy));
  service.host->run_fold(PARLEY_EVENT_WAKE_UP, *wake);
}

}  // namespace muc
