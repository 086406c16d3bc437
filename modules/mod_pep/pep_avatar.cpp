// mod_pep: the avatar's hash in the account's presence (XEP-0153's
// <x xmlns='vcard-temp:x:update'><photo>SHA-1</photo></x>), from a XEP-0084
// avatar published through PEP or, without one, from the vCard's PHOTO
// (XEP-0054, as mod_vcard answers it), as ejabberd's mod_vcard_xupdate and
// Prosody's mod_vcard_legacy add it.
//
// The hash lives in each session's slot, on its loop. At bind the session's
// input is held until the hash is known (the account's metadata node on its
// owner loop, else its vCard asked with send_iq), so its first presence
// carries it; later changes (a metadata publish, the client's vCard set)
// reach each of the account's sessions (on their loops, before the answer to
// the change where the session is on the changing loop) and the next presence
// carries them (the server does not send presence again, XEP-0398 §5). An available presence the client sends (broadcast or directed) gets
// the element if it has none, or the <photo/> if its element has none; a
// client's own <photo/> is left as it is.
//
// XEP-0398 §3.1 (PEP to vCard): a metadata publish also writes the image of
// its <info/> (the one without a 'url', found in the data node under its id,
// its SHA-1 checked) into the vCard's PHOTO, by a get and a set the module
// sends on the account's behalf (mod_vcard stores it as from its owner; a
// disabled avatar removes the PHOTO). The other way (§3.2, a MAY) is not done.
#include "mod_pep.hpp"

