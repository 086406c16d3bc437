// mod_pubsub's rules (modules/pubsub_core): XEP-0060 §4.1's affiliation table
// with the access and publish models, and the service's configuration form
// (what a generic service accepts that a personal node does not, and back).
#include <doctest/doctest.h>

#include <algorithm>

#include "pubsub_logic.hpp"

using namespace parley::pubsub;

namespace {
Form form(std::initializer_list<std::pair<std::string, std::string>> fields) {
  Form out;
  for (const auto& [k, v] : fields) out.push_back(FormField{k, {v}});
  return out;
}
Limits service_limits() {
  Limits l;
  l.service = true;
  l.max_items = 100;
  return l;
}
}  // namespace

TEST_CASE("4.1: subscribe and retrieve by affiliation on an open node") {
  NodeConfig c = service_defaults();
  CHECK(c.access == AccessModel::open);
  for (auto a : {Affiliation::owner, Affiliation::publisher, Affiliation::member, Affiliation::none}) {
    CHECK(may_subscribe(c, a) == Verdict::allowed);
    CHECK(may_retrieve(c, a) == Verdict::allowed);
  }
  CHECK(may_subscribe(c, Affiliation::outcast) == Verdict::forbidden);
  CHECK(may_retrieve(c, Affiliation::outcast) == Verdict::forbidden);
  // Publish-only: publishes, neither subscribes nor retrieves.
  CHECK(may_subscribe(c, Affiliation::publish_only) == Verdict::forbidden);
  CHECK(may_retrieve(c, Affiliation::publish_only) == Verdict::forbidden);
}

TEST_CASE("4.5: a whitelist node admits its owners, publishers and members only") {
  NodeConfig c = service_defaults();
  c.access = AccessModel::whitelist;
  CHECK(may_subscribe(c, Affiliation::owner) == Verdict::allowed);
  CHECK(may_subscribe(c, Affiliation::publisher) == Verdict::allowed);
  CHECK(may_subscribe(c, Affiliation::member) == Verdict::allowed);
  CHECK(may_subscribe(c, Affiliation::none) == Verdict::closed_node);
  CHECK(may_retrieve(c, Affiliation::none) == Verdict::closed_node);
  CHECK(may_retrieve(c, Affiliation::outcast) == Verdict::forbidden);
}

TEST_CASE("4.1 and the publish models") {
  NodeConfig c = service_defaults();
  CHECK(c.publish_model == "publishers");
  CHECK(may_publish(c, Affiliation::owner, false));
  CHECK(may_publish(c, Affiliation::publisher, false));
  CHECK(may_publish(c, Affiliation::publish_only, false));
  CHECK_FALSE(may_publish(c, Affiliation::member, true));
  CHECK_FALSE(may_publish(c, Affiliation::none, true));
  c.publish_model = "subscribers";
  CHECK(may_publish(c, Affiliation::none, true));
  CHECK_FALSE(may_publish(c, Affiliation::none, false));
  c.publish_model = "open";
  CHECK(may_publish(c, Affiliation::none, false));
  CHECK_FALSE(may_publish(c, Affiliation::outcast, true));  // an outcast never
}

TEST_CASE("4.1: retracting: an owner any item, publishers their own") {
  CHECK(may_retract(Affiliation::owner, false));
  CHECK(may_retract(Affiliation::publisher, true));
  CHECK_FALSE(may_retract(Affiliation::publisher, false));
  CHECK(may_retract(Affiliation::publish_only, true));
  CHECK_FALSE(may_retract(Affiliation::publish_only, false));
  CHECK_FALSE(may_retract(Affiliation::member, true));
  CHECK_FALSE(may_retract(Affiliation::none, true));
}

TEST_CASE("affiliation names round-trip; unknown ones are refused") {
  for (auto a : {Affiliation::none, Affiliation::owner, Affiliation::publisher, Affiliation::publish_only,
                 Affiliation::member, Affiliation::outcast})
    CHECK(parse_affiliation(to_string(a)) == a);
  CHECK(to_string(Affiliation::publish_only) == "publish-only");
  CHECK_FALSE(parse_affiliation("admin").has_value());
  CHECK_FALSE(parse_affiliation("").has_value());
}

TEST_CASE("the service's configuration form: open and whitelist, three publish models, no presence") {
  const Limits l = service_limits();
  NodeConfig c = service_defaults();
  CHECK_FALSE(apply_config(c, form({{"pubsub#access_model", "whitelist"}, {"pubsub#publish_model", "open"},
                                    {"pubsub#max_items", "50"}, {"pubsub#send_last_published_item", "on_sub"}}),
                           l));
  CHECK(c.access == AccessModel::whitelist);
  CHECK(c.publish_model == "open");
  CHECK(c.max_items == 50);
  CHECK(c.send_last == SendLast::on_sub);
  // Refused on a service, the node unchanged: presence/roster (no roster of
  // the owner), on_sub_and_presence, roster groups.
  for (auto bad : {form({{"pubsub#access_model", "presence"}}), form({{"pubsub#access_model", "roster"}}),
                   form({{"pubsub#send_last_published_item", "on_sub_and_presence"}}),
                   form({{"pubsub#roster_groups_allowed", "friends"}}), form({{"pubsub#max_items", "101"}})}) {
    NodeConfig before = c;
    CHECK(apply_config(c, bad, l).has_value());
    CHECK(serialize_config(c) == serialize_config(before));
  }
  // A personal node refuses the open publish model.
  NodeConfig pep;
  CHECK(apply_config(pep, form({{"pubsub#publish_model", "open"}}), Limits{}).has_value());
  CHECK(apply_config(pep, form({{"pubsub#publish_model", "subscribers"}}), Limits{}).has_value());
}

