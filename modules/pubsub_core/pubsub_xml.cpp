#include "pubsub_xml.hpp"

#include <algorithm>

namespace parley::pubsub {

std::string_view error_type(std::string_view condition) {
  if (condition == "bad-request" || condition == "not-acceptable" || condition == "policy-violation" ||
      condition == "jid-malformed")
    return "modify";
  if (condition == "forbidden" || condition == "not-authorized") return "auth";
  if (condition == "internal-server-error" || condition == "resource-constraint") return "wait";
  return "cancel";
}

parley::Element error_reply(const parley::Host& host, parley::ElementView iq, std::string_view condition,
                            std::string_view app, std::string_view feature, std::string_view type) {
  (void)host;
  parley::Element reply = parley::make_iq_result(iq);
  reply.set_attr("type", "error");
  auto error = reply.add_child("error", "jabber:client");
  error.set_attr("type", type.empty() ? error_type(condition) : type);
  error.add_child(condition, "urn:ietf:params:xml:ns:xmpp-stanzas");
  if (!app.empty()) {
    auto a = error.add_child(app, ns_errors);
    if (!feature.empty()) a.set_attr("feature", feature);
  }
  return reply;
}

void add_node_info(parley::ElementRef query, const MetaData& meta) {
  query.add_child("identity", ns_disco_info).set_attr("category", "pubsub").set_attr("type", "leaf");
  query.add_child("feature", ns_disco_info).set_attr("var", ns_pubsub);
  auto x = query.add_child("x", ns_data);
  x.set_attr("type", "result");
  auto field = [&](std::string_view var, std::string_view type, const std::vector<std::string>& values) {
    auto f = x.add_child("field", ns_data);
    f.set_attr("var", var);
    if (!type.empty()) f.set_attr("type", type);
    for (const auto& v : values) f.add_child("value", ns_data).add_text(v);
  };
  const NodeConfig& config = *meta.config;
  field("FORM_TYPE", "hidden", {"http://jabber.org/protocol/pubsub#meta-data"});
  field("pubsub#title", "text-single", {config.title});
  field("pubsub#type", "text-single", {config.type});
  field("pubsub#creator", "jid-single", {meta.creator});
  field("pubsub#owner", "jid-multi", meta.owners);
  field("pubsub#publisher", "jid-multi", meta.publishers);
  field("pubsub#access_model", "list-single", {std::string(to_string(config.access))});
  field("pubsub#publish_model", "list-single", {config.publish_model});
  field("pubsub#max_items", "text-single", {std::to_string(meta.max_items)});
  if (meta.subscribers) field("pubsub#num_subscribers", "text-single", {std::to_string(*meta.subscribers)});
}

parley::Element fields_form(const parley::Host& host, const std::vector<ConfigField>& fields, std::string_view type) {
  parley::Element x = host.element("x", ns_data);
  x.set_attr("type", type);
  for (const ConfigField& f : fields) {
    auto field = x.add_child("field", ns_data);
    field.set_attr("var", f.var).set_attr("type", f.type);
    if (!f.label.empty()) field.set_attr("label", f.label);
    for (const auto& o : f.options) field.add_child("option", ns_data).add_child("value", ns_data).add_text(o);
    for (const auto& v : f.values) field.add_child("value", ns_data).add_text(v);
  }
  return x;
}

parley::Element config_form(const parley::Host& host, const NodeConfig& config, std::string_view type,
                            bool service) {
  return fields_form(host, config_fields(config, service), type);
}

std::optional<Form> read_form(parley::ElementView parent, std::string_view form_type, bool& malformed) {
  auto x = parent.child("x", ns_data);
  if (!x) return std::nullopt;
  if (x->attr("type").value_or("") != "submit") {
    malformed = true;
    return std::nullopt;
  }
  Form form;
  for (auto field : x->children()) {
    if (field.name() != "field") continue;
    FormField f{std::string(field.attr("var").value_or("")), {}};
    for (auto v : field.children())
      if (v.name() == "value") f.values.push_back(v.text());
    if (f.var == "FORM_TYPE") {
      if (f.values.empty() || f.values.front() != form_type) malformed = true;
      continue;
    }
    form.push_back(std::move(f));
  }
  return form;
}

namespace {
std::optional<std::size_t> count(std::string_view text) {
  if (text.empty() || text.size() >= 10) return std::nullopt;
  std::size_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::size_t>(c - '0');
  }
  return v;
}
}  // namespace

std::optional<ItemsQuery> parse_items_query(parley::ElementView pubsub, parley::ElementView req) {
  ItemsQuery q;
  if (auto m = req.attr("max_items")) {
    q.max_items = count(*m);
    if (!q.max_items) return std::nullopt;
  }
  for (auto child : req.children())
    if (child.name() == "item") q.ids.emplace_back(child.attr("id").value_or(""));
  // XEP-0059 in the <pubsub/> (XEP-0060 §6.5.4): max, after, before.
  if (auto set = pubsub.child("set", ns_rsm)) {
    q.rsm = true;
    if (auto m = set->child("max", ns_rsm)) {
      auto v = count(m->text());
      if (!v) return std::nullopt;
      q.rsm_max = *v;
    }
    if (auto a = set->child("after", ns_rsm)) q.after = a->text();
    if (auto b = set->child("before", ns_rsm)) q.before = b->text();
  }
  return q;
}

ItemsAnswer items_answer(const parley::Host& host, const std::string& node, const std::deque<Item>& all,
                         const ItemsQuery& q) {
  parley::Element p = host.element("pubsub", ns_pubsub);
  auto list = p.add_child("items", ns_pubsub);
  list.set_attr("node", node);
  Page page{0, all.size()};
  if (q.max_items && *q.max_items < all.size()) page.begin = all.size() - *q.max_items;  // the N most recent (§6.5.7)
  if (q.rsm) {
    auto index_of = [&](const std::string& id) -> std::optional<std::size_t> {
      for (std::size_t i = 0; i < all.size(); ++i)
        if (all[i].id == id) return i;
      return std::nullopt;
    };
    std::optional<std::size_t> after, before;
    if (q.after && !(after = index_of(*q.after))) return {std::nullopt, "item-not-found"};
    if (q.before && !q.before->empty() && !(before = index_of(*q.before))) return {std::nullopt, "item-not-found"};
    page = rsm_page(all.size(), after, before, q.before && q.before->empty(), q.rsm_max);
  }
  for (std::size_t i = page.begin; i < page.end; ++i) {
    if (!q.ids.empty() && std::find(q.ids.begin(), q.ids.end(), all[i].id) == q.ids.end()) continue;
    auto item = list.add_child("item", ns_pubsub);
    item.set_attr("id", all[i].id);
    if (!all[i].payload.empty())
      if (auto payload = host.parse(all[i].payload)) item.add_child(std::move(*payload));
  }
  if (q.rsm) {
    auto set = p.add_child("set", ns_rsm);
    if (page.end > page.begin) {
      set.add_child("first", ns_rsm).set_attr("index", std::to_string(page.begin)).add_text(all[page.begin].id);
      set.add_child("last", ns_rsm).add_text(all[page.end - 1].id);
    }
    set.add_child("count", ns_rsm).add_text(std::to_string(all.size()));
  }
  return {std::move(p), {}};
}

std::string item_xml(const Item& item, bool with_payload) {
  std::string out = "<item id='" + xml_attr(item.id) + "'";
  if (!with_payload || item.payload.empty()) return out + "/>";
  return out + ">" + item.payload + "</item>";
}

}  // namespace parley::pubsub
