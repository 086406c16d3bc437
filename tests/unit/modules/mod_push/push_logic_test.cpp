// mod_push's logic without a host: the notification iq with its summary form
// and the publish-options passed through, <enable/> validation, what an app
// server's error does to a registration, back-off and the per-device limit.
#include <doctest/doctest.h>

#include <string>

#include "push_logic.hpp"
#include "sleep_table.hpp"

using namespace parley::push;

TEST_CASE("the notification: summary form, no body by default, publish-options as given") {
  Summary s;
  s.message_count = 3;
  s.last_sender = "bob@localhost/phone";
  const std::string options =
      "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
      "http://jabber.org/protocol/pubsub#publish-options</value></field>"
      "<field var='secret'><value>s3&amp;cr3t</value></field></x>";
  // From the server's JID (XEP-0357 0.3), as Prosody and ejabberd send it.
  std::string iq = notification_iq("localhost", "push.localhost", "node-1", s, options);
  CHECK(iq ==
        "<iq xmlns='jabber:client' type='set' from='localhost' to='push.localhost'>"
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='node-1'><item>"
        "<notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'>"
        "<field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>"
        "<field var='message-count'><value>3</value></field>"
        "<field var='last-message-sender'><value>bob@localhost/phone</value></field>"
        "</x></notification></item></publish>"
        "<publish-options>" + options + "</publish-options></pubsub></iq>");
  CHECK(iq.find("last-message-body") == std::string::npos);
}

TEST_CASE("the body only when asked, escaped; no node, no options") {
  Summary s;
  s.message_count = 1;
  s.last_sender = "o'hara@localhost";
  s.last_body = "a < b & \"c\"";
  std::string iq = notification_iq("alice@localhost", "push.localhost", "", s, "");
  CHECK(iq.find("<publish>") != std::string::npos);
  CHECK(iq.find("publish-options") == std::string::npos);
  CHECK(iq.find("<field var='last-message-body'><value>a &lt; b &amp; &quot;c&quot;</value></field>") !=
        std::string::npos);
  CHECK(iq.find("<value>o&apos;hara@localhost</value>") != std::string::npos);
}

TEST_CASE("enable needs a jid; a form must be publish-options") {
  CHECK(check_enable("push.localhost", true, false, "") == std::nullopt);
  CHECK(check_enable("push.localhost", true, true, "http://jabber.org/protocol/pubsub#publish-options") ==
        std::nullopt);
  CHECK(check_enable("", false, false, "") == "bad-request");
  CHECK(check_enable("a@b@c", false, false, "") == "bad-request");
  CHECK(check_enable("push.localhost", true, true, "urn:xmpp:push:summary") == "bad-request");
  CHECK(check_enable("push.localhost", true, true, "") == "bad-request");
}

TEST_CASE("app server errors") {
  CHECK(classify_error("cancel", "item-not-found") == ErrorAction::remove);
  CHECK(classify_error("cancel", "gone") == ErrorAction::remove);
  CHECK(classify_error("auth", "not-authorized") == ErrorAction::remove);
  CHECK(classify_error("auth", "forbidden") == ErrorAction::remove);
  CHECK(classify_error("", "") == ErrorAction::remove);
  CHECK(classify_error("wait", "resource-constraint") == ErrorAction::retry);
  CHECK(classify_error("cancel", "remote-server-timeout") == ErrorAction::retry);
  CHECK(classify_error("modify", "bad-request") == ErrorAction::keep);
}

TEST_CASE("back-off doubles up to its cap") {
  CHECK(backoff_ms(1, 1000) == 1000);
  CHECK(backoff_ms(2, 1000) == 2000);
  CHECK(backoff_ms(3, 1000) == 4000);
  CHECK(backoff_ms(0, 1000) == 1000);
  CHECK(backoff_ms(40, 1000) == 300000);
  CHECK(backoff_ms(5, 1000, 5000) == 5000);
}