namespace parley::mod_pep {

namespace {
constexpr const char* ns_avatar_metadata = "urn:xmpp:avatar:metadata";
constexpr const char* ns_avatar_data = "urn:xmpp:avatar:data";
constexpr const char* ns_vcard = "vcard-temp";
constexpr const char* ns_vcard_update = "vcard-temp:x:update";
// How long a bind waits for the vCard's answer (then: no hash, unknown).
constexpr std::chrono::milliseconds kVcardTimeout{5000};
}  // namespace

// XEP-0084 §4.2: the first <info/>'s id is the image's SHA-1 (hex), the
// hash XEP-0153 puts in presence; an empty <metadata/> disables the avatar.
std::string ModPep::metadata_hash(parley::ElementView metadata) {
  auto info = metadata.child("info", ns_avatar_metadata);
  return info ? std::string(info->attr("id").value_or("")) : std::string();
}

// XEP-0153 §4.1: the SHA-1 (hex) of the PHOTO's decoded BINVAL; empty
// without a photo (or an undecodable one).
std::string ModPep::vcard_hash(parley::ElementView vcard) {
  auto photo = vcard.child("PHOTO", ns_vcard);
  auto binval = photo ? photo->child("BINVAL", ns_vcard) : std::nullopt;
  if (!binval) return {};
  auto data = base64_decode(binval->text());
  if (!data || data->empty()) return {};
  return hex(sha1(*data));
}

void ModPep::on_session_bound(const parley::Event& event) {
  if (!avatar_presence_ || event.user().empty() || event.host() != host().module_host()) return;
  const parley_session_id session = event.session();
  const std::string bare = event.user_bare();
  auto* caps = host().session_slot<SessionCaps>(session);
  if (!caps) caps = host().set_session_slot(session, std::make_unique<SessionCaps>());
  if (!caps) return;
  // The session's stanzas wait for the hash (its first presence carries it).
  const bool held = host().hold_session(session);
  auto settle = [this, session, held](std::optional<std::string> hash, bool pep) {
    parley::post_to_session(host(), session, [this, session, held, hash, pep] {
      if (auto* c = host().session_slot<SessionCaps>(session); c && hash && !c->photo) {
        c->photo = hash;
        c->photo_pep = pep;
      }
      if (held) host().release_session(session);
    });
  };
  with_user(bare, [this, bare, settle](UserPep* u) {
    if (u) {
      auto it = u->nodes.find(ns_avatar_metadata);
      if (it != u->nodes.end() && !it->second.items.empty()) {
        auto metadata = host().parse(it->second.items.back().payload);
        return settle(metadata ? metadata_hash(*metadata) : std::string(), true);
      }
    }
    // No PEP avatar: the vCard's photo, as mod_vcard answers anyone.
    parley::Element iq = host().element("iq", "jabber:client");
    iq.set_attr("type", "get").set_attr("from", host().module_host()).set_attr("to", bare);
    iq.add_child("vCard", ns_vcard);
    const bool sent = parley::send_iq(host(), std::move(iq), kVcardTimeout,
                                      [this, settle](std::optional<parley::ElementView> answer) {
                                        if (!answer) return settle(std::nullopt, false);  // no answer: unknown
                                        auto vcard = answer->attr("type").value_or("") == "result"
                                                         ? answer->child("vCard", ns_vcard)
                                                         : std::nullopt;
                                        settle(vcard ? vcard_hash(*vcard) : std::string(), false);
                                      });
    if (!sent) settle(std::nullopt, false);
  });
}

void ModPep::avatar_changed(const std::string& bare, const std::string& hash, bool pep) {
  if (!avatar_presence_) return;
  host().counter_add("avatar_changes");
  auto apply = [hash, pep](SessionCaps* c) {
    if (!c || (!pep && c->photo_pep)) return;
    c->photo = hash;
    c->photo_pep = pep;
  };
  for (const auto& s : host().user_sessions(bare)) {
    // A session of this loop at once (before the answer to the change is
    // written); another loop's after the tasks posted there before.
    if (auto* here = host().session_slot<SessionCaps>(s.id)) {
      apply(here);
      continue;
    }
    parley::post_to_session(host(), s.id,
                            [this, session = s.id, apply] { apply(host().session_slot<SessionCaps>(session)); });
  }
}

// The metadata node's newest item (none: the avatar is gone, "").
void ModPep::avatar_from_node(const std::string& bare, const UserPep& u) {
  std::string hash, type, data;
  auto it = u.nodes.find(ns_avatar_metadata);
  const bool published = it != u.nodes.end() && !it->second.items.empty();
  if (published)
    if (auto metadata = host().parse(it->second.items.back().payload)) {
      hash = metadata_hash(*metadata);
      // XEP-0398 §3.1: the <info/> without a 'url' points into the data node.
      for (auto info : metadata->children()) {
        if (info.name() != "info" || info.attr("url")) continue;
        const std::string id(info.attr("id").value_or(""));
        auto d = u.nodes.find(ns_avatar_data);
        if (d == u.nodes.end()) break;
        for (const Item& item : d->second.items) {
          if (item.id != id) continue;
          auto payload = host().parse(item.payload);
          auto bytes = payload ? base64_decode(payload->text()) : std::nullopt;
          if (bytes && hex(sha1(*bytes)) == id) {  // §3.1: SHOULD verify the hash
            type = std::string(info.attr("type").value_or(""));
            data = base64(*bytes);
          }
        }
        break;
      }
    }
  // Without a published avatar a vCard's photo may come back (at the next bind).
  avatar_changed(bare, hash, published);
  // An avatar whose image is not in the data node (yet) leaves the vCard as it is.
  if (avatar_presence_ && (!data.empty() || hash.empty())) avatar_to_vcard(bare, type, data);
}

// The account's vCard with `base64_data` as its PHOTO (none: without a
// PHOTO): read, changed and stored with two iqs from the account to itself
// (mod_vcard stores them as from its owner). Unchanged: not stored again.
void ModPep::avatar_to_vcard(const std::string& bare, const std::string& type, const std::string& base64_data) {
  parley::Element get = host().element("iq", "jabber:client");
  get.set_attr("type", "get").set_attr("from", bare).set_attr("to", bare);
  get.add_child("vCard", ns_vcard);
  parley::send_iq(host(), std::move(get), kVcardTimeout,
                  [this, bare, type, base64_data](std::optional<parley::ElementView> answer) {
                    if (!answer || answer->attr("type").value_or("") != "result") {
                      host().error("reading the vCard of " + bare + " for its avatar failed");
                      return;
                    }
                    auto old = answer->child("vCard", ns_vcard);
                    const std::string want =
                        base64_data.empty() ? std::string() : hex(sha1(base64_decode(base64_data).value_or("")));
                    if ((old ? vcard_hash(*old) : std::string()) == want) return;
                    parley::Element set = host().element("iq", "jabber:client");
                    set.set_attr("type", "set").set_attr("from", bare).set_attr("to", bare);
                    auto vcard = set.add_child("vCard", ns_vcard);
                    if (old)
                      for (auto child : old->children())
                        if (!(child.name() == "PHOTO" && child.xmlns() == ns_vcard))
                          vcard.add_child(child.clone());
                    if (!base64_data.empty()) {
                      auto photo = vcard.add_child("PHOTO", ns_vcard);
                      if (!type.empty()) photo.add_child("TYPE", ns_vcard).add_text(type);
                      photo.add_child("BINVAL", ns_vcard).add_text(base64_data);
                    }
                    parley::send_iq(host(), std::move(set), kVcardTimeout,
                                    [this, bare](std::optional<parley::ElementView> stored) {
                                      if (!stored || stored->attr("type").value_or("") != "result")
                                        host().error("storing the avatar of " + bare + " in its vCard failed");
                                      else
                                        host().counter_add("avatars_to_vcard");
                                    });
                  });
}

// The client's own vCard set (to no one or its bare JID): its photo's hash,
// unless the account has a PEP avatar (which wins, as at bind). The sending
// session has it at once (its next presence, after the set's answer, carries
// it); the account's other sessions get it posted.
void ModPep::vcard_set(const parley::Event& event, parley::ElementView iq) {
  if (!avatar_presence_ || iq.attr("type").value_or("") != "set") return;
  auto vcard = iq.child("vCard", ns_vcard);
  if (!vcard) return;
  const std::string bare = event.user_bare();
  if (auto to = iq.attr("to"); to && !to->empty() && parley::bare_jid(*to) != bare) return;
  const std::string hash = vcard_hash(*vcard);
  if (auto* c = host().session_slot<SessionCaps>(event.session()); c && !c->photo_pep) c->photo = hash;
  with_user(bare, [this, bare, hash](UserPep* u) {
    if (u) {
      auto it = u->nodes.find(ns_avatar_metadata);
      if (it != u->nodes.end() && !it->second.items.empty()) return;
    }
    avatar_changed(bare, hash, false);
  });
}

// An available presence from the client: the hash added where it has none.
void ModPep::add_photo(parley_session_id session, parley::ElementRef presence) {
  auto* caps = host().session_slot<SessionCaps>(session);
  if (!caps || !caps->photo) return;
  auto x = presence.child("x", ns_vcard_update);
  if (!x) x = presence.add_child("x", ns_vcard_update);
  if (x->child("photo", ns_vcard_update)) return;
  auto photo = x->add_child("photo", ns_vcard_update);
  if (!caps->photo->empty()) photo.add_text(*caps->photo);
}

}  // namespace parley::mod_pep
