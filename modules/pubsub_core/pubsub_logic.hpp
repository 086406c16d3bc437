// The node logic mod_pep and mod_pubsub share (standard library and OpenSSL
// only, a static library against nothing of the server; unit-tested in
// tests/unit/modules/mod_pep/ and mod_pubsub/): a node's configuration
// (XEP-0060 §16.4's pubsub#node_config fields), applying a submitted form to it,
// the publish-options preconditions (§7.1.5), the stored form of a node, and
// the entity capabilities verification string (XEP-0115 §5.1, SHA-1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::pubsub {

// One field of a submitted data form (XEP-0004): its var and values.
struct FormField {
  std::string var;
  std::vector<std::string> values;
};
using Form = std::vector<FormField>;

// authorize: a generic service's only (XEP-0060 §4.5: the owner approves
// every subscription; only subscribers retrieve items).
enum class AccessModel { open, presence, roster, whitelist, authorize };
enum class SendLast { never, on_sub, on_sub_and_presence };

std::string_view to_string(AccessModel m);
std::string_view to_string(SendLast s);

// The module's limits (its options), applied to every form.
struct Limits {
  int64_t max_items = 256;   // items per node; pubsub#max_items "max" means this
  int64_t max_nodes = 256;   // nodes per user
  int64_t max_item_bytes = 131072;
  int64_t max_affiliations = 1024;  // members and outcasts of one node together
  int64_t max_user_bytes = 8 << 20; // every item of one account together
  // A generic service (mod_pubsub) instead of a personal one: access models
  // open and whitelist only (presence and roster need the owner's roster),
  // publish models publishers, subscribers and open, no roster groups, and
  // send_last_published_item never or on_sub (no presence of subscribers).
  bool service = false;
};

struct NodeConfig {
  AccessModel access = AccessModel::presence;   // XEP-0163 §4.1.2 default
  int64_t max_items = 1;                        // -1: "max" (the module's limit)
  bool persist_items = true;
  SendLast send_last = SendLast::on_sub_and_presence;
  bool notify_retract = true;
  bool notify_delete = true;
  bool notify_config = false;
  bool deliver_payloads = true;
  bool deliver_notifications = true;
  std::vector<std::string> roster_groups;       // pubsub#roster_groups_allowed
  std::string title;
  std::string type;                             // pubsub#type (payload namespace)
  std::string publish_model = "publishers";     // only the owner (and publishers) publish
  std::vector<std::string> whitelist;           // bare JIDs with affiliation member or publisher
  std::vector<std::string> outcasts;            // bare JIDs with affiliation outcast
  int64_t item_expire = 0;                      // pubsub#item_expire: seconds an item lives (0: for ever; a service's only)

  int64_t effective_max_items(const Limits& limits) const;
};

inline constexpr std::string_view node_config_form_type = "http://jabber.org/protocol/pubsub#node_config";
inline constexpr std::string_view publish_options_form_type = "http://jabber.org/protocol/pubsub#publish-options";

// The value of `var` in `form` (its first value), if present.
std::optional<std::string> form_value(const Form& form, std::string_view var);

// Applies a submitted pubsub#node_config form (FORM_TYPE checked by the caller
// or absent). An error is the field that was refused, with why: the caller
// answers not-acceptable. Unknown fields are refused too (XEP-0060 §8.2.5.3:
// the service must not silently ignore what it does not support).
struct FormError {
  std::string field;
  std::string reason;
};
std::optional<FormError> apply_config(NodeConfig& config, const Form& form, const Limits& limits);

// XEP-0060 §7.1.5: the name of the first publish-option that the node's
// configuration does not match (unknown options never match), or nullopt.
std::optional<std::string> precondition_mismatch(const NodeConfig& config, const Form& options,
                                                 const Limits& limits);

// One field of the node configuration form the module answers.
struct ConfigField {
  std::string var;
  std::string type;  // XEP-0004 field type
  std::string label;
  std::vector<std::string> values;
  std::vector<std::string> options;  // list-single / list-multi choices
};
std::vector<ConfigField> config_fields(const NodeConfig& config, bool service = false);

// A generic service's default node configuration (XEP-0060 §4.5: open is the
// default access model of a generic service; items kept: 10 by default).
NodeConfig service_defaults();

// Stored form of a configuration (line-based, versioned) and back; a damaged
// store yields the defaults for what cannot be read.
std::string serialize_config(const NodeConfig& config);
NodeConfig parse_config(std::string_view stored);

// Who may see a node's items and get its notifications (XEP-0060 §4.5 access
// models as XEP-0163 uses them): the owner always; an outcast never; else by
// the model, from the requester's item in the owner's roster (a 'from' or
// 'both' subscription, its groups).
enum class Access { allowed, presence_required, not_in_group, not_whitelisted, outcast };
Access check_access(const NodeConfig& config, bool is_owner, std::string_view requester_bare, bool subscribed_from,
                    const std::vector<std::string>& groups);