TEST_CASE("the service's form offers exactly what it accepts") {
  auto fields = config_fields(service_defaults(), true);
  auto find = [&](const std::string& var) {
    return std::find_if(fields.begin(), fields.end(), [&](const ConfigField& f) { return f.var == var; });
  };
  REQUIRE(find("pubsub#access_model") != fields.end());
  CHECK(find("pubsub#access_model")->options == std::vector<std::string>{"authorize", "open", "whitelist"});
  CHECK(find("pubsub#publish_model")->options == std::vector<std::string>{"publishers", "subscribers", "open"});
  CHECK(find("pubsub#send_last_published_item")->options == std::vector<std::string>{"never", "on_sub"});
  CHECK(find("pubsub#roster_groups_allowed") == fields.end());
  CHECK(find("pubsub#max_items")->values == std::vector<std::string>{"10"});
  // A personal node's form keeps its four models and roster groups.
  auto pep = config_fields(NodeConfig{});
  CHECK(std::find_if(pep.begin(), pep.end(), [](const ConfigField& f) {
          return f.var == "pubsub#roster_groups_allowed";
        }) != pep.end());
}

TEST_CASE("publish-options against a service node") {
  const Limits l = service_limits();
  NodeConfig c = service_defaults();
  CHECK_FALSE(precondition_mismatch(c, form({{"pubsub#access_model", "open"}}), l));
  CHECK(precondition_mismatch(c, form({{"pubsub#access_model", "whitelist"}}), l) ==
        std::optional<std::string>("pubsub#access_model"));
  CHECK(precondition_mismatch(c, form({{"pubsub#access_model", "presence"}}), l).has_value());
}

TEST_CASE("4.5 authorize: a service's model only; approval for entities without an affiliation") {
  NodeConfig c = service_defaults();
  CHECK_FALSE(apply_config(c, form({{"pubsub#access_model", "authorize"}}), service_limits()));
  CHECK(c.access == AccessModel::authorize);
  CHECK(parse_config(serialize_config(c)).access == AccessModel::authorize);
  NodeConfig pep;
  CHECK(apply_config(pep, form({{"pubsub#access_model", "authorize"}}), Limits{}).has_value());
  CHECK(needs_approval(c, Affiliation::none));
  for (auto a : {Affiliation::owner, Affiliation::publisher, Affiliation::member}) {
    CHECK_FALSE(needs_approval(c, a));
    CHECK(may_retrieve(c, a, false) == Verdict::allowed);
  }
  // Only an approved subscriber retrieves items (6.5.9: not-subscribed).
  CHECK(may_subscribe(c, Affiliation::none) == Verdict::allowed);
  CHECK(may_retrieve(c, Affiliation::none, false) == Verdict::not_subscribed);
  CHECK(may_retrieve(c, Affiliation::none, true) == Verdict::allowed);
  CHECK(may_retrieve(c, Affiliation::outcast, true) == Verdict::forbidden);
  // Other models never ask for approval.
  CHECK_FALSE(needs_approval(service_defaults(), Affiliation::none));
  CHECK(may_retrieve(service_defaults(), Affiliation::none, false) == Verdict::allowed);
}

TEST_CASE("6.3: subscription options: deliver and include_body, nothing else") {
  SubOptions o;
  CHECK(serialize_sub_options(o).empty());
  CHECK_FALSE(apply_sub_options(o, form({{"FORM_TYPE", std::string(subscribe_options_form_type)},
                                         {"pubsub#deliver", "false"}, {"pubsub#include_body", "1"}})));
  CHECK_FALSE(o.deliver);
  CHECK(o.include_body);
  CHECK(parse_sub_options(serialize_sub_options(o)) == o);
  // Refused whole: an unknown option, a bad value, another form.
  for (auto bad : {form({{"pubsub#digest", "1"}}), form({{"pubsub#deliver", "maybe"}}),
                   form({{"FORM_TYPE", "http://jabber.org/protocol/pubsub#node_config"}}),
                   form({{"pubsub#include_body", "0"}, {"pubsub#show-values", "away"}})}) {
    SubOptions before = o;
    CHECK(apply_sub_options(o, bad).has_value());
    CHECK(o == before);
  }
  auto fields = sub_option_fields(SubOptions{});
  REQUIRE(fields.size() == 3);
  CHECK(fields[0].values == std::vector<std::string>{std::string(subscribe_options_form_type)});
  CHECK(fields[1].var == "pubsub#deliver");
  CHECK(fields[1].values == std::vector<std::string>{"1"});
  CHECK(fields[2].var == "pubsub#include_body");
  CHECK(fields[2].values == std::vector<std::string>{"0"});
  CHECK(atom_summary("Title", "Summary") == "Title\nSummary");
  CHECK(atom_summary("", "Summary") == "Summary");
  CHECK(atom_summary("Title", "") == "Title");
}

TEST_CASE("pubsub#item_expire: whole seconds on a service's node, not on a personal one") {
  NodeConfig c = service_defaults();
  CHECK_FALSE(apply_config(c, form({{"pubsub#item_expire", "3600"}}), service_limits()));
  CHECK(c.item_expire == 3600);
  CHECK(parse_config(serialize_config(c)).item_expire == 3600);
  CHECK(parse_config(serialize_config(service_defaults())).item_expire == 0);
  for (auto bad : {"-1", "1.5", "x", "9999999999", "315360001"})
    CHECK(apply_config(c, form({{"pubsub#item_expire", bad}}), service_limits()).has_value());
  CHECK(c.item_expire == 3600);
  CHECK_FALSE(apply_config(c, form({{"pubsub#item_expire", "0"}}), service_limits()));
  CHECK(c.item_expire == 0);
  NodeConfig pep;
  CHECK(apply_config(pep, form({{"pubsub#item_expire", "60"}}), Limits{}).has_value());
}
