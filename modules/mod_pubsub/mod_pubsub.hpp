// mod_pubsub: a generic publish-subscribe service (XEP-0060) on a service
// domain (option `host`, default pubsub.HOST): nodes created by local and
// remote entities, explicit subscriptions, affiliations (owner, publisher,
// publish-only, member, outcast), the open and whitelist access models, the
// node configuration and metadata forms, items with RSM paging.
//
// Threads: each node lives on one worker loop, the one its name hashes to,
// and is touched only there (no lock): a request for a node is copied and
// posted to its loop. What spans nodes (the service's disco#items, an
// entity's subscriptions and affiliations) walks the loops one after the
// other (a post chain), as mod_muc does for its rooms. The nodes an entity
// created are counted in relaxed atomics (max_nodes_per_user).
//
// Storage: the map store (pubsub_store.cpp says how). The nodes (configuration,
// affiliations, subscriptions) are loaded at start (each loop waits for its
// nodes before it answers, stanzas waiting in order, bounded) and stay in
// memory, bounded by max_nodes, max_affiliations and max_subscriptions. A
// node's items are read when a request first needs them and stay in memory
// while the node is used: past max_cache_bytes of items on a loop, the least
// recently used nodes' items leave memory (read again on demand; the node's
// requests wait for that read, in order, bounded).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "parley/module.hpp"
#include "parley/sdk/old_tables.hpp"
#include "pubsub_logic.hpp"
#include "pubsub_xml.hpp"

namespace parley::mod_pubsub {

using namespace parley::pubsub;

struct Subscription {
  std::string jid;    // as subscribed: a bare or full JID
  std::string subid;
  bool pending = false;  // an authorize node's request, waiting for an owner (§6.1.4, §8.6)
  SubOptions options;    // §6.3
  bool active() const { return !pending; }
};

// A request for one node (or the service), copied to the node's loop.
struct Request {
  std::shared_ptr<parley::Element> iq;  // from/to set: errors and results are built from it (or a
                                        // message: an owner's answer to an approval form, §8.6)
  std::string from;                     // the requester, full JID (or bare, or a domain)
  std::string bare;                     // its bare JID
  std::string service;                  // the service domain
  std::string node;                     // the node it is for (empty: service-wide)
};

struct Node {
  std::string name;
  std::string creator;  // bare JID; counted against max_nodes_per_user
  NodeConfig config;
  std::map<std::string, Affiliation> affiliations;  // bare JID -> affiliation (never none)
  std::vector<Subscription> subscriptions;
  std::deque<Item> items;  // oldest first (when items_loaded)
  bool items_loaded = false;  // false: in the store only (not read yet, or evicted)
  bool loading = false;
  std::deque<Request> waiting;  // its requests while its items are read (bounded)
  uint64_t last_use = 0;
  int64_t bytes = 0;  // its items in memory (ids and payloads)

  Affiliation affiliation_of(const std::string& bare) const;
  const Subscription* subscription_of(const std::string& jid) const;
  Subscription* subscription_of(const std::string& jid);
  bool subscribed(const std::string& bare) const;  // any approved subscription of this bare JID
};

struct LoopNodes {
  std::map<std::string, Node> nodes;
  bool loaded = false;
  std::deque<Request> waiting;  // until loaded (bounded)
  int64_t last_seq = 0;
  uint64_t tick = 0;   // for the nodes' last_use
  int64_t bytes = 0;   // every node's items in memory on this loop
};

std::string random_id();  // 16 hex digits (item ids, subids)
std::string attr(parley::ElementView e, std::string_view name);  // "" when absent

class ModPubsub : public parley::Module {
 public:
  parley::Result<void, std::string> start() override;
  parley::Outcome on_stanza(const parley::ServiceStanza& in);

 private:
  // mod_pubsub.cpp: the service's own requests and routing to the node loops.
  uint32_t loop_of(const std::string& node) const;
  void to_node_loop(const std::string& node, Request r);
  void run(Request r);  // on the node's loop (or the requester's: service-wide requests)
  void service_info(const Request& r);
  // The affiliation of the requester: a service administrator (the server's
  // `admins`, with the option admins_own_nodes) is an owner of every node.
  Affiliation affiliation(const Node& n, const Request& r) const;
  void list_nodes(std::shared_ptr<parley::Element> result, std::string requester, uint32_t loop);
  void list_entity(std::shared_ptr<parley::Element> result, std::string bare, bool affiliations, uint32_t loop);
  void fail(const Request& r, std::string_view condition, std::string_view app = {}, std::string_view feature = {},
            std::string_view type = {});
  void ok(const Request& r, std::optional<parley::Element> payload = std::nullopt);
  bool count_created(const std::string& bare);
  void uncount_created(const std::string& bare);

