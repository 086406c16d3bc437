// core/export/pie_reader: XEP-0227 documents read one <user/> at a time.
#include "core/export/pie_reader.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "xml/serializer.hpp"

using namespace parley;
using parley::pie::PieUser;

namespace {

std::vector<PieUser> read_all(std::string_view doc, pie::PieLimits limits = {}) {
  std::vector<PieUser> users;
  auto r = pie::read_pie(doc, [&](PieUser&& u) {
    users.push_back(std::move(u));
    return true;
  }, limits);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().to_string()));
  // Users counts accounts: with parts, the last part of each.
  CHECK(*r == static_cast<size_t>(std::count_if(users.begin(), users.end(), [](const PieUser& u) { return u.last; })));
  return users;
}

pie::PieError error_of(std::string_view doc, pie::PieLimits limits = {}) {
  auto r = pie::read_pie(doc, [](PieUser&&) { return true; }, limits);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

constexpr std::string_view kExample =
    "<?xml version='1.0' encoding='UTF-8'?>\n"
    "<server-data xmlns='urn:xmpp:pie:0'>\n"
    "  <host jid='capulet.com'>\n"
    "    <user name='juliet' password='s3crEt'>\n"
    "      <query xmlns='jabber:iq:roster'><item jid='romeo@montague.net' name='Romeo' subscription='both'>"
    "<group>Friends</group></item></query>\n"
    "      <offline-messages><message xmlns='jabber:client' from='romeo@montague.net/orchard' type='chat'>"
    "<body>Neither, fair saint</body></message></offline-messages>\n"
    "    </user>\n"
    "    <user name='nurse'/>\n"
    "  </host>\n"
    "  <host jid='montague.net'><user name='romeo' xml:lang='en'/></host>\n"
    "</server-data>\n";

}  // namespace

TEST_CASE("the XEP's example: users in order, with their host, line and children") {
  auto users = read_all(kExample);
  REQUIRE(users.size() == 3);
  CHECK(users[0].host == "capulet.com");
  CHECK(users[0].name == "juliet");
  CHECK(users[0].line == 4);
  CHECK(users[0].user.name() == "user");
  CHECK(users[0].user.xmlns() == "urn:xmpp:pie:0");
  CHECK(users[0].user.attr("password") == "s3crEt");
  const xml::Element* roster = users[0].user.find_child("query", "jabber:iq:roster");
  REQUIRE(roster != nullptr);
  CHECK(roster->find_child("item", "jabber:iq:roster")->child_text("group", "jabber:iq:roster") == "Friends");
  // <offline-messages/> inherits the document's namespace; its messages keep jabber:client.
  const xml::Element* offline = users[0].user.find_child("offline-messages", "urn:xmpp:pie:0");
  REQUIRE(offline != nullptr);
  CHECK(offline->find_child("message", "jabber:client")->child_text("body", "jabber:client") == "Neither, fair saint");
  CHECK(users[1].name == "nurse");
  CHECK(users[1].host == "capulet.com");
  CHECK(users[2].host == "montague.net");
  CHECK(users[2].user.attr("xml:lang") == "en");
}

TEST_CASE("a user serializes and reads back the same (parleyctl sends it so)") {
  auto users = read_all(kExample);
  xml::SerializeContext sc;
  sc.default_ns = pie::kPieNs;
  sc.stream_prefix = false;
  std::string doc = "<server-data xmlns='urn:xmpp:pie:0'><host jid='capulet.com'>" + xml::serialize(users[0].user, sc) +
                    "</host></server-data>";
  auto again = read_all(doc);
  REQUIRE(again.size() == 1);
  CHECK(xml::serialize(again[0].user) == xml::serialize(users[0].user));
}

TEST_CASE("fed a byte at a time, the same users come out") {
  std::vector<std::string> names;
  pie::PieReader reader([&](PieUser&& u) {
    names.push_back(u.name);
    return true;
  });
  for (char c : kExample) REQUIRE(reader.feed(std::string_view(&c, 1)).has_value());
  REQUIRE(reader.finish().has_value());
  CHECK(names == std::vector<std::string>{"juliet", "nurse", "romeo"});
}

