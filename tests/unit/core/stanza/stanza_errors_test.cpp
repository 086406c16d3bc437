#include <doctest/doctest.h>

#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_errors.hpp"
#include "xml/serializer.hpp"

using namespace parley;

TEST_CASE("stanza error: swaps addresses, keeps payload, adds the condition (RFC 6120 8.3)") {
  xml::Element iq("iq", "jabber:client");
  iq.set_attr("from", "alice@localhost/a").set_attr("to", "localhost").set_attr("id", "1").set_attr("type", "get");
  iq.add_child("query", "urn:x");
  xml::Element reply = make_stanza_error(iq, "service-unavailable");
  CHECK(reply.attr("from") == "localhost");
  CHECK(reply.attr("to") == "alice@localhost/a");
  CHECK(reply.attr("type") == "error");
  CHECK(reply.attr("id") == "1");
  CHECK(reply.find_child("query", "urn:x") != nullptr);
  const xml::Element* error = reply.find_child("error");
  REQUIRE(error);
  CHECK(error->attr("type") == "cancel");
  CHECK(error->find_child("service-unavailable", ns::stanza_errors) != nullptr);
}

TEST_CASE("stanza error types per RFC 6120 8.3.3") {
  CHECK(default_error_type("bad-request") == "modify");
  CHECK(default_error_type("jid-malformed") == "modify");
  CHECK(default_error_type("not-authorized") == "auth");
  CHECK(default_error_type("forbidden") == "auth");
  CHECK(default_error_type("resource-constraint") == "wait");
  CHECK(default_error_type("item-not-found") == "cancel");
  CHECK(default_error_type("service-unavailable") == "cancel");
}

TEST_CASE("iq result mirrors the request") {
  xml::Element iq("iq", "jabber:client");
  iq.set_attr("from", "a@h/r").set_attr("to", "h").set_attr("id", "x7").set_attr("type", "get");
  xml::Element result = make_iq_result(iq);
  CHECK(result.attr("type") == "result");
  CHECK(result.attr("id") == "x7");
  CHECK(result.attr("to") == "a@h/r");
  CHECK(result.attr("from") == "h");
  CHECK(result.child_count() == 0);
}
