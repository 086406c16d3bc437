// A broadcast serialized once (core/router/router_fanout.cpp): the splice of
// each recipient's 'to' into the shared bytes, and the element a recipient's
// delivery makes or borrows. The routing itself (hooks, loops, stream
// management, CSI) is tested end to end in tests/integration/test_mod_muc_fanout.py.
#include <doctest/doctest.h>

#include "core/modules/host_api_out_bytes.hpp"
#include "core/modules/hooks.hpp"
#include "core/modules/module_manager.hpp"
#include "core/router/router.hpp"
#include "core/stanza/namespaces.hpp"
#include "xml/serializer.hpp"

using namespace parley;

namespace {

const std::string kClient(ns::client);

xml::Element groupchat() {
  xml::Element m("message", kClient);
  m.set_attr("from", "room@conference.example.com/nick").set_attr("type", "groupchat").set_attr("id", "m1");
  m.add_child("body", kClient).add_text("hello & <bye>");
  m.add_child("occupant-id", "urn:xmpp:occupant-id:0").set_attr("id", "x1");
  return m;
}

std::string serialized(const xml::Element& e) {
  xml::SerializeContext ctx;
  ctx.default_ns = ns::client;
  return xml::serialize(e, ctx);
}

// What the ordinary path writes for `to`: the stanza with 'to' set, 'to'
// first among the attributes (where the splice puts it).
std::string expected_for(const std::string& to) {
  xml::Element m("message", kClient);
  m.set_attr("to", to);
  const xml::Element original = groupchat();
  for (const auto& a : original.attrs()) m.set_attr(a.name, a.value);
  m.add_child("body", kClient).add_text("hello & <bye>");
  m.add_child("occupant-id", "urn:xmpp:occupant-id:0").set_attr("id", "x1");
  return serialized(m);
}

}  // namespace

TEST_CASE("every recipient's bytes are the shared ones with its own 'to', escaped") {
  xml::Element m = groupchat();
  m.set_attr("to", "someone@else/dropped");  // a 'to' given is replaced
  auto shared = SharedStanza::make(m);
  REQUIRE(shared != nullptr);
  CHECK(shared->head == "<message");
  CHECK_FALSE(shared->stanza.has_attr("to"));
  for (std::string to : {"alice@example.com/phone", "bob@example.com/it's <&> \"here\""}) {
    Delivery d(shared, to);
    std::string scratch;
    std::string_view wire = d.wire(scratch);
    CHECK(wire == expected_for(to));
    CHECK(d.wire_size() == wire.size());
    CHECK(d.bytes.empty());  // nothing kept per recipient
  }
  // The shared serialization is made once and not changed by the recipients.
  CHECK(shared->head + shared->tail == serialized(shared->stanza));
}

TEST_CASE("an empty element and a presence splice too") {
  xml::Element p("presence", kClient);
  auto shared = SharedStanza::make(p);
  REQUIRE(shared != nullptr);
  Delivery d(shared, "a@b/c");
  std::string scratch;
  CHECK(d.wire(scratch) == "<presence to='a@b/c'/>");
}

TEST_CASE("a recipient's element is made only when asked for, or borrowed while lent") {
  xml::Element m = groupchat();
  auto shared = SharedStanza::make(m);
  REQUIRE(shared != nullptr);
  Delivery d(shared, "alice@example.com/phone");
  CHECK_FALSE(d.made);
  CHECK(d.peek().name() == "message");  // no element made for a look at the name
  CHECK_FALSE(d.made);
  xml::Element& own = d.element();
  CHECK(d.made);
  CHECK(own.attr("to") == "alice@example.com/phone");
  xml::Element expected = groupchat();
  expected.set_attr("to", "alice@example.com/phone");
  CHECK(serialized(own) == serialized(expected));
  // Changing the recipient's own element leaves the shared one alone.
  own.set_attr("id", "changed");
  CHECK(shared->stanza.attr("id") == "m1");
  Delivery other(shared, "bob@example.com/home");
  CHECK(other.element().attr("id") == "m1");
}

TEST_CASE("an ordinary delivery is unchanged: its bytes, its element") {
  Delivery d(groupchat());
  std::string scratch;
  CHECK(d.wire(scratch) == d.bytes);
  CHECK(d.wire_size() == d.bytes.size());
  CHECK(&d.element() == &d.stanza);
  CHECK(&d.peek() == &d.stanza);
}

// module.h stanza_out_bytes (ABI 1.7): what an outgoing filter keeps of a
// broadcast's delivery (stream management's unacked queue, CSI's held
// stanzas) refers to the shared serialization while the lent element is
// unchanged; a change to that element (not to one the filter built for
// itself) makes it a serialization of its own.
TEST_CASE("a filter keeps a reference to the broadcast's bytes while the lent element is unchanged") {
  xml::Element m = groupchat();
  auto shared = SharedStanza::make(m);
  REQUIRE(shared != nullptr);
  const std::string to = "bob@example.com/it's <here>";
  xml::Element lent = shared->stanza;
  lent.set_attr("to", to);
  auto* handle = reinterpret_cast<parley_element*>(&lent);
  const parley_host_api* api = host_api();
  REQUIRE(PARLEY_HOST_HAS(api, out_bytes_release));
  auto text_of = [&](const parley_out_bytes* b, size_t expected_parts) {
    parley_str parts[3];
    REQUIRE(api->out_bytes_parts(b, parts, 3) == expected_parts);
    std::string text;
    for (size_t i = 0; i < expected_parts; ++i) text.append(parts[i].ptr, parts[i].len);
    return text;
  };
  Delivery d(shared, to);
  std::string scratch;
  const std::string wire(d.wire(scratch));

  parley_out_bytes* kept = nullptr;
  {
    MutationScope scope(&lent);
    OutLentScope lending(lent, shared, to);
    kept = api->stanza_out_bytes(nullptr, handle);
    parley_str parts[3];
    REQUIRE(api->out_bytes_parts(kept, parts, 3) == 3);
    CHECK(parts[0].ptr == shared->head.data());  // the shared bytes themselves, not a copy
    CHECK(parts[2].ptr == shared->tail.data());
    CHECK(text_of(kept, 3) == wire);

    // An element the filter builds for itself (mod_csi's wake-up notice) does
    // not count as a change of the lent one.
    parley_element* notice = api->element_new(to_pstr("wake"), to_pstr("urn:parley:wake:0"));
    api->element_set_attr(notice, to_pstr("reason"), to_pstr("csi"));
    api->element_add_child(notice, api->element_clone(handle));
    api->element_free(notice);
    parley_out_bytes* still = api->stanza_out_bytes(nullptr, handle);
    CHECK(text_of(still, 3) == wire);
    api->out_bytes_release(still);

    // A change inside the lent element (a child's attribute) does: its own serialization.
    api->element_set_attr(api->element_child_at(handle, 1), to_pstr("id"), to_pstr("changed"));
    parley_out_bytes* own = api->stanza_out_bytes(nullptr, handle);
    CHECK(text_of(own, 1) == serialized(lent));
    CHECK(text_of(own, 1).find("changed") != std::string::npos);
    api->out_bytes_release(own);
  }
  // Outside a filter's call (another element, another event): serialized.
  parley_out_bytes* outside = api->stanza_out_bytes(nullptr, handle);
  CHECK(text_of(outside, 1) == serialized(lent));
  api->out_bytes_release(outside);
  // The kept reference outlives the broadcast and its deliveries.
  shared.reset();
  CHECK(text_of(kept, 3) == wire);
  api->out_bytes_release(kept);
  api->out_bytes_release(nullptr);
}
