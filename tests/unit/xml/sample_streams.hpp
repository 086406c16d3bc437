// Test data: realistic XMPP streams (c2s, server features, s2s dialback, odd but valid XML).
#pragma once

#include <string>
#include <vector>

#include "parser_recorder.hpp"

namespace parley::xml::test {

inline const std::vector<std::string>& realistic_streams() {
  static const std::vector<std::string> streams = {
      // c2s after TLS: SASL, bind, roster, messages.
      std::string(kClientHeader) +
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjl"
          "xa3hkYXdMM3JmY05sQTE=</auth>\n"
          "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9ZnlrbytkMmxiYkZnT05Sdjl4a3hkYXdMM3JmY05sQTE=</response>"
          "<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony \xE2\x98\x95</resource>"
          "</bind></iq>  "
          "<iq type='get' id='roster_1'><query xmlns='jabber:iq:roster' ver=''/></iq>\r\n"
          "<presence><show>away</show><status xml:lang='de'>Gr\xC3\xBC\xC3\x9F" "e &amp; K\xC3\xBCsse</status><priority>5</priority>"
          "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>"
          "<message to='romeo@example.net/orchard' type='chat' id='m&apos;1' xml:lang='en'>"
          "<body>Wherefore art thou, Romeo? &lt;3 &#x1F339; \xF0\x9F\x8C\xB9 \xE6\x97\xA5\xE6\x9C\xAC</body>"
          "<thread parent='e0ffe42b28561960c6b12b944a092794b9683a38'>0e3141cd80894871a68e6fe6b1ec56fa</thread>"
          "<active xmlns='http://jabber.org/protocol/chatstates'/>"
          "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>"
          "<p style='font-weight:bold'>Wherefore <em>art</em> thou?</p></body></html>"
          "<x xmlns='jabber:x:oob' xmlns:e='urn:example:ext' e:flag=\"a&quot;b\"><url>https://example.com/?a=1&amp;b=2</url></x>"
          "</message>"
          " "
          "<iq type='result' id='disco1' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'>"
          "<identity category='client' type='pc' name='Gajim'/><feature var='http://jabber.org/protocol/caps'/>"
          "</query></iq>"
          "<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='5'/>"
          "</stream:stream>",
      // Server features and errors, the stream prefix inside stanzas.
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stream:stream xmlns=\"jabber:client\" "
      "xmlns:stream=\"http://etherx.jabber.org/streams\" from=\"example.com\" id=\"++TR84Sm6A3hnt3Q065SnAbbk3Y=\" "
      "version=\"1.0\" xml:lang=\"en\">\n"
      "<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls>"
      "<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"
      "</mechanisms></stream:features>\n"
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
      "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Replaced by new connection</text></stream:error>"
      "</stream:stream>",
      // s2s with a dialback prefix on the root.
      "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' "
      "xmlns:db='jabber:server:dialback' to='example.net' from='example.org' version='1.0'>"
      "<db:result from='example.org' to='example.net'>b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</db:result>"
      "<db:verify from='example.org' to='example.net' id='417GAF25'>b48353</db:verify>"
      "<message from='a@example.org' to='b@example.net'><body>\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82</body>"
      "<db:result type='valid'/></message>",
      // Unprefixed root, CDATA, character references, odd whitespace, deep nesting.
      "<stream xmlns='http://etherx.jabber.org/streams' xmlns:c='jabber:client'>"
      "<c:message><c:body><![CDATA[<b>bold</b> ]]]]><![CDATA[> &amp;]]>&#60;&#x3e;&#9;tab\r\nline</c:body></c:message>"
      "<c:iq type='get'><a xmlns='urn:a'><b><c><d><e><f><g><h>deep</h></g></f></e></d></c></b></a></c:iq>"
      "<c:presence \n\tto = \"x@y\" />\t \n",
  };
  return streams;
}

}  // namespace parley::xml::test
