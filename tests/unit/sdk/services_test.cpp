// The ABI 1.2 C++ helpers (parley/sdk/services.hpp) against the fake host:
// a service handler through its trampoline, per-loop state, posted work,
// send_iq callbacks, typed metrics, and what an older host makes of them.
#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>

#include "fake_host.hpp"
#include "parley/module.hpp"

using namespace std::chrono_literals;

namespace {

class Svc : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    if (!parley::register_service<&Svc::on_stanza>(*this, "rooms.example.org", "Rooms"))
      return parley::unexpected(std::string("refused"));
    duplicate_refused = !parley::register_service<&Svc::on_stanza>(*this, "rooms.example.org", "Again");
    per_loop.init(host());
    hits = parley::register_metric(host(), "hits", PARLEY_METRIC_COUNTER, "stanzas");
    sizes = parley::register_metric(host(), "sizes", PARLEY_METRIC_HISTOGRAM, "bytes");
    return {};
  }
  parley::Outcome on_stanza(const parley::ServiceStanza& in) {
    if (in.type() == "throw") throw std::runtime_error("handler exploded");
    if (in.type() == "pass") return parley::Outcome::pass;
    ++per_loop.here();
    hits.add();
    sizes.record(static_cast<int64_t>(in.to().size()));
    last_from = std::string(in.from());
    last_domain = std::string(in.domain());
    return parley::Outcome::handled;
  }
  bool duplicate_refused = false;
  parley::PerLoop<int> per_loop;
  parley::Metric hits, sizes;
  std::string last_from, last_domain;
};

}  // namespace

PARLEY_MODULE_DEF(svc_def, Svc, "mod_svc", "1.0");

namespace {

struct Started {
  parley_module m;
  void* state = nullptr;
  std::string error;
  int start(const parley_host_api* api = fake::api()) {
    parley_sink sink{&error, [](void* c, const char* d, size_t n) { static_cast<std::string*>(c)->append(d, n); }};
    int rc = svc_def.start(&m, api, &state, sink);
    m.state = state;
    m.starting = false;
    return rc;
  }
  ~Started() {
    if (state) svc_def.stop(state);
  }
  Svc& mod() { return *static_cast<Svc*>(static_cast<parley::Module*>(state)); }
  int deliver(const char* xml, const char* to) {
    parley_element* stanza = fake::parse(xml);
    parley_route_request request{sizeof(parley_route_request), stanza, {"alice@example.org/pc", 20},
                                 {to, std::strlen(to)}, {"rooms.example.org", 17}};
    int rc = m.routes.at(0).fn(state, &request);
    fake::api()->element_free(stanza);
    return rc;
  }
};

}  // namespace

TEST_CASE("register_service: the route is declared once, and stanzas reach the member function") {
  Started s;
  REQUIRE(s.start() == 0);
  REQUIRE(s.m.routes.size() == 1);
  CHECK(s.m.routes[0].domain == "rooms.example.org");
  CHECK(s.m.routes[0].name == "Rooms");
  CHECK(s.mod().duplicate_refused);

  CHECK(s.deliver("<message to='room@rooms.example.org' type='chat'/>", "room@rooms.example.org") == PARLEY_HANDLED);
  CHECK(s.mod().last_from == "alice@example.org/pc");
  CHECK(s.mod().last_domain == "rooms.example.org");
  CHECK(s.deliver("<message type='pass'/>", "rooms.example.org") == PARLEY_PASS);
  // An exception stays in the module: logged, and an error for the core.
  CHECK(s.deliver("<message type='throw'/>", "rooms.example.org") == PARLEY_ERROR);
  CHECK(s.m.logged("handler exploded"));
}

TEST_CASE("PerLoop and metrics: one element per loop, records summed by the host") {
  Started s;
  REQUIRE(s.start() == 0);
  CHECK(s.mod().per_loop.size() == 2);
  s.m.loop = 1;
  s.deliver("<message/>", "a@rooms.example.org");
  s.deliver("<message/>", "a@rooms.example.org");
  s.m.loop = 0;
  s.deliver("<message/>", "rooms.example.org");
  CHECK(s.mod().per_loop.at(0) == 1);
  CHECK(s.mod().per_loop.at(1) == 2);
  REQUIRE(s.m.metric_decls.size() == 2);
  CHECK(s.m.metric_values[1] == 3);  // hits
  CHECK(s.m.metric_values[2] == 3);  // three observations
  s.m.loop = -1;
  CHECK_THROWS(s.mod().per_loop.here());  // off the loops there is no "here"
}

TEST_CASE("post and send_iq: the function runs once when the host calls back, and is freed") {
  Started s;
  REQUIRE(s.start() == 0);
  int ran = 0;
  CHECK(parley::post(s.mod().host(), 1, [&] { ++ran; }));
  CHECK_FALSE(parley::post(s.mod().host(), 7, [&] { ++ran; }));  // no such loop: dropped
  REQUIRE(s.m.posted.size() == 1);
  CHECK(s.m.posted[0].loop == 1);
  s.m.posted[0].fn(s.state, s.m.posted[0].arg);
  CHECK(ran == 1);

  std::string got;
  parley::Element iq = s.mod().host().element("iq", "jabber:client");
  iq.set_attr("type", "get").set_attr("from", "rooms.example.org").set_attr("to", "alice@example.org/pc");
  CHECK(parley::send_iq(s.mod().host(), std::move(iq), 5s, [&](std::optional<parley::ElementView> reply) {
    got = reply ? std::string(reply->attr("type").value_or("")) : "timeout";
  }));
  REQUIRE(s.m.iqs.size() == 1);
  CHECK(s.m.iqs[0].iq.find("id='fake1'") != std::string::npos);
  parley_element* answer = fake::parse("<iq type='result' id='fake1'/>");
  s.m.iqs[0].done(s.state, s.m.iqs[0].arg, answer);
  fake::api()->element_free(answer);
  CHECK(got == "result");

  parley::Element again = s.mod().host().element("iq", "jabber:client");
  again.set_attr("type", "get");
  CHECK(parley::send_iq(s.mod().host(), std::move(again), 5s, [&](std::optional<parley::ElementView> reply) {
    got = reply ? "answer" : "timeout";
  }));
  s.m.iqs[1].done(s.state, s.m.iqs[1].arg, nullptr);
  CHECK(got == "timeout");
}

TEST_CASE("a 1.1 host: the 1.2 helpers refuse instead of calling past the table") {
  parley_host_api old = fake::api_with_size(PARLEY_HOST_ENTRY_END(offer_stream_features));
  Started s;
  CHECK(s.start(&old) != 0);  // register_service throws inside start(): the trampoline reports it
  CHECK(s.error.find("1.2") != std::string::npos);
}
