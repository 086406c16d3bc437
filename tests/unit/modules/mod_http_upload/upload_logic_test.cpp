// mod_http_upload's pure logic: the slot's HMAC token, URL encoding and
// parsing (no way out of the store), Range, and what is served inline.
#include "upload_logic.hpp"

#include <doctest/doctest.h>

using namespace upload;

namespace {

Slot sample() {
  Slot s;
  s.owner = "romeo@montague.tld";
  s.filename = "my juliet.jpg";
  s.size = 23456;
  s.content_type = "image/jpeg";
  s.expires = 1700000000;
  s.nonce = "abcdefghijklmnop";
  return s;
}

}  // namespace

TEST_CASE("the token is an HMAC of every field of the slot") {
  Slot s = sample();
  std::string t = token("key", s);
  CHECK(valid_token(t));
  CHECK(token("key", s) == t);
  CHECK(token("other key", s) != t);
  for (int field = 0; field < 6; ++field) {
    Slot c = sample();
    switch (field) {
      case 0: c.owner = "juliet@capulet.tld"; break;
      case 1: c.filename = "my juliet.png"; break;
      case 2: c.size = 23457; break;
      case 3: c.content_type = "text/html"; break;
      case 4: c.expires += 1; break;
      case 5: c.nonce = "bbcdefghijklmnop"; break;
    }
    CHECK(token("key", c) != t);
  }
  // Fields are length-prefixed: moving bytes between two fields changes it.
  Slot a = sample(), b = sample();
  a.owner = "ab";
  a.filename = "c";
  b.owner = "a";
  b.filename = "bc";
  CHECK(token("key", a) != token("key", b));
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2; base64url its alphabet") {
  std::string mac = hmac_sha256("Jefe", "what do ya want for nothing?");
  std::string hex;
  for (unsigned char c : mac) {
    const char* digits = "0123456789abcdef";
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  CHECK(hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(base64url("\xfb\xff") == "-_8");
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
}

TEST_CASE("a PUT query carries the slot and parses back") {
  Slot s = sample();
  s.owner = "ro&meo@montague.tld";
  Slot back;
  REQUIRE(parse_put_query(put_query(s), back));
  CHECK(back.owner == s.owner);
  CHECK(back.size == s.size);
  CHECK(back.content_type == s.content_type);
  CHECK(back.expires == s.expires);
  CHECK(back.nonce == s.nonce);
  Slot bad;
  CHECK_FALSE(parse_put_query("", bad));
  CHECK_FALSE(parse_put_query("e=1&s=2&n=abcdefghijklmnop&o=x", bad));               // no t
  CHECK_FALSE(parse_put_query("e=1&s=2&n=abcdefghijklmnop&o=x&t=&t=", bad));          // twice
  CHECK_FALSE(parse_put_query("e=-1&s=2&n=abcdefghijklmnop&o=x&t=", bad));            // not a number
  CHECK_FALSE(parse_put_query("e=1&s=2&n=short&o=x&t=", bad));                        // nonce
  CHECK_FALSE(parse_put_query("e=1&s=2&n=abcdefghijklmnop&o=%zz&t=", bad));           // bad escape
  CHECK_FALSE(parse_put_query("e=1&s=99999999999999999999&n=abcdefghijklmnop&o=x&t=", bad));
}

TEST_CASE("file paths: a token and one name, never a way out of the store") {
  std::string t(32, 'A');
  auto p = parse_file_path("/" + t + "/my%20juliet.jpg");
  REQUIRE(p);
  CHECK(p->token == t);
  CHECK(p->filename == "my juliet.jpg");
  CHECK_FALSE(parse_file_path("/" + t));
  CHECK_FALSE(parse_file_path("/" + t + "/"));
  CHECK_FALSE(parse_file_path("/../../../../etc/passwd"));
  CHECK_FALSE(parse_file_path("/" + t + "/../x"));        // a '/' in the name
  CHECK_FALSE(parse_file_path("/" + t + "/..%2Fx"));      // encoded too
  CHECK_FALSE(parse_file_path("/" + t + "/a%00b"));       // NUL
  CHECK_FALSE(parse_file_path("/" + std::string(31, 'A') + "./x"));  // '.' is not a token character
  CHECK_FALSE(parse_file_path("/" + std::string(32, '.') + "/x"));
  CHECK_FALSE(parse_file_path("/%2E%2E" + std::string(30, 'A') + "/x"));
  CHECK_FALSE(percent_decode("%4"));
  CHECK_FALSE(percent_decode("%"));
  CHECK(percent_decode("%41b") == "Ab");
  CHECK(percent_encode("a b/é") == "a%20b%2F%C3%A9");
}

TEST_CASE("file names and content types are sanitized") {
  CHECK(sanitize_filename("../../etc/passwd") == ".._.._etc_passwd");
  CHECK(sanitize_filename("..") == "file");
  CHECK(sanitize_filename("") == "file");
  CHECK(sanitize_filename("a\r\nb\"c") == "a__b_c");
  CHECK(sanitize_filename(std::string(300, 'x')).size() == 200);
  // A multi-byte character cut at the limit is dropped whole.
  std::string name = std::string(199, 'x') + "\xc3\xa9";
  CHECK(sanitize_filename(name) == std::string(199, 'x'));
  CHECK(sanitize_content_type("Image/JPEG") == "image/jpeg");
  CHECK(sanitize_content_type("text/plain; charset=utf-8") == "text/plain");
  CHECK(sanitize_content_type("text") == "");
  CHECK(sanitize_content_type("text/html\r\nX-Evil: 1") == "");
  CHECK(sanitize_content_type("a b/c") == "");
}

TEST_CASE("Range: one range, suffixes, open ends; several or malformed serve the whole file") {
  Range r;
  CHECK(parse_range("", 100, r) == RangeResult::none);
  CHECK(parse_range("bytes=0-9", 100, r) == RangeResult::ok);
  CHECK((r.first == 0 && r.last == 9));
  CHECK(parse_range("bytes=90-", 100, r) == RangeResult::ok);
  CHECK((r.first == 90 && r.last == 99));
  CHECK(parse_range("bytes=-10", 100, r) == RangeResult::ok);
  CHECK((r.first == 90 && r.last == 99));
  CHECK(parse_range("bytes=-1000", 100, r) == RangeResult::ok);
  CHECK((r.first == 0 && r.last == 99));
  CHECK(parse_range("bytes=50-1000", 100, r) == RangeResult::ok);
  CHECK((r.first == 50 && r.last == 99));
  CHECK(parse_range("bytes=100-", 100, r) == RangeResult::unsatisfiable);
  CHECK(parse_range("bytes=-0", 100, r) == RangeResult::unsatisfiable);
  CHECK(parse_range("bytes=0-1,5-6", 100, r) == RangeResult::none);
  CHECK(parse_range("bytes=9-1", 100, r) == RangeResult::none);
  CHECK(parse_range("items=0-1", 100, r) == RangeResult::none);
  CHECK(parse_range("bytes=x-1", 100, r) == RangeResult::none);
}

TEST_CASE("only safe types are served inline") {
  CHECK(inline_safe("image/jpeg"));
  CHECK(inline_safe("video/mp4"));
  CHECK(inline_safe("text/plain"));
  CHECK_FALSE(inline_safe("text/html"));
  CHECK_FALSE(inline_safe("image/svg+xml"));
  CHECK_FALSE(inline_safe("application/xhtml+xml"));
  CHECK_FALSE(inline_safe("application/javascript"));
  CHECK(xep82(0) == "1970-01-01T00:00:00Z");
  CHECK(xep82(1512344525) == "2017-12-03T23:42:05Z");
}
