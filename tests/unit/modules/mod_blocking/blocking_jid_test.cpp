// mod_blocking's matching: which item blocks which address (XEP-0191
// §"JID Matching", after XEP-0016 §2.1). Parsing and preparation are the
// host's (parley::Jid, tested in tests/unit/sdk/jid_test.cpp and the core's
// jid tests): items and addresses here are already prepared.
#include <doctest/doctest.h>

#include "blocking_jid.hpp"

using mod_blocking::item_blocks;
using mod_blocking::match_forms;
using mod_blocking::unavailable_targets;

namespace {

parley::Jid jid(const char* prepared) { return parley::Jid::prepared(prepared); }

// Whether blocking `item` (prepared) blocks `address`.
bool blocks(const char* item, const char* address) { return item_blocks(jid(item).full(), jid(address)); }

}  // namespace

TEST_CASE("the prepared parts a match is built from") {
  parley::Jid odd = jid("a@b.example/c@d/e");  // the first '/' starts the resource
  CHECK(odd.local() == "a");
  CHECK(odd.resource() == "c@d/e");
  CHECK(jid("example.com/a@b").local().empty());
}

TEST_CASE("a full JID item blocks only that resource") {
  CHECK(blocks("romeo@montague.net/orchard", "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "romeo@montague.net/garden"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "romeo@montague.net"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "montague.net/orchard"));
  CHECK_FALSE(blocks("romeo@montague.net/orchard", "romeo@montague.net/Orchard"));  // resources keep case
}

TEST_CASE("a bare JID item blocks any resource of that user") {
  CHECK(blocks("romeo@montague.net", "romeo@montague.net"));
  CHECK(blocks("romeo@montague.net", "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks("romeo@montague.net", "benvolio@montague.net"));
  CHECK_FALSE(blocks("romeo@montague.net", "montague.net"));
  CHECK_FALSE(blocks("romeo@montague.net", "romeo@montague.org"));
  CHECK_FALSE(blocks("romeo@montague.net", "romeo@sub.montague.net"));
}

TEST_CASE("a domain/resource item blocks only that resource at that domain") {
  CHECK(blocks("montague.net/orchard", "montague.net/orchard"));
  // XEP-0016 compares the address's domain/resource form: any user's.
  CHECK(blocks("montague.net/orchard", "romeo@montague.net/orchard"));
  CHECK_FALSE(blocks("montague.net/orchard", "montague.net"));
  CHECK_FALSE(blocks("montague.net/orchard", "romeo@montague.net"));
  CHECK_FALSE(blocks("montague.net/orchard", "montague.net/garden"));
}

TEST_CASE("a domain item blocks the domain, its users, its resources and its subdomains") {
  CHECK(blocks("montague.net", "montague.net"));
  CHECK(blocks("montague.net", "romeo@montague.net"));
  CHECK(blocks("montague.net", "romeo@montague.net/orchard"));
  CHECK(blocks("montague.net", "montague.net/orchard"));
  CHECK(blocks("montague.net", "chat.montague.net"));
  CHECK(blocks("montague.net", "friar@cell.chat.montague.net/x"));
  CHECK_FALSE(blocks("montague.net", "notmontague.net"));
  CHECK_FALSE(blocks("montague.net", "montague.net.example"));
  CHECK_FALSE(blocks("chat.montague.net", "montague.net"));
  CHECK_FALSE(blocks("montague.net", "capulet.com"));
}

TEST_CASE("match_forms lists the address's forms in XEP-0016 order") {
  auto forms = match_forms(jid("romeo@chat.montague.net/orchard"));
  std::vector<std::string> expected{"romeo@chat.montague.net/orchard", "romeo@chat.montague.net",
                                    "chat.montague.net/orchard", "chat.montague.net", "montague.net", "net"};
  CHECK(forms == expected);
  CHECK(match_forms(jid("montague.net")) == std::vector<std::string>{"montague.net", "net"});
  // IP literals have no parent domains.
  CHECK(match_forms(jid("127.0.0.1")) == std::vector<std::string>{"127.0.0.1"});
}

TEST_CASE("unavailable presence on a block goes to the subscribed contacts the items cover") {
  using V = std::vector<std::string>;
  const V subscribed{"romeo@montague.net", "tybalt@capulet.net", "nurse@verona.example"};
  // A user item: only if subscribed; a full JID keeps its resource.
  CHECK(unavailable_targets({"romeo@montague.net"}, subscribed) == V{"romeo@montague.net"});
  CHECK(unavailable_targets({"romeo@montague.net/orchard"}, subscribed) == V{"romeo@montague.net/orchard"});
  CHECK(unavailable_targets({"benvolio@montague.net", "paris@verona.example/garden"}, subscribed).empty());
  // A domain item: its subscribed contacts, subdomains included; an address of the
  // domain's own (domain/resource) names no contact.
  CHECK(unavailable_targets({"capulet.net"}, subscribed) == V{"tybalt@capulet.net"});
  CHECK(unavailable_targets({"example"}, subscribed) == V{"nurse@verona.example"});
  CHECK(unavailable_targets({"montague.net/orchard"}, subscribed).empty());
  // Each address once, in the items' order.
  CHECK(unavailable_targets({"capulet.net", "tybalt@capulet.net", "romeo@montague.net"}, subscribed) ==
        V{"tybalt@capulet.net", "romeo@montague.net"});
  CHECK(unavailable_targets({"romeo@montague.net"}, {}).empty());
}
