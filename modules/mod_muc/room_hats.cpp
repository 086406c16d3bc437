// mod_muc: hats (XEP-0317 0.2): admins and owners put a hat on an account
// (urn:xmpp:hats:commands:don) or take it off (…:doff) with ad-hoc commands
// (XEP-0050) on the room JID; the occupant's presence carries its hats.
#include <algorithm>
#include <utility>

#include "room.hpp"

namespace muc {

namespace {
constexpr const char* ns_commands = "http://jabber.org/protocol/commands";
constexpr const char* hats_form_type = "urn:xmpp:hats:commands";
constexpr const char* node_don = "urn:xmpp:hats:commands:don";
constexpr const char* node_doff = "urn:xmpp:hats:commands:doff";
constexpr std::size_t kMaxHatsPerAccount = 20;

parley::Element command_reply(parley::ElementView iq, std::string_view node, std::string_view status) {
  parley::Element result = parley::make_iq_result(iq);
  auto c = result.add_child("command", ns_commands);
  c.set_attr("node", node).set_attr("status", status);
  auto cmd = iq.child("command", ns_commands);
  c.set_attr("sessionid", cmd ? cmd->attr("sessionid").value_or("hats") : std::string_view("hats"));
  return result;
}
}  // namespace

void Room::add_hats(parley::ElementRef presence, const std::string& bare) const {
  auto it = config_.hats.find(bare);
  if (it == config_.hats.end() || it->second.empty()) return;
  auto hats = presence.add_child("hats", ns_hats);
  for (const Hat& h : it->second) hats.add_child("hat", ns_hats).set_attr("uri", h.uri).set_attr("title", h.title);
}

void Room::command_items(parley::ElementRef query) const {
  for (auto [node, name] : {std::pair{node_don, "Put on a hat"}, std::pair{node_doff, "Take off a hat"}})
    query.add_child("item", ns_items).set_attr("jid", jid_).set_attr("node", node).set_attr("name", name);
}

void Room::hats_command(parley::ElementView iq, const std::string& from) {
  auto cmd = iq.child("command", ns_commands);
  if (!cmd || iq.attr("type") != "set") return error(iq, "bad-request", "modify");
  const std::string node(cmd->attr("node").value_or(""));
  if (node != node_don && node != node_doff) return error(iq, "item-not-found", "cancel");
  const Affiliation aff = affiliation_of(std::string(parley::bare_jid(from)));
  if (aff != Affiliation::owner && aff != Affiliation::admin)
    return error(iq, "forbidden", "auth", "only admins and owners hand out hats");
  if (cmd->attr("action") == "cancel") return route(command_reply(iq, node, "canceled"));
  auto x = cmd->child("x", ns_xdata);
  if (!x || x->attr("type") != "submit") {
    // The first stage: the form.
    parley::Element reply = command_reply(iq, node, "executing");
    auto c = reply.child("command", ns_commands);
    auto form = c->add_child("x", ns_xdata);
    form.set_attr("type", "form");
    form.add_child("title", ns_xdata).add_text(node == node_don ? "Assigning a hat" : "Removing a hat");
    auto field = [&](const char* var, const char* type, const char* label, bool required) {
      auto f = form.add_child("field", ns_xdata);
      f.set_attr("var", var).set_attr("type", type);
      if (label[0]) f.set_attr("label", label);
      if (required) f.add_child("required", ns_xdata);
      return f;
    };
    field("FORM_TYPE", "hidden", "", false).add_child("value", ns_xdata).add_text(hats_form_type);
    field("accountjid", "jid-single", "User address", true);
    field("hat", "text-single", "The hat's URI", true);
    if (node == node_don) field("title", "text-single", "The hat's title", false);
    return route(std::move(reply));
  }
  FormValues values = read_form(*x);
  auto first = [&](const char* var) {
    auto it = values.find(var);
    return it == values.end() || it->second.empty() ? std::string() : it->second.front();
  };
  auto account = service_.host->prepare_jid(first("accountjid"));
  std::string uri = first("hat");
  if (uri.empty()) {
    // XEP-0317's doff example names the hat as the field's <option/>.
    for (auto f : x->children())
      if (f.name() == "field" && f.attr("var") == "hat")
        if (auto option = f.child("option", ns_xdata)) uri = option->child_text("value", ns_xdata);
  }
  if (!account || uri.empty()) return error(iq, "bad-request", "modify", "accountjid and hat are required");
  const std::string bare(parley::bare_jid(*account));
  std::vector<Hat>& hats = config_.hats[bare];
  auto same = std::find_if(hats.begin(), hats.end(), [&](const Hat& h) { return h.uri == uri; });
  if (node == node_don) {
    std::string title = first("title");
    if (title.empty()) title = uri;
    std::replace(title.begin(), title.end(), '\t', ' ');  // the stored form separates with tabs
    if (same != hats.end()) {
      same->title = std::move(title);
    } else {
      if (hats.size() >= kMaxHatsPerAccount || config_.hats.size() > service_.max_affiliations) {
        if (hats.empty()) config_.hats.erase(bare);
        return error(iq, "resource-constraint", "wait", "no more hats");
      }
      hats.push_back(Hat{uri, std::move(title)});
    }
  } else {
    if (same == hats.end()) {
      if (hats.empty()) config_.hats.erase(bare);
      return error(iq, "item-not-found", "cancel", "the account wears no such hat");
    }
    hats.erase(same);
    if (hats.empty()) config_.hats.erase(bare);
  }
  persist();
  route(command_reply(iq, node, "completed"));
  // Its sessions in the room show the change.
  std::vector<std::string> present;
  for (const auto& [real, o] : occupants_)
    if (o.bare == bare) present.push_back(real);
  for (const std::string& real : present)
    if (Occupant* o = by_real(real)) broadcast_presence(*o, {110});
}

}  // namespace muc