TEST_CASE("the namespace of XEP-0227 before 1.1 reads as urn:xmpp:pie:0") {
  auto users = read_all(
      "<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'><host jid='h'>"
      "<user name='u'><offline-messages/></user></host></server-data>");
  REQUIRE(users.size() == 1);
  CHECK(users[0].user.xmlns() == "urn:xmpp:pie:0");
  CHECK(users[0].user.find_child("offline-messages", "urn:xmpp:pie:0") != nullptr);
}

TEST_CASE("what the format does not name around users is skipped") {
  auto users = read_all(
      "<server-data xmlns='urn:xmpp:pie:0'><extra xmlns='x'><user name='no'/></extra>"
      "<host jid='h'><note xmlns='y'><user name='no'/></note><user name='yes'/></host></server-data>");
  REQUIRE(users.size() == 1);
  CHECK(users[0].name == "yes");
}

TEST_CASE("malformed documents: the error names the line") {
  struct Case {
    std::string_view doc;
    uint64_t line;
    std::string_view says;
  };
  const Case cases[] = {
      {"<server-data xmlns='urn:xmpp:pie:0'>\n<host jid='h'>\n<user name='a'>\n<x></y>", 4, "mismatched tag"},
      {"<other/>", 1, "not a XEP-0227 document"},
      {"<server-data xmlns='urn:xmpp:pie:0'>\n<host>", 2, "without a jid"},
      {"<server-data xmlns='urn:xmpp:pie:0'><host jid='h'>\n\n<user/>", 3, "without a name"},
      {"<!DOCTYPE x [<!ENTITY a 'b'>]><server-data xmlns='urn:xmpp:pie:0'/>", 1, "DOCTYPE"},
      {"<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a'>", 1, ""},  // expat: no element found
      {"<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><xi:include xmlns:xi='http://www.w3.org/2001/XInclude' "
       "href='u.xml'/></host></server-data>",
       1, "outside a file"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.doc);
    auto e = error_of(c.doc);
    CHECK(e.line == c.line);
    CHECK(e.to_string().find(c.says) != std::string::npos);
  }
}

TEST_CASE("limits: a user's bytes and depth are bounded") {
  std::string big = "<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a'><v xmlns='vcard-temp'>" +
                    std::string(5000, 'x') + "</v></user></host></server-data>";
  pie::PieLimits small;
  small.max_user_bytes = 1000;
  CHECK(error_of(big, small).message.find("larger than 1000 bytes") != std::string::npos);
  CHECK(read_all(big).size() == 1);
  std::string deep = "<server-data xmlns='urn:xmpp:pie:0'><host jid='h'><user name='a'>";
  for (int i = 0; i < 10; ++i) deep += "<d>";
  for (int i = 0; i < 10; ++i) deep += "</d>";
  deep += "</user></host></server-data>";
  pie::PieLimits shallow;
  shallow.max_depth = 5;
  CHECK(error_of(deep, shallow).message.find("nested deeper than 5") != std::string::npos);
}

TEST_CASE("a callback returning false stops the reading") {
  int seen = 0;
  auto r = pie::read_pie(kExample, [&](PieUser&&) { return ++seen < 2; });
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message == "stopped");
  CHECK(seen == 2);
}

