// The XML side of the node logic mod_pep and mod_pubsub share (the SDK's
// elements, no server internals): stanza errors with their pubsub#errors
// condition, the node configuration form, reading a submitted form, and the
// items request (XEP-0060 §6.5: max_items, item ids, XEP-0059 RSM) with its
// answer over a node's items.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/module.hpp"
#include "pubsub_logic.hpp"

namespace parley::pubsub {

inline constexpr const char* ns_pubsub = "http://jabber.org/protocol/pubsub";
inline constexpr const char* ns_owner = "http://jabber.org/protocol/pubsub#owner";
inline constexpr const char* ns_event = "http://jabber.org/protocol/pubsub#event";
inline constexpr const char* ns_errors = "http://jabber.org/protocol/pubsub#errors";
inline constexpr const char* ns_data = "jabber:x:data";
inline constexpr const char* ns_caps = "http://jabber.org/protocol/caps";
inline constexpr const char* ns_rsm = "http://jabber.org/protocol/rsm";
inline constexpr const char* ns_disco_info = "http://jabber.org/protocol/disco#info";
inline constexpr const char* ns_disco_items = "http://jabber.org/protocol/disco#items";

struct Item {
  std::string id;
  std::string payload;    // the serialized payload element (empty: none)
  std::string publisher;  // bare JID (mod_pubsub; mod_pep: the owner, not kept)
  int64_t stamp_us = 0;   // when it was published (µs since the epoch; 0: unknown)
};

// RFC 6120 §8.3.2: the error type that goes with a condition.
std::string_view error_type(std::string_view condition);

// The error answer to `iq`: `condition` with, if given, the pubsub#errors
// element `app` (and its 'feature'); `type` overrides the usual type.
parley::Element error_reply(const parley::Host& host, parley::ElementView iq, std::string_view condition,
                            std::string_view app = {}, std::string_view feature = {}, std::string_view type = {});

// A data form (XEP-0004, `type` form or result) of `fields`.
parley::Element fields_form(const parley::Host& host, const std::vector<ConfigField>& fields, std::string_view type);

// XEP-0060 sections 5.3-5.4: what a node's disco#info answer carries, its identity
// (pubsub/leaf), the pubsub feature and the pubsub#meta-data form.
struct MetaData {
  const NodeConfig* config = nullptr;
  std::string creator;
  std::vector<std::string> owners;
  std::vector<std::string> publishers;
  int64_t max_items = 0;                    // effective
  std::optional<std::size_t> subscribers;  // pubsub#num_subscribers, where the node keeps subscriptions
};
void add_node_info(parley::ElementRef query, const MetaData& meta);

// The node configuration data form (XEP-0004 `type` form or result).
parley::Element config_form(const parley::Host& host, const NodeConfig& config, std::string_view type,
                            bool service = false);

// The submitted form in `parent`'s <x xmlns='jabber:x:data'/>: nullopt without
// one; `malformed` when it is not a submit form of `form_type` (a FORM_TYPE of
// another type; none is taken as this one).
std::optional<Form> read_form(parley::ElementView parent, std::string_view form_type, bool& malformed);

// An items request (§6.5): nullopt if malformed (bad-request).
struct ItemsQuery {
  std::optional<std::size_t> max_items;
  std::vector<std::string> ids;
  bool rsm = false;
  std::size_t rsm_max = SIZE_MAX;
  std::optional<std::string> after, before;
};
std::optional<ItemsQuery> parse_items_query(parley::ElementView pubsub, parley::ElementView items);

// The <pubsub/> answer over `items` (oldest first), or the error condition
// (item-not-found for an unknown RSM after/before id).
struct ItemsAnswer {
  std::optional<parley::Element> pubsub;
  std::string condition;
};
ItemsAnswer items_answer(const parley::Host& host, const std::string& node, const std::deque<Item>& items,
                         const ItemsQuery& q);

// An <item/> of a notification, with its payload or without.
std::string item_xml(const Item& item, bool with_payload);

}  // namespace parley::pubsub