TEST_CASE("the per-device rate limit") {
  RateLimit limit(1000);
  CHECK(limit.delay("a", 10'000) == 0);
  CHECK(limit.delay("a", 10'400) == 600);
  CHECK(limit.delay("b", 10'400) == 0);  // another device
  CHECK(limit.delay("a", 11'000) == 0);
  limit.forget("a");
  CHECK(limit.delay("a", 11'001) == 0);
  RateLimit off(0);
  CHECK(off.delay("a", 1) == 0);
  CHECK(off.delay("a", 1) == 0);
}

// ---- the HTTP webhook backend ----

TEST_CASE("webhook JSON: the summary, no body unless the summary has one, strings escaped") {
  Summary s;
  s.message_count = 2;
  s.last_sender = "bob@localhost/phone";
  CHECK(webhook_json("alice@localhost", s, 1733480000) ==
        "{\"recipient\":\"alice@localhost\",\"message_count\":2,"
        "\"last_message_sender\":\"bob@localhost/phone\",\"timestamp\":1733480000}");
  s.last_body = std::string("say \"hi\"\\\n\x01 caf\xc3\xa9");
  CHECK(webhook_json("alice@localhost", s, 5) ==
        "{\"recipient\":\"alice@localhost\",\"message_count\":2,"
        "\"last_message_sender\":\"bob@localhost/phone\","
        "\"last_message_body\":\"say \\\"hi\\\"\\\\\\n\\u0001 caf\xc3\xa9\",\"timestamp\":5}");
  Summary none;
  none.message_count = 1;
  CHECK(webhook_json("a@b", none, 0) == "{\"recipient\":\"a@b\",\"message_count\":1,\"timestamp\":0}");
}

TEST_CASE("HMAC-SHA256 in hex (RFC 4231 test case 2)") {
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(hmac_sha256_hex("another key", "what do ya want for nothing?") !=
        hmac_sha256_hex("Jefe", "what do ya want for nothing?"));
}

TEST_CASE("a webhook's answer: 2xx done; 408, 429, 5xx, timeouts retried; other statuses given up") {
  CHECK(classify_webhook(200, "") == WebhookAction::done);
  CHECK(classify_webhook(204, "") == WebhookAction::done);
  CHECK(classify_webhook(500, "") == WebhookAction::retry);
  CHECK(classify_webhook(503, "") == WebhookAction::retry);
  CHECK(classify_webhook(429, "") == WebhookAction::retry);
  CHECK(classify_webhook(408, "") == WebhookAction::retry);
  CHECK(classify_webhook(0, "timeout") == WebhookAction::retry);
  CHECK(classify_webhook(0, "connect") == WebhookAction::retry);
  CHECK(classify_webhook(401, "") == WebhookAction::give_up);
  CHECK(classify_webhook(404, "") == WebhookAction::give_up);
  CHECK(classify_webhook(301, "") == WebhookAction::give_up);
  CHECK(classify_webhook(0, "cancelled") == WebhookAction::give_up);
}

TEST_CASE("webhook URLs") {
  CHECK(valid_webhook_url("http://127.0.0.1:8080/push"));
  CHECK(valid_webhook_url("https://hooks.example.org/x?y=1"));
  CHECK_FALSE(valid_webhook_url(""));
  CHECK_FALSE(valid_webhook_url("ftp://example.org/"));
  CHECK_FALSE(valid_webhook_url("http://"));
  CHECK_FALSE(valid_webhook_url("http:///path"));
  CHECK_FALSE(valid_webhook_url("http://exa mple.org/"));
  CHECK_FALSE(valid_webhook_url("http://example.org/\n"));
}

TEST_CASE("remote disabling (XEP-0357 section 8): which affiliation change notices remove a registration") {
  const std::string_view user = "alice@localhost", server = "localhost";
  using N = AffiliationNotice;
  CHECK(notice_disables(N{"n1", "alice@localhost", "none"}, user, server));
  CHECK(notice_disables(N{"n1", "localhost", "none"}, user, server));  // the notifications' 'from'
  CHECK(notice_disables(N{"n1", "", "outcast"}, user, server));        // no jid: the addressee
  CHECK(notice_disables(N{"", "alice@localhost", "member"}, user, server));  // node '' is a node
  CHECK_FALSE(notice_disables(N{std::nullopt, "alice@localhost", "none"}, user, server));  // which node?
  CHECK_FALSE(notice_disables(N{"n1", "bob@localhost", "none"}, user, server));  // about someone else
  CHECK_FALSE(notice_disables(N{"n1", "alice@localhost/phone", "none"}, user, server));
  for (std::string_view still : {"owner", "publisher", "publish-only", ""})
    CHECK_FALSE(notice_disables(N{"n1", "alice@localhost", still}, user, server));
}

TEST_CASE("the sleep table: a user is asleep when every session is detached or inactive") {
  SleepTable t;
  CHECK(t.all_asleep({}));  // no session: offline
  CHECK_FALSE(t.all_asleep({7}));  // never heard of: awake
  t.set(7, SleepTable::detached, true);
  CHECK(t.all_asleep({7}));
  CHECK_FALSE(t.all_asleep({7, 8}));  // online elsewhere
  t.set(8, SleepTable::inactive, true);
  CHECK(t.all_asleep({7, 8}));
  t.set(8, SleepTable::detached, true);
  t.set(8, SleepTable::inactive, false);
  CHECK(t.asleep(8));  // still detached
  t.set(8, SleepTable::detached, false);
  CHECK_FALSE(t.asleep(8));
  CHECK(t.size() == 1);
  t.set(0, SleepTable::detached, true);  // no session
  CHECK(t.size() == 1);

  t.set(9, SleepTable::inactive, true);
  t.set(9, SleepTable::detached, true);
  std::string saved = t.save();
  SleepTable u;
  REQUIRE(u.restore(saved));
  CHECK(u.asleep(7));
  CHECK(u.asleep(9));
  CHECK(u.size() == 2);
  u.set(9, SleepTable::inactive, false);
  CHECK(u.asleep(9));
  t.forget(7);
  CHECK_FALSE(t.asleep(7));
  for (std::string_view bad : {"7 1", "x 1\n", "7 0\n", "7 4\n", "0 1\n", "7\n", "7 1 \n"}) {
    SleepTable v;
    CHECK_FALSE(v.restore(bad));
  }
  SleepTable empty;
  CHECK(empty.restore(""));
}

TEST_CASE("what is worth waking a phone for") {
  using C = std::vector<ChildName>;
  CHECK(worth_waking("chat", true, {}, false));
  CHECK(worth_waking("normal", true, {}, false));
  CHECK(worth_waking("", true, {}, false));  // no type: normal
  CHECK_FALSE(worth_waking("headline", true, {}, false));
  CHECK_FALSE(worth_waking("error", true, {}, false));
  CHECK_FALSE(worth_waking("groupchat", true, {}, false));
  CHECK(worth_waking("groupchat", true, {}, true));
  // No body: an encrypted payload or a call wakes; a chat state, a receipt does not.
  CHECK(worth_waking("chat", false, C{{"eu.siacs.conversations.axolotl", "encrypted"}}, false));
  CHECK(worth_waking("chat", false, C{{"urn:xmpp:omemo:2", "encrypted"}}, false));
  CHECK(worth_waking("chat", false, C{{"urn:xmpp:openpgp:0", "openpgp"}}, false));
  CHECK(worth_waking("chat", false, C{{"jabber:x:encrypted", "x"}}, false));
  CHECK(worth_waking("chat", false, C{{"urn:xmpp:jingle-message:0", "propose"}}, false));
  CHECK(worth_waking("chat", false, C{{"urn:xmpp:jingle-message:1", "propose"}}, false));
  CHECK_FALSE(worth_waking("chat", false, C{{"urn:xmpp:jingle-message:0", "retract"}}, false));
  CHECK_FALSE(worth_waking("chat", false, C{{"http://jabber.org/protocol/chatstates", "composing"}}, false));
  CHECK_FALSE(worth_waking("chat", false, C{{"urn:xmpp:receipts", "received"}}, false));
  CHECK_FALSE(worth_waking("chat", false, {}, false));
  CHECK_FALSE(worth_waking("headline", false, C{{"urn:xmpp:omemo:2", "encrypted"}}, false));
}
