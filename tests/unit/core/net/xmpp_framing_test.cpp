// RFC 7395 framing: <open/>/<close/> to and from the stream header and end,
// one element per outgoing message, each declaring its namespace.
#include "core/net/xmpp_framing.hpp"

#include <doctest/doctest.h>

using namespace parley::framing;

TEST_CASE("<open/> becomes a stream header with its to, version and xml:lang") {
  Inbound in = translate_in(
      "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0' xml:lang='en'/>");
  CHECK(in.kind == InKind::open);
  CHECK(in.translated ==
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' "
        "version='1.0' xml:lang='en'>");
  // Values are escaped again: nothing of the peer's text becomes markup.
  Inbound evil = translate_in("<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" to=\"a'&gt;&lt;x\"/>");
  CHECK(evil.kind == InKind::open);
  CHECK(evil.translated.find("to='a&apos;&gt;&lt;x'") != std::string::npos);
  // An XML declaration before it is allowed (a document of its own).
  CHECK(translate_in("<?xml version='1.0'?><open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='h'/>").kind ==
        InKind::open);
}

TEST_CASE("<close/> becomes the stream's end") {
  Inbound in = translate_in(" <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/> ");
  CHECK(in.kind == InKind::close);
  CHECK(in.translated == "</stream:stream>");
}

TEST_CASE("framing elements in another namespace, malformed, with children or a DOCTYPE are invalid") {
  CHECK(translate_in("<open xmlns='jabber:client' to='h'/>").kind == InKind::invalid);
  CHECK(translate_in("<open to='h'/>").kind == InKind::invalid);
  CHECK(translate_in("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='h'>").kind == InKind::invalid);
  CHECK(translate_in("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'><x/></open>").kind == InKind::invalid);
  CHECK(translate_in("<!DOCTYPE open [<!ENTITY a 'b'>]><open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='&a;'/>")
            .kind != InKind::open);
  CHECK(translate_in("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' " + std::string(5000, ' ') + "/>").kind ==
        InKind::invalid);
}

TEST_CASE("stanzas pass as they are; whitespace is ignored") {
  CHECK(translate_in("<message xmlns='jabber:client'/>").kind == InKind::stanza);
  CHECK(translate_in("<opener/>").kind == InKind::stanza);
  CHECK(translate_in("garbage").kind == InKind::stanza);
  CHECK(translate_in(" \r\n\t").kind == InKind::ignore);
  CHECK(translate_in("").kind == InKind::ignore);
}

TEST_CASE("outgoing: the header becomes <open/>, each element a message declaring its namespace") {
  Outbound out;
  std::vector<std::string> m;
  out.split("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
            "id='abc' from='localhost' version='1.0' xml:lang='en'>"
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
            "</mechanisms></stream:features>",
            m);
  REQUIRE(m.size() == 2);
  CHECK(m[0] ==
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='abc' from='localhost' version='1.0' xml:lang='en'/>");
  CHECK(m[1] ==
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms "
        "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>");
  m.clear();
  out.split("<message to='a@b' id=' xmlns=&apos;x&apos;'><body>1 &lt; 2 &gt; 0</body></message> "
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><presence/>",
            m);
  REQUIRE(m.size() == 3);
  CHECK(m[0] == "<message xmlns='jabber:client' to='a@b' id=' xmlns=&apos;x&apos;'><body>1 &lt; 2 &gt; 0</body></message>");
  CHECK(m[1] == "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
  CHECK(m[2] == "<presence xmlns='jabber:client'/>");
  m.clear();
  out.split("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>", m);
  REQUIRE(m.size() == 2);
  CHECK(m[0] ==
        "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-well-formed "
        "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
  CHECK(m[1] == "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
  CHECK(out.empty());
}

TEST_CASE("outgoing: an element cut between writes waits for its end; whitespace is not sent") {
  const std::string input = "<iq type='result' id='a&gt;b'><query xmlns='jabber:iq:roster'><item jid='x@y'/></query></iq>"
                            " <message><body>hi</body></message>";
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Outbound out;
    std::vector<std::string> m;
    out.split(input.substr(0, cut), m);
    out.split(input.substr(cut), m);
    REQUIRE(m.size() == 2);
    CHECK(m[0] == "<iq xmlns='jabber:client' type='result' id='a&gt;b'><query xmlns='jabber:iq:roster'><item jid='x@y'/>"
                  "</query></iq>");
    CHECK(m[1] == "<message xmlns='jabber:client'><body>hi</body></message>");
    CHECK(out.empty());
  }
  Outbound out;
  std::vector<std::string> m;
  out.split(" ", m);
  CHECK(m.empty());
}