  // pubsub_node.cpp: one node's requests, on its loop.
  void node_request(const Request& r, parley::ElementView pubsub, parley::ElementView action, bool owner_ns);
  void node_disco(const Request& r, parley::ElementView query);
  void create(const Request& r, parley::ElementView pubsub, parley::ElementView create);
  void publish(const Request& r, Node& n, parley::ElementView pubsub, parley::ElementView publish);
  void retract(const Request& r, Node& n, parley::ElementView retract);
  void items(const Request& r, Node& n, parley::ElementView pubsub, parley::ElementView items);
  void subscribe(const Request& r, Node& n, parley::ElementView subscribe);
  void unsubscribe(const Request& r, Node& n, parley::ElementView unsubscribe);
  void options(const Request& r, Node& n, parley::ElementView options);
  // §8.6: the approval form to every owner, and an owner's answer to it.
  // `only` (an owner's bare JID): to that owner alone (§8.7; an administrator too).
  void ask_owners(const Node& n, const Subscription& s, const std::string& only = {});
  void authorization(const Request& r);
  void tell_subscriber(const Node& n, const std::string& jid, std::string_view state);
  // §8.7 (the get-pending ad-hoc command): the requester's nodes with pending
  // subscriptions, loop after loop; then, for the node it picks, the §8.6
  // form again for each of them.
  void list_pending(std::shared_ptr<parley::Element> result, Request r, uint32_t loop);
  void send_pending(const Request& r, Node& n);
  void configure(const Request& r, Node& n, parley::ElementView configure);
  void remove_node(const Request& r, Node& n, parley::ElementView del);
  void purge(const Request& r, Node& n);
  void owner_subscriptions(const Request& r, Node& n, parley::ElementView req);
  void owner_affiliations(const Request& r, Node& n, parley::ElementView req);
  void notify(const Node& n, const std::string& event_xml, const std::vector<Subscription>* to = nullptr,
              const std::string& body = {});
  void send_event(const std::string& to, const std::string& event_xml, const std::string& body = {});
  int64_t next_seq();
  void expire_items(Node& n);  // pubsub#item_expire: the items older than it go

  // pubsub_store.cpp: the tables, loading, writes, the items in memory.
  void start_moves();
  void load();  // on loop 0, after the moves
  void load_items(Node& n);
  void items_loaded(const std::string& node, parley::Result<parley::MapResult, std::string> map);
  void account(Node& n);                  // n.bytes (and the loop's) after a change of its items
  void trim_cache(const std::string& keep);  // evicts the least recently used nodes' items
  void finish_load(std::shared_ptr<std::map<std::string, Node>> stored);
  void save_node(const Node& n);
  void save_affiliation(const Node& n, const std::string& jid, Affiliation a);
  void save_subscription(const Node& n, const Subscription& s, bool present);
  void save_item(const Node& n, const Item& item, int64_t seq);
  void forget_item(const Node& n, const std::string& id);
  void forget_items(const Node& n);
  void forget_node(const Node& n);
  parley::Host::MapFn log_error(std::string what);

  std::string domain_;
  Limits limits_;
  int64_t max_nodes_ = 10000;            // the service's nodes together
  int64_t max_nodes_per_user_ = 100;     // nodes an entity created that exist (0: no limit)
  int64_t max_subscriptions_ = 1000;     // subscriptions of one node
  bool admins_own_nodes_ = true;
  int64_t max_cache_bytes_ = 64 << 20;   // items in memory per loop
  uint32_t loops_ = 0;
  std::size_t max_nodes_per_loop_ = 10000;
  static constexpr std::size_t created_buckets = 65536;
  std::unique_ptr<std::atomic<uint32_t>[]> created_{new std::atomic<uint32_t>[created_buckets]()};
  parley::PerLoop<LoopNodes> loops_state_;
  // The module's tables before the map store (nodes, affiliations,
  // subscriptions, items), moved once at start, each dropped once empty.
  parley::OldTables moves_;
};

}  // namespace parley::mod_pubsub
