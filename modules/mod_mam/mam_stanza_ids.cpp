#include "mam_stanza_ids.hpp"

#include <memory>
#include <optional>

#include "mam_logic.hpp"

namespace parley::mod_mam {

namespace {

constexpr const char* ns_sid_c = "urn:xmpp:sid:0";
constexpr const char* ns_client_c = "jabber:client";

// The archived copy and the message routed again: the same sender, id and body (what a
// client keys a message on; the routed copy may have gained a <delay/> and the id).
bool same_message(ElementView stored, ElementView routed) {
  auto body = [](ElementView m) {
    auto b = m.child("body", ns_client_c);
    return b ? std::optional<std::string>(b->text()) : std::nullopt;
  };
  return stored.attr("from") == routed.attr("from") && stored.attr("id") == routed.attr("id") &&
         body(stored) == body(routed);
}

}  // namespace

void StanzaIds::start(Host& host, const ArchiveIds& ids) {
  host_ = &host;
  ids_ = &ids;
  domain_ = host.module_host();
  const size_t loops = loop_count(host);
  trusted_.assign(loops, {});
  sent_id_on_.assign(loops, 0);
}

void StanzaIds::strip_forged(ElementRef message, const std::string& recipient) const {
  auto forged = [&](auto child) {
    if (child.name() != "stanza-id" || child.xmlns() != ns_sid_c) return false;
    const std::string_view by = child.attr("by").value_or("");
    if (by == recipient) return true;
    auto jid = Jid::parse(*host_, by);
    if (!jid) return false;  // names nobody: no archive of ours either
    if (jid->bare_str() == recipient) return true;
    return jid->is_bare() && !jid->local().empty() && jid->domain() == domain_;  // an account here
  };
  bool any = false;
  for (auto child : message.children())
    if (forged(child)) any = true;
  if (!any) return;
  std::vector<Element> keep;
  for (auto child : message.children())
    if (child.name() == "stanza-id" && child.xmlns() == ns_sid_c && !forged(child)) keep.push_back(child.clone());
  message.remove_children("stanza-id", ns_sid_c);
  for (auto& k : keep) message.add_child(std::move(k));
}

void StanzaIds::strip_own(ElementRef message, const std::string& owner) {
  std::vector<Element> keep;
  for (auto child : message.children())
    if (child.name() == "stanza-id" && child.xmlns() == ns_sid_c && child.attr("by").value_or("") != owner)
      keep.push_back(child.clone());
  message.remove_children("stanza-id", ns_sid_c);
  for (auto& k : keep) message.add_child(std::move(k));
}

StanzaIds::Claim StanzaIds::check(const std::string& owner, ElementRef message) {
  std::string claimed;
  for (auto child : message.children())
    if (child.name() == "stanza-id" && child.xmlns() == ns_sid_c && child.attr("by").value_or("") == owner)
      claimed = std::string(child.attr("id").value_or(""));
  if (take_trusted(owner, claimed)) return Claim::ours;
  // Believed if the archive holds that id for the same message: a store query, then the
  // message is routed again, trusted or without the claim. Rare: only messages routed a
  // second time, and forgeries. A claim that is no id of this archive needs no query.
  auto id = ids_->decode(claimed);
  if (!id) {
    strip_own(message, owner);
    return Claim::forged;
  }
  ArchiveQuery q;
  q.owner = owner;
  q.by_ids = true;
  q.ids = {*id};
  q.max = 1;
  auto held = std::make_shared<Element>(message.clone());
  const bool asked = host_->archive_query(q, [this, owner, claimed, held](Result<ArchivePage, std::string> r) {
    bool ours = false;
    if (r && r->size() == 1)
      if (auto stored = host_->parse(r->at(0).payload)) ours = same_message(*stored, *held);
    if (ours) trust(owner, claimed);
    else strip_own(*held, owner);
    host_->route(std::move(*held));
  });
  if (asked) return Claim::checking;
  strip_own(message, owner);
  return Claim::forged;
}

int32_t StanzaIds::loop_here() const { return current_loop(*host_); }

std::unordered_set<std::string>* StanzaIds::trusted_here() {
  const int32_t loop = loop_here();
  if (loop < 0 || static_cast<size_t>(loop) >= trusted_.size()) return nullptr;
  return &trusted_[static_cast<size_t>(loop)];
}

void StanzaIds::trust(const std::string& owner, const std::string& id) {
  // Bounded: a message that never comes back (dropped on the way) is forgotten.
  auto* set = trusted_here();
  if (!set) return;
  if (set->size() >= 4096) set->clear();
  set->insert(owner + "\n" + id);
}

bool StanzaIds::take_trusted(const std::string& owner, const std::string& id) {
  auto* set = trusted_here();
  return set && set->erase(owner + "\n" + id) > 0;
}

void StanzaIds::mark_sent_id() {
  const int32_t loop = loop_here();
  if (loop >= 0 && static_cast<size_t>(loop) < sent_id_on_.size()) sent_id_on_[static_cast<size_t>(loop)] = 1;
}

bool StanzaIds::take_sent_id() {
  const int32_t loop = loop_here();
  if (loop < 0 || static_cast<size_t>(loop) >= sent_id_on_.size() || !sent_id_on_[static_cast<size_t>(loop)])
    return false;
  sent_id_on_[static_cast<size_t>(loop)] = 0;
  return true;
}

}  // namespace parley::mod_mam
