// mod_mam: XEP-0313 Message Archive Management (urn:xmpp:mam:2, with #extended) on the
// host's archive store, and XEP-0359 stanza ids.
//
// Archiving (rules: mam_logic.hpp, archivable()):
//   outgoing  PARLEY_EVENT_STANZA_IN: a message a user's session sends goes to that
//             user's archive (with = its 'to'); one to the user's own bare JID is
//             archived once, as incoming;
//   incoming  PARLEY_EVENT_MESSAGE_TO_LOCAL (a filter, before the core delivers it or
//             hands it to offline storage): the message goes to the recipient's archive
//             (with = its 'from'), and the copy the recipient gets, live or from offline
//             storage, carries <stanza-id xmlns='urn:xmpp:sid:0' by='user@host' id=ID/>
//             with the archive id. Any <stanza-id/> a client sends claiming by= the
//             recipient's bare JID or an account of this domain (the sender's own
//             included) is removed at STANZA_IN, archived or not (XEP-0359 section 4:
//             a sender cannot forge one); one that reaches MESSAGE_TO_LOCAL is
//             believed (a message routed again: not archived twice) only if the
//             archive holds that id for that message (mam_stanza_ids.hpp). The id
//             is made by archive_append on the calling loop, before the append completes.
//
// Preferences (section 6): on the keyval store, cached per loop, the `roster` default
// asked of the roster module: mam_prefs.hpp.
//
// Queries (section 4) and the #extended metadata request: the results go to the querying
// session as tracked sends, a batch at a time, the next batch when the previous one was
// written (pacing by what the connection writes), then the <fin/> iq result.
//
// Retention: entries older than archive_expires_after are removed off the loops (the
// archive store's thread); the removal runs at most every expires/4 (1 s to 1 h) when
// the module is used, and queries never return an expired entry meanwhile. No timer is
// kept (a repeating timer would make the module impossible to reload).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mam_export.hpp"
#include "mam_logic.hpp"
#include "mam_prefs.hpp"
#include "mam_stanza_ids.hpp"
#include "parley/module.hpp"
#include "parley/sdk/stamp.hpp"

