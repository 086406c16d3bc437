#include <doctest/doctest.h>

#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_log.hpp"

using namespace parley;

TEST_CASE("stanza summary: the start tag and the payload's name, never the content") {
  xml::Element message("message", std::string(ns::client));
  message.set_attr("to", "bob@localhost/b").set_attr("type", "chat").set_attr("id", "it's <1>");
  message.add_child("body", std::string(ns::client)).add_text("a secret body");
  CHECK(stanza_summary(message) ==
        "<message to='bob@localhost/b' type='chat' id='it&apos;s &lt;1&gt;'> {jabber:client}body");

  xml::Element iq("iq", std::string(ns::client));
  iq.set_attr("type", "get").set_attr("id", "p");
  iq.add_child("ping", std::string(ns::ping));
  CHECK(stanza_summary(iq) == "<iq type='get' id='p'> {urn:xmpp:ping}ping");

  // Outside jabber:client the element's namespace is shown.
  xml::Element auth("auth", std::string(ns::sasl));
  auth.set_attr("mechanism", "PLAIN");
  auth.add_text("AGFsaWNlAHNlY3JldA==");
  CHECK(stanza_summary(auth) == "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>");
}

TEST_CASE("elements that may carry a secret are recognised") {
  CHECK(carries_credentials(xml::Element("auth", std::string(ns::sasl))));
  CHECK(carries_credentials(xml::Element("response", std::string(ns::sasl))));
  xml::Element reg("iq", std::string(ns::client));
  reg.set_attr("type", "set");
  reg.add_child("query", "jabber:iq:register").add_child("password", "jabber:iq:register").add_text("pw");
  CHECK(carries_credentials(reg));
  xml::Element message("message", std::string(ns::client));
  message.add_child("body", std::string(ns::client)).add_text("hello");
  CHECK_FALSE(carries_credentials(message));
}
