// StreamParser: stream header, element trees, stream close, restricted XML and the error conditions.
#include <doctest/doctest.h>

#include "parser_recorder.hpp"

using namespace parley::xml;
using parley::xml::test::kClientHeader;
using parley::xml::test::Recorder;

namespace {

struct Fixture {
  Limits limits;
  Recorder rec;
  StreamParser parser{rec, limits};
};

std::string with_header(std::string_view body) { return std::string(kClientHeader) + std::string(body); }

// Feeds `input` whole and expects exactly one error, of the given condition, as the last event.
void expect_error(std::string_view input, ParseError expected) {
  CAPTURE(input);
  Fixture f;
  CHECK_FALSE(f.parser.feed(input));
  REQUIRE(f.rec.errors == 1);
  CHECK(f.rec.last().rfind("error " + std::string(condition_name(expected)), 0) == 0);
  CHECK_FALSE(f.parser.has_live_parser());
  // And byte by byte, the same.
  CHECK(parley::xml::test::parse_bytewise(input) == parley::xml::test::parse_whole(input));
}

}  // namespace

TEST_CASE("condition names are the RFC 6120 stream error conditions") {
  CHECK(condition_name(ParseError::not_well_formed) == "not-well-formed");
  CHECK(condition_name(ParseError::restricted_xml) == "restricted-xml");
  CHECK(condition_name(ParseError::policy_violation) == "policy-violation");
  CHECK(condition_name(ParseError::unsupported_encoding) == "unsupported-encoding");
  CHECK(condition_name(ParseError::bad_namespace_prefix) == "bad-namespace-prefix");
  CHECK(condition_name(ParseError::bad_format) == "bad-format");
  CHECK(condition_name(ParseError::invalid_xml) == "invalid-xml");
}

TEST_CASE("stream header is reported with its namespaces and attributes") {
  Fixture f;
  CHECK(f.parser.feed(kClientHeader));
  REQUIRE(f.rec.headers.size() == 1);
  const StreamHeader& h = f.rec.headers[0];
  CHECK(h.name == "stream");
  CHECK(h.xmlns == "http://etherx.jabber.org/streams");
  CHECK(h.default_xmlns == "jabber:client");
  CHECK(h.attr("to") == "example.com");
  CHECK(h.attr("version") == "1.0");
  CHECK(h.attr("xml:lang") == "en");
  CHECK(h.attr("from").empty());
  CHECK(h.attrs.size() == 3);  // namespace declarations are not attributes
  CHECK(f.rec.errors == 0);
}