namespace {

namespace mam = parley::mod_mam;

constexpr const char* ns_mam = "urn:xmpp:mam:2";
constexpr const char* ns_mam_ext = "urn:xmpp:mam:2#extended";
constexpr const char* ns_sid = "urn:xmpp:sid:0";
constexpr const char* ns_forward = "urn:xmpp:forward:0";
constexpr const char* ns_delay = "urn:xmpp:delay";
constexpr const char* ns_rsm = "http://jabber.org/protocol/rsm";
constexpr const char* ns_data = "jabber:x:data";
constexpr const char* ns_client = "jabber:client";

// Results in flight per query: at most this many, and no more bytes than kBatchBytes
// (at least one result): a batch must fit well inside a connection's write backlog
// limit even when the socket takes nothing more, or the pacing itself would cut it.
constexpr size_t kBatch = 10;
constexpr size_t kBatchBytes = 64 * 1024;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stamp_of(int64_t us) { return parley::xep0082_stamp(us / 1000); }

// Queries under way, per loop and session (each loop touches its own map only): a
// session has at most max_concurrent_queries pages in memory at once. Shared with the
// deliveries, which may be freed after the module (by the SDK, at stop).
using QueryCounts = std::vector<std::unordered_map<parley_session_id, uint32_t>>;

// A query's results on their way to the session, a batch at a time. Made, used and freed
// on the session's loop.
struct Delivery {
  Delivery(std::shared_ptr<QueryCounts> c, uint32_t l, parley_session_id s) : counts(std::move(c)), loop(l), session(s) {
    ++(*counts)[loop][session];
  }
  ~Delivery() {
    auto& here = (*counts)[loop];
    auto it = here.find(session);
    if (it != here.end() && --it->second == 0) here.erase(it);
  }
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;
  std::shared_ptr<QueryCounts> counts;
  uint32_t loop;
  parley_session_id session = 0;
  std::string to;        // the requester's full JID
  std::string owner;     // the archive
  std::string queryid;
  std::vector<parley::Element> results;  // in order
  std::vector<size_t> sizes;             // about how many bytes each result is
  size_t next = 0;
  size_t in_flight = 0;
  bool failed = false;
  std::optional<parley::Element> fin;  // the iq result, sent last
};

class ModMam : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    if (!host().supports_1_2() || !host().supports_archive())
      return parley::unexpected(std::string("needs a host with module ABI 1.2 and the archive store"));
    if (auto d = host().option_string("default")) {
      auto mode = mam::parse_mode(*d);
      if (!mode) return parley::unexpected("option 'default' must be always, roster or never, not '" + *d + "'");
      default_prefs_.default_mode = *mode;
    }
    if (auto n = host().option_int("max_page_size")) {
      if (*n < 1 || *n > 10000) return parley::unexpected(std::string("option 'max_page_size' must be 1..10000"));
      limits_.max_page = static_cast<uint32_t>(*n);
      limits_.max_ids = static_cast<size_t>(*n);
    }
    if (auto n = host().option_int("default_page_size")) {
      if (*n < 1 || *n > 10000) return parley::unexpected(std::string("option 'default_page_size' must be 1..10000"));
      limits_.default_page = static_cast<uint32_t>(*n);
    }
    limits_.default_page = std::min(limits_.default_page, limits_.max_page);
    if (auto n = host().option_int("max_concurrent_queries")) {
      if (*n < 1 || *n > 100) return parley::unexpected(std::string("option 'max_concurrent_queries' must be 1..100"));
      max_queries_ = static_cast<uint32_t>(*n);
    }
    if (auto n = host().option_int("max_held_messages")) {
      if (*n < 1 || *n > 1000000) return parley::unexpected(std::string("option 'max_held_messages' must be 1..1000000"));
      max_held_ = static_cast<std::size_t>(*n);
    }
    expires_s_ = 7 * 86400;
    if (auto e = host().option_string("archive_expires_after")) {
      auto s = mam::parse_duration(*e);
      if (!s) return parley::unexpected("option 'archive_expires_after' is not a duration (7d, 12h, 30m, 45s, never): '" + *e + "'");
      expires_s_ = *s;
    }
    archived_ = parley::register_metric(host(), "archived", PARLEY_METRIC_COUNTER, "messages appended to archives");
    queries_ = parley::register_metric(host(), "queries", PARLEY_METRIC_COUNTER, "archive queries answered");
    // XEP-0313 section 3: ids nobody can predict, under a key of this module's (ABI 1.9;
    // an older host: decimal numbers, as before session 14).
    archive_ids_ = parley::ArchiveIds(host().derive_key("archive ids", parley::ArchiveIds::kKeyBytes).value_or(""));
    ids_.start(host(), archive_ids_);
    query_counts_ = std::make_shared<QueryCounts>(parley::loop_count(host()));
    prefs_.start(host(), default_prefs_, host().module_host(), max_held_);
    payloads_.init(host());
    return {};
  }

  // Hot reload: nothing to carry (the preferences are read again from the store as
  // messages come); an earlier version's saved preferences are ignored for that reason.
  parley::Result<std::string, std::string> save_state() override { return std::string(); }
  parley::Result<void, std::string> restore_state(std::string_view) override { return {}; }

  // ---- archiving ----

  parley::Outcome on_stanza_in(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || stanza->name() != "message") return parley::Outcome::pass;
    const std::string owner = event.user_bare();
    const std::string_view to = stanza->attr("to").value_or("");
    // XEP-0359 section 4: a client cannot say what an archive's id is: not the
    // recipient's, not its own (the sender's archive keeps the message too, and the
    // carbon of what it sent goes to its other clients), nor that of any account here
    // (a private message through a room reaches a user whose JID is not this 'to').
    // What comes by no client's STANZA_IN (a component) is checked at MESSAGE_TO_LOCAL.
    ids_.strip_forged(*stanza, std::string(parley::bare_jid(to.empty() ? std::string_view(owner) : to)));
    if (!archivable(*stanza, stanza->attr("type").value_or(""))) return parley::Outcome::pass;
    if (to.empty() || parley::bare_jid(to) == owner) return parley::Outcome::pass;  // archived as incoming
    // XEP-0313 section 3.4: the sender's other clients SHOULD find the id of their
    // archive in the carbon of what it sent (mod_carbons copies the stanza at
    // priority 90). When the preferences decide at once, the id is put on the stanza
    // here and taken off again after the copy (on_stanza_in_copied, 95): the
    // recipient cannot read the sender's archive and must not get it. A decision that
    // waits (preferences not read yet, the roster) leaves the carbon without it.
    if (const auto now = prefs_.outgoing_now(owner, to)) {  // the common case: no callback
      // Paced: while the archive is behind, the sender's next stanzas wait until this is
      // stored (module.h archive_append_paced), so that none is refused for a full queue.
      if (*now) add_stanza_id(*stanza, owner, append(owner, to, serialized(*stanza), event.session()));
      return parley::Outcome::pass;
    }
    constexpr uint64_t kLate = std::numeric_limits<uint64_t>::max();
    auto decided = std::make_shared<uint64_t>(0);  // the id when decided now; kLate after
    prefs_.outgoing(owner, std::string(to),
                    [this, decided, owner, with = std::string(to), payload = stanza->serialize(),
                     sender = event.session()] {
                      // Paced as well: decided later, the sender is held from then on.
                      const uint64_t id = append(owner, with, payload, sender);
                      if (*decided == 0) *decided = id == 0 ? kLate : id;
                    });
    const uint64_t id = *decided;
    *decided = kLate;
    if (id != kLate) add_stanza_id(*stanza, owner, id);
    return parley::Outcome::pass;
  }

  // The sender's archive id, for its carbons (taken off again at 95); none if the append was
  // refused, or if the sender has no other session a carbon could go to (most senders: the
  // element made and taken off again was a quarter of this module's time per message).
  void add_stanza_id(parley::ElementRef stanza, const std::string& owner, uint64_t id) {
    if (id == 0 || host().user_session_count(owner) < 2) return;
    stanza.add_child("stanza-id", ns_sid).set_attr("by", owner).set_attr("id", archive_ids_.encode_text(id).view());
    ids_.mark_sent_id();
  }

  // After mod_carbons (90) copied the stanza: the sender's archive id off what goes to
  // the recipient.
  parley::Outcome on_stanza_in_copied(const parley::Event& event) {
    if (!ids_.take_sent_id()) return parley::Outcome::pass;
    auto stanza = event.stanza();
    if (!stanza) return parley::Outcome::pass;
    const std::string owner = event.user_bare();
    mam::StanzaIds::strip_own(*stanza, owner);  // other entities' ids stay (forged ones of ours went at 60)
    return parley::Outcome::pass;
  }

  // user@this-host[/resource]: a local account's stanza, which came through its
  // client's STANZA_IN (the core stamps and checks 'from').
  bool from_account_here(std::string_view from) const {
    const std::string_view bare = parley::bare_jid(from);
    const auto at = bare.find('@');
    return at != std::string_view::npos && at > 0 && bare.substr(at + 1) == host().module_host();
  }

  parley::Outcome on_to_local(const parley::Event& event) {
    auto stanza = event.stanza();
    if (!stanza || stanza->name() != "message") return parley::Outcome::pass;
    const std::string owner = event.user_bare();
    parley::ElementRef message = *stanza;
    // A <stanza-id by=owner/>: this module's (a message routed again after it was
    // delivered once, by stream management for instance: keep its id, archived once),
    // or a forgery that did not come through a client's STANZA_IN (a component, a
    // module relaying a user's stanza: another host's private message through a room).
    // From an account of this host it is ours: the message came through its client's
    // STANZA_IN, where every claim by an account here went; believed at once, so that
    // what is routed again keeps its order (a cut session's backlog, stream
    // management's unacknowledged messages, before what follows them). Anything else
    // is checked against the archive before it is believed (mam_stanza_ids.hpp).
    for (auto child : message.children())
      if (child.name() == "stanza-id" && child.xmlns() == ns_sid && child.attr("by").value_or("") == owner) {
        if (from_account_here(stanza->attr("from").value_or(""))) return parley::Outcome::pass;
        const auto claim = ids_.check(owner, message);
        if (claim == mam::StanzaIds::Claim::ours) return parley::Outcome::pass;
        if (claim == mam::StanzaIds::Claim::checking) return parley::Outcome::handled;  // routed again when known
        break;  // forged, and removed: archived below as any other
      }
    const std::string_view type = stanza->attr("type").value_or("");
    if (!archivable(*stanza, type)) return parley::Outcome::pass;
    const std::string_view from = stanza->attr("from").value_or("");
    if (from.empty()) return parley::Outcome::pass;
    // A normal message to a resource that is not there is refused by the core (RFC 6121
    // 8.5.3.2.1): it is not delivered, so not archived.
    if (type != "chat") {
      const parley::Jid to = parley::Jid::prepared(stanza->attr("to").value_or(""));
      if (to.has_resource() && !has_session(owner, to.full())) return parley::Outcome::pass;
    }
    bool archive = false;
    if (const auto decided = prefs_.incoming_now(owner, from)) {  // the common case: no callback
      archive = *decided;
    } else {
      switch (prefs_.incoming(owner, from, message, &archive, release_held(owner))) {
        case mam::MamPrefs::Incoming::now:
          break;
        case mam::MamPrefs::Incoming::held:
          return parley::Outcome::handled;  // until decided
        case mam::MamPrefs::Incoming::refused:
          // Neither held (the bound) nor delivered ahead of the owner's held messages.
          host().bounce(*stanza, "resource-constraint", "too many messages wait for archiving preferences");
          return parley::Outcome::handled;
      }
    }
    if (!archive) return parley::Outcome::pass;
    uint64_t id = append(owner, from, serialized(*stanza));
    if (id != 0) message.add_child("stanza-id", ns_sid).set_attr("by", owner).set_attr("id", archive_ids_.encode_text(id).view());
    return parley::Outcome::pass;
  }

  // What runs for a message held until its owner's preferences decided (mam_prefs.hpp):
  // appended with its id if they say so, and routed again.
  mam::MamPrefs::Release release_held(const std::string& owner) {
    return [this, owner](parley::Element held, bool yes) {
      if (yes) {
        const std::string with(held.attr("from").value_or(""));
        uint64_t id = append(owner, with, held.serialize());
        // Refused (a full queue): delivered unarchived, in its place; without this its
        // second pass, carrying no id, was taken for a new message: held again behind
        // later ones (out of order), or appended then.
        if (id == 0) prefs_.let_pass(owner, with);
        if (id != 0) {
          held.add_child("stanza-id", ns_sid).set_attr("by", owner).set_attr("id", archive_ids_.encode_text(id).view());
          // Its next pass here: ours, not a claim to check. A local account's passes
          // without the trust (on_to_local): one kept for it would be left behind, and
          // believe a forged claim of the same id later.
          if (!from_account_here(with)) ids_.trust(owner, archive_ids_.encode(id));
        }
      }
      host().route(std::move(held));
    };
  }

  parley::Outcome on_user_removed(const parley::Event& event) {
    const std::string owner = event.user_bare();
    host().archive_remove(owner, std::numeric_limits<int64_t>::max(), [this, owner](auto r) {
      if (!r) host().warn("could not remove the archive of " + owner + ": " + r.error());
    });
    prefs_.remove(owner);
    return parley::Outcome::pass;
  }

  // The account's disco#info (XEP-0313 section 7: clients look for the features on
  // their own bare JID).
  parley::Outcome on_account_disco(const parley::Event& event) {
    auto acc = event.acc();
    if (!acc) return parley::Outcome::pass;
    for (const char* feature : {ns_mam, ns_mam_ext, ns_sid})
      acc->add_child("feature", "http://jabber.org/protocol/disco#info").set_attr("var", feature);
    return parley::Outcome::pass;
  }

  void on_roster_answer(const parley::Event& event) { prefs_.on_answer(event); }

  // ---- iq ----

  void on_iq(const parley::IqRequest& request) {
    const std::string requester(parley::bare_jid(request.from()));
    auto payload = request.payload();
    if (!payload) return host().bounce(request.iq(), "bad-request");
    // Section 4.1: a user queries its own archive only.
    if (request.to() != requester || request.session() == 0)
      return host().bounce(request.iq(), "forbidden", "only the owner may use this archive");
    const std::string_view name = payload->name();
    const bool get = request.type() == "get";
    if (name == "prefs") return get ? prefs_get(request, requester) : prefs_set(request, requester, *payload);
    if (name == "metadata" && get) return metadata(request, requester);
    if (name == "query" && get) return form(request);
    if (name == "query" && !get) return query(request, requester, *payload);
    host().bounce(request.iq(), "feature-not-implemented");
  }

  // XEP-0227 (mam_export.cpp): the archive in <archive xmlns='urn:xmpp:pie:0#mam'/>.
  void on_account_export(const parley::Event& event) {
    mam::export_archive(host(), event, min_kept_id(), archive_ids_);
  }
  void on_account_import(const parley::Event& event) { mam::import_archive(host(), event); }

 private:
  static bool archivable(parley::ElementView stanza, std::string_view type) {
    mam::ArchivableScan scan;
    for (auto child : stanza.children()) scan.add(mam::ChildName{child.name(), child.xmlns()});
    return scan.result(type);
  }

  bool has_session(const std::string& owner, const std::string& full) const {
    for (const auto& s : host().user_sessions(owner))
      if (s.full_jid == full) return true;
    return false;
  }

  // The message's bytes, in this loop's buffer: valid until the next call on the loop
  // (the archive copies them as the append is queued).
  std::string_view serialized(parley::ElementView stanza) {
    std::string& buffer = payloads_.here().bytes;
    stanza.serialize_to(buffer);
    return buffer;
  }

  uint64_t append(const std::string& owner, std::string_view with, std::string_view payload,
                  parley_session_id sender = 0) {
    // No completion: the host logs a failed append, and the loop is not woken per message.
    uint64_t id = sender != 0 ? host().archive_append_paced(sender, owner, with, payload)
                              : host().archive_append(owner, with, payload);
    if (id != 0) archived_.add();
    maybe_expire(true);
    return id;
  }

  // Expiry, at most every expires/4 (1 s .. 1 h) while the module is used: one
  // compare-and-swap wins the turn, the removal itself runs on the archive store's thread.
  // `append`: called for an append, which looks at the clock once every 64 appends of a
  // loop only (a query always does): the turn comes at most that many appends late.
  void maybe_expire(bool append = false) {
    if (expires_s_ <= 0) return;
    thread_local uint32_t appends = 0;
    if (append && ++appends % 64 != 0) return;
    const int64_t now = now_us();
    const int64_t every = std::clamp<int64_t>(expires_s_ / 4, 1, 3600) * 1000000;
    int64_t last = last_expiry_.load(std::memory_order_relaxed);
    if (now - last < every) return;
    if (!last_expiry_.compare_exchange_strong(last, now)) return;
    host().archive_remove("", now - expires_s_ * 1000000, [this](auto r) {
      if (!r) host().warn("archive expiry failed: " + r.error());
    });
  }

  int64_t oldest_kept_us() const { return expires_s_ > 0 ? now_us() - expires_s_ * 1000000 : INT64_MIN; }
  // Retention as the queries apply it: no entry whose id (never below its time, and the
  // time it was stored) is older than the oldest time kept, whether expiry (which removes
  // by id too) has come to it yet or not. A bound the store keeps the archive's size under
  // (ABI 1.10), where a time bound made every query count the entries it keeps.
  uint64_t min_kept_id() const {
    const int64_t oldest = oldest_kept_us();
    return oldest > 0 ? static_cast<uint64_t>(oldest) : 0;
  }

  // ---- preferences ----

  void reply_prefs(parley::ElementView iq, const mam::Prefs& prefs) {
    parley::Element result = parley::make_iq_result(iq);
    auto p = result.add_child("prefs", ns_mam);
    p.set_attr("default", mam::mode_name(prefs.default_mode));
    auto always = p.add_child("always", ns_mam);
    for (const auto& j : prefs.always) always.add_child("jid", ns_mam).add_text(j);
    auto never = p.add_child("never", ns_mam);
    for (const auto& j : prefs.never) never.add_child("jid", ns_mam).add_text(j);
    host().route(std::move(result));
  }

  void prefs_get(const parley::IqRequest& request, const std::string& owner) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    prefs_.get(owner, [this, iq](std::optional<mam::Prefs> prefs) {
      if (!prefs) return host().bounce(*iq, "internal-server-error");
      reply_prefs(*iq, *prefs);
    });
  }

  void prefs_set(const parley::IqRequest& request, const std::string& owner, parley::ElementView payload) {
    mam::Prefs prefs;
    auto mode = mam::parse_mode(payload.attr("default").value_or(""));
    if (!mode) return host().bounce(request.iq(), "bad-request", "'default' must be always, roster or never");
    prefs.default_mode = *mode;
    for (auto list : payload.children()) {
      if (list.xmlns() != ns_mam || (list.name() != "always" && list.name() != "never"))
        return host().bounce(request.iq(), "bad-request", "unexpected element in <prefs/>");
      for (auto j : list.children()) {
        if (j.name() != "jid") return host().bounce(request.iq(), "bad-request", "expected <jid/>");
        auto jid = parley::Jid::parse(host(), j.text());
        if (!jid) return host().bounce(request.iq(), "jid-malformed", "not a JID: " + j.text());
        (list.name() == "always" ? prefs.always : prefs.never).push_back(jid->full());
      }
    }
    if (prefs.always.size() + prefs.never.size() > 1000)
      return host().bounce(request.iq(), "policy-violation", "at most 1000 JIDs");
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    prefs_.set(owner, prefs, [this, iq, prefs](bool ok) {
      if (!ok) return host().bounce(*iq, "internal-server-error");
      reply_prefs(*iq, prefs);
    });
  }

  // ---- queries ----

  void form(const parley::IqRequest& request) {
    parley::Element result = parley::make_iq_result(request.iq());
    auto x = result.add_child("query", ns_mam).add_child("x", ns_data);
    x.set_attr("type", "form");
    auto ft = x.add_child("field", ns_data);
    ft.set_attr("var", "FORM_TYPE").set_attr("type", "hidden");
    ft.add_child("value", ns_data).add_text(ns_mam);
    for (const auto& [var, type] : std::vector<std::pair<const char*, const char*>>{
             {"with", "jid-single"}, {"start", "text-single"}, {"end", "text-single"},
             {"before-id", "text-single"}, {"after-id", "text-single"}})
      x.add_child("field", ns_data).set_attr("var", var).set_attr("type", type);
    // Section 4.1.5: 'ids' is list-multi, open to any value (XEP-0122), never listed.
    auto ids = x.add_child("field", ns_data);
    ids.set_attr("var", "ids").set_attr("type", "list-multi");
    ids.add_child("validate", "http://jabber.org/protocol/xdata-validate").set_attr("datatype", "xs:string")
        .add_child("open", "http://jabber.org/protocol/xdata-validate");
    host().route(std::move(result));
  }

  void query(const parley::IqRequest& request, const std::string& owner, parley::ElementView payload) {
    std::vector<mam::FormField> fields;
    mam::RsmIn rsm;
    bool flip = false;
    for (auto child : payload.children()) {
      if (child.name() == "x" && child.xmlns() == ns_data) {
        if (child.attr("type").value_or("") != "submit")
          return host().bounce(request.iq(), "bad-request", "the form must be of type submit");
        for (auto f : child.children()) {
          if (f.name() != "field") continue;
          mam::FormField field;
          field.var = std::string(f.attr("var").value_or(""));
          for (auto v : f.children())
            if (v.name() == "value") field.values.push_back(v.text());
          fields.push_back(std::move(field));
        }
      } else if (child.name() == "set" && child.xmlns() == ns_rsm) {
        if (auto m = child.child("max", ns_rsm)) rsm.max = m->text();
        if (auto a = child.child("after", ns_rsm)) rsm.after = a->text();
        if (auto b = child.child("before", ns_rsm)) rsm.before = b->text();
        rsm.index_present = child.child("index", ns_rsm).has_value();
      } else if (child.name() == "flip-page" && child.xmlns() == ns_mam) {
        flip = true;
      }
    }
    auto parsed = mam::parse_query(fields, rsm, flip, limits_, archive_ids_);
    if (parsed.error) return host().bounce(request.iq(), parsed.error->condition, parsed.error->text);
    mam::ParsedQuery& q = *parsed.query;
    parley::ArchiveQuery aq;
    aq.owner = owner;
    if (!q.with.empty()) {
      auto with = parley::Jid::parse(host(), q.with);
      if (!with) return host().bounce(request.iq(), "jid-malformed", "'with' is not a JID");
      aq.with = with->full();
    }
    aq.start_us = q.start_us;
    aq.min_id = min_kept_id();
    aq.end_us = q.end_us;
    aq.after_id = q.after_id;
    aq.before_id = q.before_id;
    aq.by_ids = q.by_ids;
    aq.ids = q.ids;
    aq.page_after = q.page_after;
    aq.page_before = q.page_before;
    aq.from_end = q.from_end;
    aq.max = q.max;
    // The requester's session is on this loop (a client's iq is handled where it
    // arrived): the delivery lives here, and so does its count.
    const int32_t here = parley::current_loop(host());
    if (here < 0 || static_cast<size_t>(here) >= query_counts_->size() ||
        host().session_state(request.session()) == parley::Host::SessionState::gone)
      return host().bounce(request.iq(), "internal-server-error", "the query's session is not on this loop");
    auto& counts = (*query_counts_)[static_cast<size_t>(here)];
    if (auto it = counts.find(request.session()); it != counts.end() && it->second >= max_queries_)
      return host().bounce(request.iq(), "resource-constraint", "too many archive queries under way; retry later");
    auto delivery = std::make_shared<Delivery>(query_counts_, static_cast<uint32_t>(here), request.session());
    delivery->to = std::string(request.from());
    delivery->owner = owner;
    delivery->queryid = std::string(payload.attr("queryid").value_or(""));
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    const bool flip_page = q.flip;
    maybe_expire();
    bool started = host().archive_query(aq, [this, iq, delivery, flip_page](parley::Result<parley::ArchivePage, std::string> r) {
      if (!r) return host().bounce(*iq, r.error());
      const parley::ArchivePage& page = *r;
      std::vector<size_t> order(page.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = flip_page ? order.size() - 1 - i : i;
      for (size_t i : order) {
        auto e = page.at(i);
        auto original = host().parse(e.payload);
        if (!original) continue;  // not a stanza any more: skipped, never sent half-made
        parley::Element msg = host().element("message", ns_client);
        msg.set_attr("from", delivery->owner).set_attr("to", delivery->to);
        auto result = msg.add_child("result", ns_mam);
        if (!delivery->queryid.empty()) result.set_attr("queryid", delivery->queryid);
        result.set_attr("id", archive_ids_.encode(e.id));
        auto fwd = result.add_child("forwarded", ns_forward);
        fwd.add_child("delay", ns_delay).set_attr("stamp", stamp_of(e.timestamp_us));
        fwd.add_child(std::move(*original));
        delivery->results.push_back(std::move(msg));
        delivery->sizes.push_back(e.payload.size() + delivery->to.size() + delivery->owner.size() + 256);
      }
      parley::Element fin_iq = parley::make_iq_result(*iq);
      auto fin = fin_iq.add_child("fin", ns_mam);
      if (page.complete()) fin.set_attr("complete", "true");
      auto set = fin.add_child("set", ns_rsm);
      if (page.size() > 0) {
        const uint64_t first_id = page.at(flip_page ? page.size() - 1 : 0).id;
        const uint64_t last_id = page.at(flip_page ? 0 : page.size() - 1).id;
        // XEP-0059: 'index' is the position of <first/> in the (chronological) result set;
        // a flipped page sends its newest first.
        const uint64_t first_index = page.index() + (flip_page ? page.size() - 1 : 0);
        set.add_child("first", ns_rsm).set_attr("index", std::to_string(first_index)).add_text(archive_ids_.encode(first_id));
        set.add_child("last", ns_rsm).add_text(archive_ids_.encode(last_id));
      }
      set.add_child("count", ns_rsm).add_text(std::to_string(page.total()));
      delivery->fin = std::move(fin_iq);
      queries_.add();
      // On the requester's loop: tracked sends are made there.
      parley::post_to_session(host(), delivery->session, [this, delivery] { pump(delivery); });
    });
    if (!started) host().bounce(request.iq(), "internal-server-error");
  }

  // Sends the next batch once the last one was written; the <fin/> result last.
  void pump(const std::shared_ptr<Delivery>& d) {
    if (d->failed || d->in_flight > 0) return;
    if (d->next >= d->results.size()) {
      if (d->fin) {
        parley::Element fin = std::move(*d->fin);
        d->fin.reset();
        host().send_tracked(d->session, std::move(fin), [](bool) {});
      }
      return;
    }
    size_t end = std::min(d->results.size(), d->next + kBatch);
    size_t bytes = 0;
    for (; d->next < end && (bytes == 0 || bytes + d->sizes[d->next] <= kBatchBytes); ++d->next) {
      bytes += d->sizes[d->next];
      ++d->in_flight;
      bool accepted = host().send_tracked(d->session, std::move(d->results[d->next]), [this, d](bool written) {
        --d->in_flight;
        if (!written) d->failed = true;
        pump(d);
      });
      if (!accepted) {
        --d->in_flight;
        d->failed = true;  // the session is gone or was cut: nothing more for it
        return;
      }
    }
  }

  void metadata(const parley::IqRequest& request, const std::string& owner) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    parley::ArchiveQuery first;
    first.owner = owner;
    first.min_id = min_kept_id();
    first.max = 1;
    bool ok = host().archive_query(first, [this, iq, owner](parley::Result<parley::ArchivePage, std::string> r) {
      if (!r) return host().bounce(*iq, r.error());
      std::optional<std::pair<uint64_t, int64_t>> start;
      if (r->size() > 0) start = std::make_pair(r->at(0).id, r->at(0).timestamp_us);
      parley::ArchiveQuery last;
      last.owner = owner;
      last.min_id = min_kept_id();
      last.max = 1;
      last.from_end = true;
      bool ok2 = host().archive_query(last, [this, iq, start](parley::Result<parley::ArchivePage, std::string> r2) {
        if (!r2) return host().bounce(*iq, r2.error());
        parley::Element result = parley::make_iq_result(*iq);
        auto md = result.add_child("metadata", ns_mam);
        if (start && r2->size() > 0) {
          md.add_child("start", ns_mam).set_attr("id", archive_ids_.encode(start->first)).set_attr("timestamp", stamp_of(start->second));
          md.add_child("end", ns_mam)
              .set_attr("id", archive_ids_.encode(r2->at(0).id))
              .set_attr("timestamp", stamp_of(r2->at(0).timestamp_us));
        }
        host().route(std::move(result));
      });
      if (!ok2) host().bounce(*iq, "internal-server-error");
    });
    if (!ok) host().bounce(request.iq(), "internal-server-error");
  }

  mam::Prefs default_prefs_;
  mam::QueryLimits limits_;
  int64_t expires_s_ = 0;
  uint32_t max_queries_ = 2;
  std::size_t max_held_ = mam::MamPrefs::default_max_held;  // incoming messages held per loop for preferences
  std::shared_ptr<QueryCounts> query_counts_;
  std::atomic<int64_t> last_expiry_{0};
  mam::StanzaIds ids_;
  parley::ArchiveIds archive_ids_;  // set in start(), read-only after
  mam::MamPrefs prefs_;
  parley::Metric archived_;
  parley::Metric queries_;
  // Each loop's buffer for the bytes of the message it archives (serialized()); a cache
  // line each, since the loops write their own at every message. It keeps the capacity of
  // the largest message the loop archived (at most limits.max_stanza_bytes).
  struct alignas(64) PayloadBuffer {
    std::string bytes;
  };
  parley::PerLoop<PayloadBuffer> payloads_;
};

}  // namespace

