// mod_muc: the room's archive (XEP-0313 on the room JID) while
// muc#roomconfig_enablelogging is on: groupchat messages with a body are
// appended to the host's archive store (this module's archives, owner: the
// room JID) and carry their XEP-0359 stanza id; a MAM query to the room pages
// through them (XEP-0059 RSM: max, after, before; the form's start, end,
// after-id, before-id and ids; flip-page).
#include <memory>

#include "room.hpp"

namespace muc {

namespace {

constexpr const char* ns_mam = "urn:xmpp:mam:2";
constexpr const char* ns_rsm = "http://jabber.org/protocol/rsm";
constexpr const char* ns_forward = "urn:xmpp:forward:0";

// A positive decimal number (RSM's <max/>).
std::optional<uint64_t> parse_positive(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0) return std::nullopt;
  return v;
}

}  // namespace

uint64_t Room::archive(const parley::Element& message, const std::string& nick) {
  if (!config_.logging || !service_.host->supports_archive()) return 0;
  // `with` is the sender's occupant JID: a query's `with` names it (XEP-0313
  // §5.1.2 for MUC archives).
  return service_.host->archive_append(jid_, occupant_jid(nick), message.serialize());
}

void Room::archive_iq(parley::ElementView iq, const std::string& from) {
  const Affiliation aff = affiliation_of(std::string(parley::bare_jid(from)));
  // Who may read it: who may enter (no outcast; members in a members-only room).
  if (aff == Affiliation::outcast || (config_.members_only && aff == Affiliation::none))
    return error(iq, "forbidden", "auth");
  if (!service_.host->supports_archive()) return error(iq, "service-unavailable", "cancel");
  auto query = iq.child("query", ns_mam);
  if (!query) return error(iq, "bad-request", "modify");
  if (iq.attr("type") == "get") {
    // The search form (XEP-0313 §5.1.1).
    parley::Element result = parley::make_iq_result(iq);
    auto x = result.add_child("query", ns_mam).add_child("x", ns_xdata);
    x.set_attr("type", "form");
    auto type = x.add_child("field", ns_xdata);
    type.set_attr("var", "FORM_TYPE").set_attr("type", "hidden");
    type.add_child("value", ns_xdata).add_text(ns_mam);
    for (const char* var : {"with", "start", "end", "before-id", "after-id"})
      x.add_child("field", ns_xdata).set_attr("var", var).set_attr("type", "text-single");
    // XEP-0313 §4.1.5: 'ids' is list-multi, open to any value (XEP-0122).
    auto ids = x.add_child("field", ns_xdata);
    ids.set_attr("var", "ids").set_attr("type", "list-multi");
    ids.add_child("validate", "http://jabber.org/protocol/xdata-validate")
        .set_attr("datatype", "xs:string")
        .add_child("open", "http://jabber.org/protocol/xdata-validate");
    return route(std::move(result));
  }
  parley::ArchiveQuery q;
  q.owner = jid_;
  q.max = 50;
  if (auto x = query->child("x", ns_xdata)) {
    for (auto f : x->children()) {
      if (f.name() != "field") continue;
      auto var = f.attr("var").value_or("");
      std::vector<std::string> values;
      for (auto v : f.children())
        if (v.name() == "value") values.push_back(v.text());
      const std::string value = values.empty() ? std::string() : values.front();
      if (var == "FORM_TYPE") {
        if (value != ns_mam) return error(iq, "bad-request", "modify", "FORM_TYPE must be urn:xmpp:mam:2");
        continue;
      }
      if (var == "ids") {
        // XEP-0313 §4.1.5: exactly these entries (ids of this archive).
        if (values.empty()) return error(iq, "bad-request", "modify", "'ids' needs at least one id");
        if (values.size() > 250) return error(iq, "policy-violation", "modify", "too many ids");
        q.by_ids = true;
        for (const std::string& v : values) {
          // §4.1.3: an id the archive does not hold is item-not-found.
          auto id = service_.archive_ids.decode(v);
          if (!id) return error(iq, "item-not-found", "cancel", "not an id of this archive: " + v);
          q.ids.push_back(*id);
        }
        continue;
      }
      if (value.empty()) continue;
      if (var == "start" || var == "end") {
        auto ms = parse_datetime_ms(value);
        if (!ms) return error(iq, "bad-request", "modify", "not a date-time: " + value);
        (var == "start" ? q.start_us : q.end_us) = *ms * 1000;
      } else if (var == "with") {
        // XEP-0313 §5.1.2: in a room's archive, `with` is an occupant JID
        // (room@service/nick): that nick's messages (each entry's `with` is its
        // sender's occupant JID). The room's own JID matches all of them, any
        // other JID none.
        auto with = service_.host->prepare_jid(value);
        if (!with) return error(iq, "jid-malformed", "modify", "not a JID: " + value);
        q.with = *with;
      } else if (var == "after-id" || var == "before-id") {
        // XEP-0313 §4.1.3: entries after / before the one with this id.
        auto id = service_.archive_ids.decode(value);
        if (!id) return error(iq, "item-not-found", "cancel", "not an id of this archive: " + value);
        (var == "after-id" ? q.after_id : q.before_id) = *id;
      } else {
        return error(iq, "feature-not-implemented", "cancel", "unsupported field");
      }
    }
  }
  // XEP-0313 §4.1.6: the page's results in the reverse order.
  const bool flip = query->child("flip-page", ns_mam).has_value();
  if (auto set = query->child("set", ns_rsm)) {
    if (auto m = set->child("max", ns_rsm)) {
      auto n = parse_positive(m->text());
      q.max = n ? static_cast<uint32_t>(std::min<uint64_t>(*n, 250)) : 0;
      if (!n && m->text() != "0") return error(iq, "bad-request", "modify", "bad <max/>");
    }
    if (auto a = set->child("after", ns_rsm)) {
      auto id = service_.archive_ids.decode(a->text());
      if (!id) return error(iq, "item-not-found", "cancel");
      q.page_after = *id;
    }
    if (auto b = set->child("before", ns_rsm)) {
      q.from_end = true;
      if (!b->text().empty()) {
        auto id = service_.archive_ids.decode(b->text());
        if (!id) return error(iq, "item-not-found", "cancel");
        q.page_before = *id;
      }
    }
  }
  // The completion needs no room state (the room may be gone by then).
  Service* service = &service_;
  auto request = std::make_shared<parley::Element>(iq.clone());
  const std::string room = jid_, to = from;
  const std::string queryid(query->attr("queryid").value_or(""));
  bool started = service_.host->archive_query(
      q, [service, request, room, to, queryid, flip](parley::Result<parley::ArchivePage, std::string> r) {
        parley::Host& host = *service->host;
        if (!r) return host.bounce(*request, r.error());
        const parley::ArchivePage& page = *r;
        for (std::size_t n = 0; n < page.size(); ++n) {
          auto e = page.at(flip ? page.size() - 1 - n : n);
          auto original = host.parse(e.payload);
          if (!original) continue;
          parley::Element msg = host.element("message", ns_client);
          msg.set_attr("from", room).set_attr("to", to);
          auto result = msg.add_child("result", ns_mam);
          if (!queryid.empty()) result.set_attr("queryid", queryid);
          result.set_attr("id", service->archive_ids.encode(e.id));
          auto fwd = result.add_child("forwarded", ns_forward);
          fwd.add_child("delay", ns_delay).set_attr("stamp", parley::xep0082_stamp(e.timestamp_us / 1000));
          fwd.add_child(std::move(*original));
          host.route(std::move(msg));
        }
        parley::Element fin_iq = parley::make_iq_result(*request);
        auto fin = fin_iq.add_child("fin", ns_mam);
        if (page.complete()) fin.set_attr("complete", "true");
        auto set = fin.add_child("set", ns_rsm);
        if (page.size() > 0) {
          const uint64_t first = page.at(flip ? page.size() - 1 : 0).id;
          const uint64_t last = page.at(flip ? 0 : page.size() - 1).id;
          set.add_child("first", ns_rsm).set_attr("index", std::to_string(page.index())).add_text(
              service->archive_ids.encode(first));
          set.add_child("last", ns_rsm).add_text(service->archive_ids.encode(last));
        }
        set.add_child("count", ns_rsm).add_text(std::to_string(page.total()));
        host.route(std::move(fin_iq));
      });
  if (!started) error(iq, "internal-server-error", "wait");
}

}  // namespace muc
