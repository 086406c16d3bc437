// mod_test_service: the ABI 1.2 test module. Serves "<subdomain>.<host>"
// (register_route) and there:
//  - answers disco#info (identity component/generic, one feature) and an
//    empty disco#items; any other iq get/set is passed (the core answers
//    service-unavailable);
//  - answers a message to the domain or to any JID at it, by body:
//      "echo X"  -> "echo: X" back from the addressee;
//      "ask"     -> sends the sender an iq get jabber:iq:version (send_iq) and
//                   reports "version: NAME", "error: CONDITION" or "timeout";
//      "ask-to J" -> the same, to JID J;
//      "hop"     -> posts to the next loop, then back to the loop that owns
//                   nothing in particular (per-loop counters, PerLoop), and
//                   answers "hopped: A->B->A" naming the loops it ran on;
//      "count"   -> "count: N", messages this loop's PerLoop counter saw.
//  Metrics: messages (counter), open_asks (gauge), body_bytes (histogram).
//  Options: subdomain (default "service"), iq_timeout_ms (default 2000).
#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_items = "http://jabber.org/protocol/disco#items";
constexpr const char* ns_version = "jabber:iq:version";

class ModTestService : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    std::string sub = host().option_string("subdomain").value_or("service");
    timeout_ms_ = host().option_int("iq_timeout_ms").value_or(2000);
    domain_ = sub + "." + host().module_host();
    if (!parley::register_service<&ModTestService::on_stanza>(*this, domain_, "Test service"))
      return parley::unexpected(std::string("cannot serve ") + domain_);
    seen_.init(host());
    messages_ = parley::register_metric(host(), "messages", PARLEY_METRIC_COUNTER, "messages to the service");
    open_asks_ = parley::register_metric(host(), "open_asks", PARLEY_METRIC_GAUGE, "iqs sent, not answered yet");
    body_bytes_ = parley::register_metric(host(), "body_bytes", PARLEY_METRIC_HISTOGRAM, "message body size, bytes");
    if (!messages_ || !open_asks_ || !body_bytes_) return parley::unexpected(std::string("metrics refused"));
    // Refused: a duplicate name, a bad name.
    if (parley::register_metric(host(), "messages", PARLEY_METRIC_GAUGE, "") ||
        parley::register_metric(host(), "bad name", PARLEY_METRIC_COUNTER, ""))
      return parley::unexpected(std::string("a bad metric was accepted"));
    return {};
  }

  parley::Outcome on_stanza(const parley::ServiceStanza& in) {
    if (in.name() == "iq") return on_iq(in);
    if (in.name() != "message" || in.type() == "error") return parley::Outcome::handled;
    ++seen_.here();
    std::string body = in.stanza().child_text("body");
    messages_.add();
    body_bytes_.record(static_cast<int64_t>(body.size()));
    std::string from(in.from()), to(in.to());
    if (body.rfind("echo ", 0) == 0) {
      reply(to, from, "echo: " + body.substr(5));
    } else if (body == "ask" || body.rfind("ask-to ", 0) == 0) {
      std::string target = body == "ask" ? from : body.substr(7);
      parley::Element iq = host().element("iq", "jabber:client");
      iq.set_attr("type", "get").set_attr("from", domain_).set_attr("to", target);
      iq.add_child("query", ns_version);
      open_asks_.add(1);
      bool sent = parley::send_iq(host(), std::move(iq), std::chrono::milliseconds(timeout_ms_),
                                  [this, from, to](std::optional<parley::ElementView> answer) {
                                    open_asks_.add(-1);
                                    reply(to, from, describe(answer));
                                  });
      if (!sent) reply(to, from, "send_iq refused");
    } else if (body == "hop") {
      uint32_t loops = parley::loop_count(host());
      int32_t first = parley::current_loop(host());
      uint32_t next = (static_cast<uint32_t>(first) + 1) % loops;
      parley::post(host(), next, [this, from, to, first, loops] {
        int32_t second = parley::current_loop(host());
        parley::post(host(), static_cast<uint32_t>(first), [this, from, to, first, second] {
          int32_t third = parley::current_loop(host());
          reply(to, from,
                "hopped: " + std::to_string(first) + "->" + std::to_string(second) + "->" + std::to_string(third));
        });
        (void)loops;
      });
    } else if (body == "count") {
      reply(to, from, "count: " + std::to_string(seen_.here()));
    }
    return parley::Outcome::handled;
  }

 private:
  parley::Outcome on_iq(const parley::ServiceStanza& in) {
    auto iq = in.stanza();
    auto payload = iq.first_child();
    if (in.type() != "get" || !payload || in.to() != domain_) return parley::Outcome::pass;
    if (payload->xmlns() == ns_info) {
      parley::Element result = parley::make_iq_result(iq);
      auto query = result.add_child("query", ns_info);
      query.add_child("identity", ns_info).set_attr("category", "component").set_attr("type", "generic").set_attr(
          "name", "Test service");
      query.add_child("feature", ns_info).set_attr("var", "urn:parley:test:service");
      host().route(std::move(result));
      return parley::Outcome::handled;
    }
    if (payload->xmlns() == ns_items) {
      parley::Element result = parley::make_iq_result(iq);
      result.add_child("query", ns_items);
      host().route(std::move(result));
      return parley::Outcome::handled;
    }
    return parley::Outcome::pass;
  }

  static std::string describe(const std::optional<parley::ElementView>& answer) {
    if (!answer) return "timeout";
    if (answer->attr("type") == "error") {
      if (auto error = answer->child("error"))
        for (auto child : error->children()) return "error: " + std::string(child.name());
      return "error: ?";
    }
    if (auto query = answer->child("query", ns_version))
      if (auto name = query->child("name", ns_version)) return "version: " + std::string(name->text());
    return "version: ?";
  }

  void reply(const std::string& from, const std::string& to, const std::string& text) {
    parley::Element message = host().element("message", "jabber:client");
    message.set_attr("from", from).set_attr("to", to).set_attr("type", "chat");
    message.add_child("body", "jabber:client").add_text(text);
    host().route(std::move(message));
  }

  std::string domain_;
  int64_t timeout_ms_ = 2000;
  parley::PerLoop<uint64_t> seen_;
  parley::Metric messages_, open_asks_, body_bytes_;
};

}  // namespace

PARLEY_MODULE(ModTestService, "mod_test_service", "1.0.0",
              parley::option("subdomain", PARLEY_OPT_STRING), parley::option("iq_timeout_ms", PARLEY_OPT_INT))
