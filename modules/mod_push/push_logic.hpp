// mod_push's own logic, free of the host (unit-tested in
// tests/unit/modules/mod_push): the XEP-0357 notification (the summary form,
// the publish-options passed through), what an app server's error means for
// a registration, the retry back-off and the per-device rate limit.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::push {

inline constexpr std::string_view ns_push = "urn:xmpp:push:0";
inline constexpr std::string_view ns_data = "jabber:x:data";
inline constexpr std::string_view ns_pubsub = "http://jabber.org/protocol/pubsub";
inline constexpr std::string_view summary_form_type = "urn:xmpp:push:summary";
inline constexpr std::string_view publish_options_form_type = "http://jabber.org/protocol/pubsub#publish-options";

// What one notification says (XEP-0357 §7, FORM_TYPE urn:xmpp:push:summary).
struct Summary {
  int64_t message_count = 0;
  std::string last_sender;                // the sender's JID as the message carried it
  std::optional<std::string> last_body;   // only with include_body: true
};

// The iq-set that publishes one notification to `node` of the push service
// `service`, from the server's JID (XEP-0357 0.3: "Use server JID as 'from'
// address for notifications", as Prosody and ejabberd send it);
// `publish_options` is the <x/> form the client gave at <enable/>,
// serialized, passed through unchanged ("" for none). No id: the host sets
// it (send_iq).
std::string notification_iq(std::string_view from, std::string_view service, std::string_view node,
                            const Summary& summary, std::string_view publish_options);

// XEP-0357 §5: <enable/> needs a 'jid'; a data form in it must be the
// publish-options form. The condition to answer with, or nullopt if valid.
std::optional<std::string> check_enable(std::string_view jid_attr, bool jid_valid, bool has_form,
                                        std::string_view form_type);

// What an app server's answer to a publish means for the registration
// (XEP-0357 §7.1: an error disables it; a transient one may be retried).
enum class ErrorAction {
  remove,  // cancel or auth (item-not-found, gone, not-authorized, forbidden, ...): disabled for good
  retry,   // wait (resource-constraint, ...) or no answer in time: tried again later
  keep,    // modify (bad-request, not-acceptable, ...): this notification is dropped, the registration stays
};
ErrorAction classify_error(std::string_view error_type, std::string_view condition);

// XEP-0357 §8 (remote disabling): an app server that stops taking
// notifications removes the publishing affiliation and MAY tell the user's
// bare JID with an affiliation change notice:
//   <message from='SERVICE' to='user@host'>
//     <pubsub xmlns='http://jabber.org/protocol/pubsub' node='NODE'>
//       <affiliation jid='user@host' affiliation='none'/></pubsub></message>
// (XEP-0357's example), or in XEP-0060's own shape (§8.9.4):
//     <pubsub xmlns='...pubsub'><affiliations node='NODE'><affiliation .../></affiliations></pubsub>
// What one <affiliation/> of it says:
struct AffiliationNotice {
  std::optional<std::string_view> node;  // the node it is about (nullopt: none named)
  std::string_view jid;                  // the affiliation's 'jid' ("" if absent)
  std::string_view affiliation;          // its 'affiliation'
};
// Whether the notice takes the right to publish from this user: a node is
// named; the affiliation's jid is the user's bare JID, the server's JID (the
// notifications' 'from') or absent (the notice is addressed to the user);
// and the new affiliation cannot publish (anything but owner, publisher,
// publish-only). Which registration it removes is the one of the notice's
// sender ('from', checked by the router) and that node.
bool notice_disables(const AffiliationNotice& notice, std::string_view user_bare, std::string_view server);

// Whether a message is worth waking a phone for (what Prosody's
// mod_cloud_notify calls important, as mod_csi's urgent payloads): a
// non-empty body; an end-to-end encrypted payload, whose body may be absent
// (OMEMO, OpenPGP, XEP-0380); a Jingle Message Initiation (an incoming call,
// XEP-0353). Not a chat state, a receipt or a marker alone. Types chat and
// normal; groupchat only where the caller allows it (a room's message);
// never headline or error. `children` are the message's child elements as
// (namespace, name).
struct ChildName {
  std::string_view ns;
  std::string_view name;
};
bool worth_waking(std::string_view type, bool has_body, const std::vector<ChildName>& children, bool groupchat);

// Back-off before retry `attempt` (1, 2, ...): base * 2^(attempt-1), at most max.
int64_t backoff_ms(int attempt, int64_t base_ms, int64_t max_ms = 300'000);

// One device (a user's jid + node registration) may be pushed once per
// `interval_ms`: a notification inside the interval is held and sent when it
// ends, replaced by any later one (its summary counts every message).
class RateLimit {
 public:
  explicit RateLimit(int64_t interval_ms) : interval_ms_(interval_ms) {}
  // 0: send now (recorded as sent at `now_ms`); else the ms to wait. A
  // device already waiting (`held`) answers the same wait without a second timer.
  int64_t delay(const std::string& device, int64_t now_ms);
  void forget(const std::string& device) { last_.erase(device); }

 private:
  int64_t interval_ms_;
  std::map<std::string, int64_t> last_;  // device -> when its last notification went out
};

std::string escape(std::string_view text);

// ---- the HTTP webhook backend ----

// The JSON body POSTed to the webhook: the same summary as the XEP-0357
// notification, for `recipient` (the user's bare JID):
//   {"recipient":"alice@example.org","message_count":2,
//    "last_message_sender":"bob@example.org/phone","timestamp":1733480000}
// plus "last_message_body" only when the summary has one (include_body).
std::string webhook_json(std::string_view recipient, const Summary& summary, int64_t unix_seconds);
// A JSON string literal (quotes included): ", \ and control characters escaped.
std::string json_string(std::string_view text);
// HMAC-SHA256 of `body` under `secret`, lower-case hex (64 characters): the
// value of the X-Parley-Signature header, "sha256=" + this.
std::string hmac_sha256_hex(std::string_view secret, std::string_view body);
inline constexpr std::string_view signature_header = "X-Parley-Signature";

// What a webhook's answer means: a 2xx is done; a 408, 429, 5xx, a timeout
// or no connection is retried with back-off; any other status (the URL is
// wrong, the signature refused) and a cancelled request are given up.
enum class WebhookAction { done, retry, give_up };
WebhookAction classify_webhook(int status, std::string_view error);

// The webhook URL option: http:// or https:// with a host, no spaces.
bool valid_webhook_url(std::string_view url);

}  // namespace parley::push
