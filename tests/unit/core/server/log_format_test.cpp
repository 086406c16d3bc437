#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/server/log_format.hpp"

using namespace parley;

using Fields = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("log fields: key=value pairs, quoted values, other words skipped") {
  CHECK(log_fields("event=auth_failure session=3 ip=127.0.0.1 user=alice") ==
        Fields{{"event", "auth_failure"}, {"session", "3"}, {"ip", "127.0.0.1"}, {"user", "alice"}});
  CHECK(log_fields("event=stream_error detail=\"not well formed: \\\"x\\\" at 3\" ip=::1") ==
        Fields{{"event", "stream_error"}, {"detail", "not well formed: \"x\" at 3"}, {"ip", "::1"}});
  CHECK(log_fields("mod_adhoc@localhost: event=admin_add_user by=a@b/c") ==
        Fields{{"event", "admin_add_user"}, {"by", "a@b/c"}});
  CHECK(log_fields("no pairs \"quoted = here\" at all").empty());
  CHECK(log_fields("Key=upper x= y") == Fields{{"x", ""}});
}

TEST_CASE("log values round-trip through the fields") {
  for (std::string v : {"plain", "with space", "quote\"inside", "back\\slash", ""}) {
    CAPTURE(v);
    auto fields = log_fields("event=x v=" + log_value(v));
    REQUIRE(fields.size() == 2);
    CHECK(fields[1].second == v);
  }
  CHECK(log_value("line\nbreak") == "\"line break\"");
  CHECK(log_value("plain") == "plain");
}

TEST_CASE("json lines: time, level, msg and an event's fields") {
  CHECK(json_log_line("2026-12-06T08:00:00.000Z", "info", "event=stop") ==
        "{\"time\":\"2026-12-06T08:00:00.000Z\",\"level\":\"info\",\"msg\":\"event=stop\",\"event\":\"stop\"}");
  // Not an event: no fields; quotes and control characters escaped.
  CHECK(json_log_line("t", "warn", "say \"hi\"\tnow user=x") ==
        "{\"time\":\"t\",\"level\":\"warn\",\"msg\":\"say \\\"hi\\\"\\tnow user=x\"}");
  // A field never replaces time, level or msg.
  CHECK(json_log_line("t", "info", "event=x level=evil msg=evil time=evil") ==
        "{\"time\":\"t\",\"level\":\"info\",\"msg\":\"event=x level=evil msg=evil time=evil\",\"event\":\"x\"}");
  CHECK(json_log_line("t", "info", std::string("event=x v=\"\x01\"")).find("\\u0001") != std::string::npos);
}
