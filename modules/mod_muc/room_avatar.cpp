// mod_muc: a room's avatar (XEP-0486): an owner sets the room's vCard-temp
// (XEP-0054) with an iq set to the room JID (an empty vCard removes it);
// anyone reads it with an iq get; the room's disco#info lists `vcard-temp`
// and the SHA-1 of each PHOTO (muc#roominfo_avatarhash); a change is a
// configuration change (104). Kept with the configuration (persistent rooms
// store it).
#include "room.hpp"

namespace muc {

namespace {
constexpr const char* ns_vcard = "vcard-temp";
}  // namespace

void Room::vcard_iq(parley::ElementView iq, const std::string& from) {
  auto vcard = iq.child("vCard", ns_vcard);
  if (!vcard) return error(iq, "bad-request", "modify");
  if (iq.attr("type") == "get") {
    parley::Element result = parley::make_iq_result(iq);
    std::optional<parley::Element> stored;
    if (!config_.vcard.empty()) stored = service_.host->parse(config_.vcard);
    if (stored) result.add_child(std::move(*stored));
    else result.add_child("vCard", ns_vcard);
    return route(std::move(result));
  }
  if (affiliation_of(std::string(parley::bare_jid(from))) != Affiliation::owner)
    return error(iq, "forbidden", "auth", "only owners set the room's avatar");
  // A photo whose BINVAL is not base64 would advertise no hash: refused.
  for (auto photo : vcard->children())
    if (photo.name() == "PHOTO" && !base64_decode(photo.child_text("BINVAL", ns_vcard)))
      return error(iq, "bad-request", "modify", "a PHOTO's BINVAL is not base64");
  std::string xml = vcard->first_child() ? vcard->clone().serialize() : std::string();
  if (xml.size() > service_.max_vcard_bytes) return error(iq, "not-acceptable", "modify", "the vCard is too large");
  const bool changed = xml != config_.vcard;
  config_.vcard = std::move(xml);
  route(parley::make_iq_result(iq));
  if (!changed) return;
  persist();
  if (!locked_) status_message({104});
}

std::vector<std::string> Room::avatar_hashes() const {
  std::vector<std::string> out;
  if (config_.vcard.empty()) return out;
  auto vcard = service_.host->parse(config_.vcard);
  if (!vcard) return out;
  for (auto photo : vcard->children()) {
    if (photo.name() != "PHOTO" || photo.xmlns() != ns_vcard) continue;
    auto bytes = base64_decode(photo.child_text("BINVAL", ns_vcard));
    if (bytes && !bytes->empty()) out.push_back(sha1_hex(*bytes));
  }
  return out;
}

}  // namespace muc