PARLEY_MODULE(ModMam, "mod_mam", "1.0.0",
              parley::option("default", PARLEY_OPT_STRING),
              parley::option("max_page_size", PARLEY_OPT_INT),
              parley::option("default_page_size", PARLEY_OPT_INT),
              parley::option("archive_expires_after", PARLEY_OPT_STRING),
              parley::option("max_concurrent_queries", PARLEY_OPT_INT),
              parley::option("max_held_messages", PARLEY_OPT_INT),
              parley::iq_handler<&ModMam::on_iq>(PARLEY_IQ_ACCOUNT, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_mam),
              parley::hook<&ModMam::on_stanza_in>(PARLEY_EVENT_STANZA_IN, 60),
              parley::hook<&ModMam::on_stanza_in_copied>(PARLEY_EVENT_STANZA_IN, 95),  // after mod_carbons (90)
              parley::hook<&ModMam::on_to_local>(PARLEY_EVENT_MESSAGE_TO_LOCAL, 60),
              parley::hook<&ModMam::on_user_removed>(PARLEY_EVENT_USER_REMOVED),
              parley::hook<&ModMam::on_account_disco>(PARLEY_EVENT_ACCOUNT_DISCO_INFO),
              parley::hook<&ModMam::on_roster_answer>(PARLEY_EVENT_ADMIN_USER_ANSWER),
              parley::hook<&ModMam::on_account_export>(PARLEY_EVENT_ACCOUNT_EXPORT),
              parley::hook<&ModMam::on_account_import>(PARLEY_EVENT_ACCOUNT_IMPORT),
              parley::disco_feature(ns_mam), parley::disco_feature(ns_mam_ext), parley::disco_feature(ns_sid),
              // The preferences before the keyval store: kept so that a server that has rows
              // in it gets them moved (mam_prefs.cpp); empty after that.
              parley::schema("CREATE TABLE mod_mam_prefs (owner TEXT PRIMARY KEY, prefs TEXT NOT NULL)"))
