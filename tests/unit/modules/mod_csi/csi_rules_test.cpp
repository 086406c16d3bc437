// What mod_csi holds for an inactive client and what it lets through.
#include <chrono>
#include <regex>

#include <doctest/doctest.h>

#include "csi_rules.hpp"

using namespace parley::csi;

namespace {

const ChildName body{"body", ns_client};
const ChildName subject{"subject", ns_client};
const ChildName thread{"thread", ns_client};
const ChildName composing{"composing", "http://jabber.org/protocol/chatstates"};
const ChildName receipt{"received", "urn:xmpp:receipts"};
const ChildName marker{"displayed", "urn:xmpp:chat-markers:0"};
const ChildName pep_event{"event", "http://jabber.org/protocol/pubsub#event"};
const ChildName omemo{"encrypted", "eu.siacs.conversations.axolotl"};
const ChildName omemo2{"encrypted", "urn:xmpp:omemo:2"};
const ChildName openpgp{"openpgp", "urn:xmpp:openpgp:0"};
const ChildName eme{"encryption", "urn:xmpp:eme:0"};
const ChildName legacy_pgp{"x", "jabber:x:encrypted"};
const ChildName propose{"propose", "urn:xmpp:jingle-message:0"};
const ChildName retract1{"retract", "urn:xmpp:jingle-message:1"};

StanzaShape shape(std::string_view name, std::string_view type, std::vector<ChildName> children = {}) {
  StanzaShape s;
  s.name = name;
  s.type = type;
  s.children = std::move(children);
  return s;
}
StanzaShape message(std::string_view type, std::vector<ChildName> children) {
  return shape("message", type, std::move(children));
}
StanzaShape carbon(std::string_view inner_type, std::vector<ChildName> inner) {
  StanzaShape s = shape("message", "", {ChildName{"received", ns_carbons}});
  s.forwarded = true;
  s.forwarded_type = inner_type;
  s.forwarded_children = std::move(inner);
  return s;
}

}  // namespace

TEST_CASE("presence updates wait, subscriptions and errors do not") {
  Rules r;
  CHECK(r.classify(shape("presence", "")) == Urgency::hold);
  CHECK(r.classify(shape("presence", "unavailable")) == Urgency::hold);
  for (std::string_view type : {"subscribe", "subscribed", "unsubscribe", "unsubscribed", "error", "probe"})
    CHECK(r.classify(shape("presence", type)) == Urgency::urgent);
}

TEST_CASE("an iq request is urgent, an answer passes without flushing") {
  Rules r;
  CHECK(r.classify(shape("iq", "get")) == Urgency::urgent);
  CHECK(r.classify(shape("iq", "set")) == Urgency::urgent);
  CHECK(r.classify(shape("iq", "result")) == Urgency::pass);
  CHECK(r.classify(shape("iq", "error")) == Urgency::pass);
}

TEST_CASE("a message with a body or a subject is urgent") {
  Rules r;
  CHECK(r.classify(message("chat", {body})) == Urgency::urgent);
  CHECK(r.classify(message("", {body})) == Urgency::urgent);
  CHECK(r.classify(message("normal", {composing, body, thread})) == Urgency::urgent);
  CHECK(r.classify(message("groupchat", {body})) == Urgency::urgent);
  CHECK(r.classify(message("groupchat", {subject})) == Urgency::urgent);
  // A body in another namespace is not the message's text.
  CHECK(r.classify(message("chat", {ChildName{"body", "urn:example"}})) == Urgency::hold);
}

TEST_CASE("chat states, receipts, markers and payload-less messages wait") {
  Rules r;
  CHECK(r.classify(message("chat", {composing})) == Urgency::hold);
  CHECK(r.classify(message("chat", {receipt})) == Urgency::hold);
  CHECK(r.classify(message("chat", {marker, thread})) == Urgency::hold);
  CHECK(r.classify(message("chat", {})) == Urgency::hold);
  CHECK(r.classify(message("normal", {thread})) == Urgency::hold);
}

TEST_CASE("headlines wait, even with a body") {
  Rules r;
  CHECK(r.classify(message("headline", {pep_event})) == Urgency::hold);
  CHECK(r.classify(message("headline", {body})) == Urgency::hold);
  // ... unless they carry an urgent payload.
  CHECK(r.classify(message("headline", {propose})) == Urgency::urgent);
}

TEST_CASE("a message error is urgent: something the user sent did not arrive") {
  Rules r;
  CHECK(r.classify(message("error", {ChildName{"error", ns_client}})) == Urgency::urgent);
}

TEST_CASE("encrypted payloads without a body are urgent") {
  Rules r;
  for (const ChildName& c : {omemo, omemo2, openpgp, eme, legacy_pgp})
    CHECK(r.classify(message("chat", {c})) == Urgency::urgent);
  // The namespace alone is not enough where the element is named.
  CHECK(r.classify(message("chat", {ChildName{"header", "eu.siacs.conversations.axolotl"}})) == Urgency::hold);
}

TEST_CASE("a call proposal (Jingle Message Initiation) is urgent, any element of the namespace") {
  Rules r;
  CHECK(r.classify(message("chat", {propose})) == Urgency::urgent);
  CHECK(r.classify(message("chat", {retract1})) == Urgency::urgent);
}

TEST_CASE("a carbon copy is judged by the message it carries") {
  Rules r;
  CHECK(r.classify(carbon("chat", {body})) == Urgency::urgent);
  CHECK(r.classify(carbon("chat", {composing})) == Urgency::hold);
  CHECK(r.classify(carbon("chat", {omemo})) == Urgency::urgent);
}

TEST_CASE("configured important payloads") {
  auto any = parse_payload("{urn:example:important}");
  auto named = parse_payload("{urn:example:priority}super-important");
  REQUIRE(any);
  REQUIRE(named);
  CHECK(any->ns == "urn:example:important");
  CHECK(any->name.empty());
  CHECK(named->ns == "urn:example:priority");
  CHECK(named->name == "super-important");
  Rules r({*any, *named});
  CHECK(r.classify(message("chat", {ChildName{"whatever", "urn:example:important"}})) == Urgency::urgent);
  CHECK(r.classify(message("chat", {ChildName{"super-important", "urn:example:priority"}})) == Urgency::urgent);
  CHECK(r.classify(message("chat", {ChildName{"other", "urn:example:priority"}})) == Urgency::hold);
  CHECK(Rules().classify(message("chat", {ChildName{"whatever", "urn:example:important"}})) == Urgency::hold);
}

TEST_CASE("malformed important payloads are refused") {
  CHECK_FALSE(parse_payload(""));
  CHECK_FALSE(parse_payload("urn:example"));
  CHECK_FALSE(parse_payload("{}name"));
  CHECK_FALSE(parse_payload("{urn:example"));
  CHECK_FALSE(parse_payload("{urn:example}a b"));
}

TEST_CASE("only available and unavailable presence is keyed by its sender") {
  CHECK(presence_key("presence", "", "bob@example.org/home") == "bob@example.org/home");
  CHECK(presence_key("presence", "unavailable", "bob@example.org/home") == "bob@example.org/home");
  CHECK(presence_key("presence", "subscribe", "bob@example.org") == "");
  CHECK(presence_key("message", "", "bob@example.org/home") == "");
}

TEST_CASE("the delay stamp is an XEP-0082 DateTime in UTC with milliseconds") {
  using namespace std::chrono;
  system_clock::time_point t{milliseconds(1031699305123LL)};
  CHECK(delay_stamp(t) == "2002-09-10T23:08:25.123Z");
  CHECK(std::regex_match(delay_stamp(system_clock::now()),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
}