TEST_CASE("header without XML declaration, with an unprefixed root, and with encoding='utf-8'") {
  {
    Fixture f;
    CHECK(f.parser.feed("<stream xmlns='http://etherx.jabber.org/streams'><x/>"));
    REQUIRE(f.rec.headers.size() == 1);
    CHECK(f.rec.headers[0].name == "stream");
    CHECK(f.rec.headers[0].default_xmlns == "http://etherx.jabber.org/streams");
    REQUIRE(f.rec.stanzas.size() == 1);
    CHECK(f.rec.stanzas[0].xmlns() == "http://etherx.jabber.org/streams");
  }
  {
    Fixture f;
    CHECK(f.parser.feed("<?xml version='1.0' encoding='utf-8'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                        "xmlns='jabber:server'>"));
    CHECK(f.rec.headers.size() == 1);
    CHECK(f.rec.headers[0].default_xmlns == "jabber:server");
  }
  {
    Fixture f;
    CHECK(f.parser.feed("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"));
    CHECK(f.rec.headers.size() == 1);
    CHECK(f.rec.errors == 0);
  }
}

TEST_CASE("stanzas become element trees") {
  Fixture f;
  CHECK(f.parser.feed(with_header(
      "<message to='juliet@example.com/balcony' type='chat' xml:lang='fr' id='a&amp;b&apos;&quot;&lt;&gt;'>"
      "<body>Tr&#xE8;s bien &amp; <![CDATA[<cdata>]]> \xE2\x9C\x93 &#x1F600;</body>"
      "<x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value></field></x>"
      "<thread xmlns:p='urn:p' p:parent='t1' plain='v'>t2</thread>"
      "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>hi</p></body></html>"
      "<empty xmlns=''/>"
      "</message>")));
  REQUIRE(f.rec.stanzas.size() == 1);
  const Element& m = f.rec.stanzas[0];
  CHECK(m.name() == "message");
  CHECK(m.xmlns() == "jabber:client");
  CHECK(m.attr("to") == "juliet@example.com/balcony");
  CHECK(m.attr("xml:lang") == "fr");
  CHECK(m.attr("id") == "a&b'\"<>");
  CHECK(m.child_count() == 5);
  const Element* body = m.find_child("body", "jabber:client");
  REQUIRE(body);
  // Entities, character references and CDATA merge into one text node.
  REQUIRE(body->nodes().size() == 1);
  CHECK(body->text() == "Tr\xC3\xA8s bien & <cdata> \xE2\x9C\x93 \xF0\x9F\x98\x80");
  const Element* x = m.find_child("x", "jabber:x:data");
  REQUIRE(x);
  CHECK(x->find_child("field")->child_text("value") == "1");
  CHECK(x->find_child("field")->xmlns() == "jabber:x:data");
  const Element* thread = m.find_child("thread");
  REQUIRE(thread);
  CHECK(thread->attr("{urn:p}parent") == "t1");
  CHECK(thread->attr("plain") == "v");
  CHECK(thread->text() == "t2");
  const Element* html = m.find_child("html");
  REQUIRE(html);
  CHECK(html->xmlns() == "http://jabber.org/protocol/xhtml-im");
  CHECK(html->first_child()->xmlns() == "http://www.w3.org/1999/xhtml");
  CHECK(html->first_child()->first_child()->xmlns() == "http://www.w3.org/1999/xhtml");
  const Element* empty = m.find_child("empty");
  REQUIRE(empty);
  CHECK(empty->xmlns().empty());
  // Children in one namespace share one copy of the URI.
  CHECK(x->find_child("field")->xmlns_ref() == x->xmlns_ref());
}

TEST_CASE("negotiation elements in the stream namespace and in their own namespaces are stanzas") {
  Fixture f;
  CHECK(f.parser.feed(with_header(
      "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
      "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>")));
  REQUIRE(f.rec.stanzas.size() == 3);
  CHECK(f.rec.stanzas[0].name() == "starttls");
  CHECK(f.rec.stanzas[0].xmlns() == "urn:ietf:params:xml:ns:xmpp-tls");
  CHECK(f.rec.stanzas[1].name() == "features");
  CHECK(f.rec.stanzas[1].xmlns() == "http://etherx.jabber.org/streams");
  CHECK(f.rec.stanzas[1].first_child()->child_text("mechanism") == "PLAIN");
  CHECK(f.rec.stanzas[2].attr("mechanism") == "PLAIN");
  CHECK(f.rec.stanzas[2].text() == "AGp1bGlldAByMG0zMG15cjBtMzA=");
}

TEST_CASE("whitespace keepalives between stanzas are fine") {
  Fixture f;
  CHECK(f.parser.feed(with_header(" \n\t\r\n<presence/> \n \n<presence/>\n")));
  CHECK(f.rec.stanzas.size() == 2);
  CHECK(f.rec.errors == 0);
  CHECK(f.parser.buffered_bytes() == 0);
}

TEST_CASE("stream close, and garbage after it is ignored") {
  Fixture f;
  CHECK(f.parser.feed(with_header("<presence/></stream:stream>garbage <not closed & <!DOCTYPE x> \xFF\xFE")));
  CHECK(f.rec.events.back() == "close");
  CHECK(f.rec.errors == 0);
  CHECK_FALSE(f.parser.has_live_parser());
  CHECK(f.parser.feed("<more/>"));  // ignored, no error
  CHECK(f.rec.events.back() == "close");
  CHECK(f.rec.stanzas.size() == 1);
}

TEST_CASE("not-well-formed") {
  expect_error(with_header("<message><body>x</message>"), ParseError::not_well_formed);
  expect_error(with_header("<message a='1' a='2'/>"), ParseError::not_well_formed);
  expect_error(with_header("<<"), ParseError::not_well_formed);
  expect_error(with_header("<message>&#1;</message>"), ParseError::not_well_formed);
  expect_error(with_header("<message>\x01</message>"), ParseError::not_well_formed);
  expect_error("hello <stream/>", ParseError::not_well_formed);
  expect_error("<a></b>", ParseError::not_well_formed);
  expect_error(with_header("<?xml version='1.0'?>"), ParseError::not_well_formed);  // declaration mid-stream
  expect_error(with_header("<message>&amp</message>"), ParseError::not_well_formed);
  // NUL is never XML; expat would even take "x\0" at the start for UTF-16LE despite being told UTF-8.
  expect_error(std::string("<\0s\0t\0", 6), ParseError::not_well_formed);
  expect_error(std::string("x\0", 2) + "<stream/>", ParseError::not_well_formed);
  expect_error(with_header("<message>") + std::string(1, '\0'), ParseError::not_well_formed);
}

TEST_CASE("restricted XML before the root") {
  expect_error("<?xml version='1.0'?><!DOCTYPE stream:stream>", ParseError::restricted_xml);
  expect_error("<!DOCTYPE stream SYSTEM 'http://example.com/evil.dtd'><stream/>", ParseError::restricted_xml);
  // Billion laughs: refused at the DOCTYPE, nothing expands.
  expect_error(
      "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
      "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
      "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
      "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>]>"
      "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&lol3;",
      ParseError::restricted_xml);
  // External entity.
  expect_error("<!DOCTYPE x [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]><x>&xxe;</x>", ParseError::restricted_xml);
  expect_error("<!-- hello --><stream/>", ParseError::restricted_xml);
  expect_error("<?xml version='1.0'?><!-- c --><stream/>", ParseError::restricted_xml);
  expect_error("<?xml-stylesheet href='a'?><stream/>", ParseError::restricted_xml);
  expect_error("<!ENTITY a 'b'><stream/>", ParseError::restricted_xml);
}

TEST_CASE("restricted XML inside the stream and inside a stanza") {
  expect_error(with_header("<!-- between stanzas -->"), ParseError::restricted_xml);
  expect_error(with_header("<?pi data?>"), ParseError::restricted_xml);
  expect_error(with_header("<message><!-- inside --></message>"), ParseError::restricted_xml);
  expect_error(with_header("<message><body><?php echo 1; ?></body></message>"), ParseError::restricted_xml);
  expect_error(with_header("<message><!DOCTYPE x></message>"), ParseError::restricted_xml);
  expect_error(with_header("<!DOCTYPE x>"), ParseError::restricted_xml);
  expect_error(with_header("<message><!ENTITY a 'b'></message>"), ParseError::restricted_xml);
  expect_error(with_header("<message>&xxe;</message>"), ParseError::restricted_xml);
  expect_error(with_header("<message to='&xxe;'/>"), ParseError::restricted_xml);
  expect_error(with_header("<message>&lol;&lol;</message>"), ParseError::restricted_xml);
}

TEST_CASE("restricted XML stops before later stanzas are delivered") {
  Fixture f;
  f.parser.feed(with_header("<message><!-- x --></message><message id='after'/>"));
  CHECK(f.rec.stanzas.empty());
  CHECK(f.rec.has_error(ParseError::restricted_xml));
  CHECK(f.rec.errors == 1);
}

TEST_CASE("unsupported-encoding") {
  expect_error("<?xml version='1.0' encoding='ISO-8859-1'?><stream/>", ParseError::unsupported_encoding);
  expect_error("<?xml version='1.0' encoding='UTF-16'?><stream/>", ParseError::unsupported_encoding);
  expect_error(std::string("\xFE\xFF\0<\0s", 6), ParseError::unsupported_encoding);  // UTF-16 BOM
  expect_error(std::string("\xFF\xFE<\0s\0", 6), ParseError::unsupported_encoding);
  expect_error(with_header("<message><body>caf\xE9</body></message>"), ParseError::unsupported_encoding);  // Latin-1
  expect_error(with_header("<message><body>\xC0\xAF</body></message>"), ParseError::unsupported_encoding);  // overlong '/'
  expect_error(with_header("<message><body>\xED\xA0\x80</body></message>"), ParseError::unsupported_encoding);  // surrogate
  expect_error(with_header("<message><body>\xF4\x90\x80\x80</body></message>"), ParseError::unsupported_encoding);  // > U+10FFFF
  expect_error(with_header("<message to='\xE2\x82'/>"), ParseError::unsupported_encoding);  // cut sequence
}

TEST_CASE("bad-namespace-prefix") {
  expect_error(with_header("<foo:message/>"), ParseError::bad_namespace_prefix);
  expect_error(with_header("<message><foo:x/></message>"), ParseError::bad_namespace_prefix);
  expect_error(with_header("<message foo:a='1'/>"), ParseError::bad_namespace_prefix);
  expect_error("<stream:stream xmlns='jabber:client'>", ParseError::bad_namespace_prefix);
  expect_error(with_header("<message xmlns:p=''/>"), ParseError::bad_namespace_prefix);
  expect_error(with_header("<message xmlns:xml='urn:other'/>"), ParseError::bad_namespace_prefix);
}

TEST_CASE("bad-format: text between stanzas") {
  expect_error(with_header("hello"), ParseError::bad_format);
  expect_error(with_header("<presence/> x <presence/>"), ParseError::bad_format);
  expect_error(with_header("<![CDATA[x]]>"), ParseError::bad_format);
  expect_error(with_header("&amp;"), ParseError::bad_format);
  Fixture f;
  f.parser.feed(with_header("<presence/>oops<presence/>"));
  CHECK(f.rec.stanzas.size() == 1);
}

TEST_CASE("after an error, input is ignored and feed() keeps returning false") {
  Fixture f;
  CHECK_FALSE(f.parser.feed(with_header("<a></b>")));
  const size_t n = f.rec.events.size();
  CHECK_FALSE(f.parser.feed("<presence/>"));
  CHECK(f.rec.events.size() == n);
  CHECK(f.rec.errors == 1);
}

TEST_CASE("stop() from inside a callback and from outside") {
  {
    Fixture f;
    f.rec.after_stanza = [&](const Element&) { f.parser.stop(); };
    CHECK(f.parser.feed(with_header("<presence/><presence/><a></b>")));
    CHECK(f.rec.stanzas.size() == 1);
    CHECK(f.rec.errors == 0);
    CHECK_FALSE(f.parser.has_live_parser());
    CHECK(f.parser.feed("<presence/>"));
    CHECK(f.rec.stanzas.size() == 1);
  }
  {
    Fixture f;
    CHECK(f.parser.feed(with_header("<message>")));
    f.parser.stop();
    CHECK_FALSE(f.parser.has_live_parser());
    CHECK(f.parser.feed("</message>"));
    CHECK(f.rec.stanzas.empty());
  }
}

TEST_CASE("an exception from a callback stops the stream and leaves feed()") {
  struct Boom {};
  {
    Fixture f;
    f.rec.after_stanza = [](const Element& e) {
      if (e.name() == "boom") throw Boom{};
    };
    CHECK_THROWS_AS(f.parser.feed(with_header("<presence/><boom/><presence/>")), Boom);
    CHECK(f.rec.stanzas.size() == 2);
    CHECK_FALSE(f.parser.has_live_parser());
    CHECK(f.parser.feed("<presence/>"));  // stopped: ignored
    CHECK(f.rec.stanzas.size() == 2);
    f.parser.reset(false);
    CHECK(f.parser.feed(with_header("<presence/>")));
    CHECK(f.rec.stanzas.size() == 3);
  }
  {
    struct ThrowOnError : StreamParser::Handler {
      void on_stream_open(const StreamHeader&) override {}
      void on_stanza(Element&&) override {}
      void on_stream_close() override {}
      void on_parse_error(ParseError, std::string_view) override { throw Boom{}; }
    } h;
    Limits limits;
    StreamParser p(h, limits);
    CHECK_THROWS_AS(p.feed(with_header("<a>\xFF")), Boom);  // raised by feed() itself
    CHECK_FALSE(p.feed("<presence/>"));
    StreamParser q(h, limits);
    CHECK_THROWS_AS(q.feed(with_header("<a></b>")), Boom);  // expat's own error
    CHECK_FALSE(q.feed("<presence/>"));
    CHECK_FALSE(q.has_live_parser());
    StreamParser r(h, limits);
    CHECK_THROWS_AS(r.feed(with_header("<!-- c --><presence/>")), Boom);  // raised inside an expat handler
    CHECK_FALSE(r.feed("<presence/>"));
    CHECK_FALSE(r.has_live_parser());
  }
}