TEST_CASE("files: XInclude'd host and user files (XEP-0227 section 4), relative to the including file") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("pie_reader_test_" + std::to_string(::getpid()));
  fs::create_directories(dir / "h.example");
  auto write = [](const fs::path& p, std::string_view text) { std::ofstream(p) << text; };
  write(dir / "main.xml",
        "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>"
        "<xi:include href='h.example.xml'/></server-data>");
  write(dir / "h.example.xml",
        "<host xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude' jid='h.example'>\n"
        "<xi:include href='h.example/a.xml'/><user name='inline'/></host>");
  write(dir / "h.example" / "a.xml", "<user xmlns='urn:xmpp:pie:0' name='a'><vCard xmlns='vcard-temp'/></user>");
  std::vector<std::string> seen;
  auto r = pie::read_pie_file((dir / "main.xml").string(), [&](PieUser&& u) {
    seen.push_back(u.host + "/" + u.name);
    return true;
  });
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().to_string()));
  CHECK(*r == 2);
  CHECK(seen == std::vector<std::string>{"h.example/a", "h.example/inline"});

  write(dir / "h.example" / "a.xml", "<user xmlns='urn:xmpp:pie:0' name='a'>\n<broken></user>");
  r = pie::read_pie_file((dir / "main.xml").string(), [](PieUser&&) { return true; });
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("h.example/a.xml: line 2") != std::string::npos);
  write(dir / "main.xml",
        "<server-data xmlns='urn:xmpp:pie:0' xmlns:xi='http://www.w3.org/2001/XInclude'>"
        "<xi:include href='/etc/passwd'/></server-data>");
  r = pie::read_pie_file((dir / "main.xml").string(), [](PieUser&&) { return true; });
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find("relative href") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("parts: a user larger than part_bytes comes in parts cut after archive and offline entries") {
  std::string doc =
      "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='big' password='pw'>"
      "<query xmlns='jabber:iq:roster'><item jid='a@localhost'/></query>"
      "<offline-messages><message xmlns='jabber:client' to='big@localhost'><body>o1</body></message>"
      "<message xmlns='jabber:client' to='big@localhost'><body>o2</body></message></offline-messages>"
      "<archive xmlns='urn:xmpp:pie:0#mam' x='y'>";
  for (int i = 0; i < 50; ++i)
    doc += "<result xmlns='urn:xmpp:mam:2' id='" + std::to_string(i) + "'><forwarded xmlns='urn:xmpp:forward:0'>"
           "<message xmlns='jabber:client'><body>entry " + std::to_string(i) + "</body></message></forwarded></result>";
  doc += "</archive><vCard xmlns='vcard-temp'><FN>Big</FN></vCard></user>"
         "<user name='small' password='pw'/></host></server-data>";
  pie::PieLimits limits;
  limits.part_bytes = 1000;
  limits.max_user_bytes = 2000;

  auto check = [&](const std::vector<PieUser>& parts) {
    REQUIRE(parts.size() > 3);
    std::vector<std::string> entries;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      CAPTURE(i);
      const PieUser& p = parts[i];
      CHECK(p.name == "big");
      CHECK(p.host == "localhost");
      CHECK(p.part == i);
      CHECK(p.last == (i + 2 == parts.size()));
      CHECK(p.line == 1);
      CHECK(*p.user.find_attr("password") == "pw");  // every part names the same user
      // The small parts come first, whole; the vCard after the archive, in the last.
      CHECK((p.user.find_child("query", "jabber:iq:roster") != nullptr) == (i == 0));
      CHECK((p.user.find_child("offline-messages", "urn:xmpp:pie:0") != nullptr) == (i == 0));
      CHECK((p.user.find_child("vCard", "vcard-temp") != nullptr) == p.last);
      const xml::Element* archive = p.user.find_child("archive", "urn:xmpp:pie:0#mam");
      REQUIRE(archive != nullptr);
      CHECK(*archive->find_attr("x") == "y");
      for (const xml::Element* r : archive->children()) entries.push_back(std::string(r->attr("id")));
    }
    REQUIRE(entries.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(entries[static_cast<size_t>(i)] == std::to_string(i));
    CHECK(parts.back().name == "small");
    CHECK(parts.back().part == 0);
    CHECK(parts.back().last);
  };
  auto whole = read_all(doc, limits);
  check(whole);
  // Where a part ends does not depend on how the input was fed.
  std::vector<PieUser> bytewise;
  pie::PieReader reader([&](PieUser&& u) {
    bytewise.push_back(std::move(u));
    return true;
  }, limits);
  for (char c : doc) REQUIRE(reader.feed(std::string_view(&c, 1)).has_value());
  REQUIRE(reader.finish().has_value());
  check(bytewise);
  REQUIRE(bytewise.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) CHECK(xml::serialize(bytewise[i].user) == xml::serialize(whole[i].user));

  // Without part_bytes the same user comes whole.
  auto one = read_all(doc);
  REQUIRE(one.size() == 2);
  CHECK(one[0].last);
  CHECK(one[0].user.find_child("archive", "urn:xmpp:pie:0#mam")->children().size() == 50);

  // What cannot be cut (one vCard) still has to fit in max_user_bytes.
  std::string photo = "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'><user name='p'>"
                      "<vCard xmlns='vcard-temp'><PHOTO>" + std::string(3000, 'A') + "</PHOTO></vCard></user></host></server-data>";
  CHECK(error_of(photo, limits).message.find("without a place to cut it") != std::string::npos);
}