// ---- a generic service's affiliations (XEP-0060 §4.1) ----
enum class Affiliation { none, owner, publisher, publish_only, member, outcast };
std::string_view to_string(Affiliation a);
std::optional<Affiliation> parse_affiliation(std::string_view v);

// §4.1's table with the node's access and publish models: what an entity with
// `aff` (and, for the subscribers publish model, a subscription) may do.
// not_subscribed: an authorize node's items to an entity without an approved
// subscription (§6.5.9: not-authorized with not-subscribed).
enum class Verdict { allowed, forbidden, closed_node, not_subscribed };
// Subscribe and retrieve items: an outcast never (forbidden); publish-only
// may not (forbidden); a whitelist node admits its owners, publishers and
// members (else closed_node).
Verdict may_subscribe(const NodeConfig& config, Affiliation aff);
Verdict may_retrieve(const NodeConfig& config, Affiliation aff, bool subscribed = true);
// An authorize node's subscription from an entity that is not an owner,
// publisher or member waits for an owner's approval (§6.1.3.? 'pending').
bool needs_approval(const NodeConfig& config, Affiliation aff);
// Publish: owners, publishers and publish-only; the subscribers model adds
// subscribers, the open model anyone but an outcast.
bool may_publish(const NodeConfig& config, Affiliation aff, bool subscribed);
// Retract an item: an owner any; a publisher or publish-only its own only
// (the table's footnote: allowing any item is NOT RECOMMENDED for publish-only
// and optional for publishers).
bool may_retract(Affiliation aff, bool own_item);

// ---- subscription options (XEP-0060 §6.3) ----
inline constexpr std::string_view subscribe_options_form_type = "http://jabber.org/protocol/pubsub#subscribe_options";
inline constexpr std::string_view subscribe_authorization_form_type =
    "http://jabber.org/protocol/pubsub#subscribe_authorization";
// The options a subscriber may set: whether notifications are delivered at
// all (pubsub#deliver) and whether a notification carries a <body/> as well
// (pubsub#include_body: a summary of an Atom entry, its title and summary).
// Digests, expiry and show-values are not offered.
struct SubOptions {
  bool deliver = true;
  bool include_body = false;
  bool operator==(const SubOptions&) const = default;
};
// Applies a submitted pubsub#subscribe_options form (FORM_TYPE read by the
// caller): an unknown field or a bad value is the error (§6.3.6:
// bad-request with invalid-options).
std::optional<FormError> apply_sub_options(SubOptions& options, const Form& form);
std::vector<ConfigField> sub_option_fields(const SubOptions& options);
std::string serialize_sub_options(const SubOptions& options);  // "" for the defaults
SubOptions parse_sub_options(std::string_view stored);
// The text of a notification's <body/> for include_body: an Atom entry's
// title and summary (one per line), from its serialized payload; empty for
// other payloads (no body then).
std::string atom_summary(std::string_view title, std::string_view summary);

// The groups of a roster item as mod_roster stores them ("<len>:<name>"...),
// also the form of a session's saved caps across a reload.
std::vector<std::string> decode_roster_groups(std::string_view stored);
std::string encode_strings(const std::vector<std::string>& strings);

// XEP-0059 result set management over a node's items (oldest first): the
// page [begin, end) of `total` items after the item at `after`, or before the
// one at `before` (npos with from_end: the last page), at most `max`.
struct Page {
  std::size_t begin = 0, end = 0;
};
Page rsm_page(std::size_t total, std::optional<std::size_t> after, std::optional<std::size_t> before, bool from_end,
              std::size_t max);

// Text escaped for an XML attribute or character data.
std::string xml_attr(std::string_view text);

// XEP-0060: booleans are "1"/"true" or "0"/"false".
std::optional<bool> parse_bool(std::string_view v);

// ---- entity capabilities (XEP-0115) ----
struct CapsIdentity {
  std::string category, type, lang, name;
};
struct CapsForm {
  std::string form_type;  // the FORM_TYPE value
  std::vector<FormField> fields;  // without FORM_TYPE
};
struct CapsInfo {
  std::vector<CapsIdentity> identities;
  std::vector<std::string> features;
  std::vector<CapsForm> forms;
};
// §5.1's verification string, base64 of the SHA-1 of S; nullopt when §5.4
// says the answer is not to be trusted (duplicate identity, feature or
// FORM_TYPE).
std::optional<std::string> caps_ver(const CapsInfo& info);

std::string sha1(std::string_view data);       // 20 raw bytes
std::string base64(std::string_view data);
// Base64 (whitespace ignored, as in a vCard's BINVAL); nullopt if malformed.
std::optional<std::string> base64_decode(std::string_view text);
std::string hex(std::string_view bytes);  // lower case, as XEP-0153 and XEP-0084 write SHA-1s

}  // namespace parley::pubsub
