// Answers every client expects from the server on day one: service discovery
// (XEP-0030) and ping (XEP-0199). They move into modules with the module
// platform; the behaviour stays.
#include "core/router/router.hpp"
#include "core/server/server.hpp"
#include "core/server/server_context.hpp"
#include "core/stanza/namespaces.hpp"
#include "core/stanza/stanza_errors.hpp"

namespace parley {

void register_builtin_iq_handlers(ServerContext& ctx) {
  IqHandlers& iq = ctx.iq_handlers;
  iq.add_server_feature(std::string(ns::disco_info));
  iq.add_server_feature(std::string(ns::disco_items));
  iq.add_server_feature(std::string(ns::ping));

  iq.add(IqScope::server, "get", std::string(ns::disco_info), [&ctx](const IqRequest& request) {
    const xml::Element* query = request.iq.first_child();
    if (query->has_attr("node")) {
      ctx.router->bounce(request.iq, "item-not-found", request.loop);
      return;
    }
    xml::Element reply = make_iq_result(request.iq);
    xml::Element& out = reply.add_child("query", std::string(ns::disco_info));
    out.add_child("identity", std::string(ns::disco_info))
        .set_attr("category", "server")
        .set_attr("type", "im")
        .set_attr("name", "Parley");
    for (const auto& feature : ctx.iq_handlers.server_features())
      out.add_child("feature", std::string(ns::disco_info)).set_attr("var", feature);
    ctx.router->route(std::move(reply), request.loop);
  });

  iq.add(IqScope::server, "get", std::string(ns::disco_items), [&ctx](const IqRequest& request) {
    const xml::Element* query = request.iq.first_child();
    if (query->has_attr("node")) {
      ctx.router->bounce(request.iq, "item-not-found", request.loop);
      return;
    }
    xml::Element reply = make_iq_result(request.iq);
    reply.add_child("query", std::string(ns::disco_items));
    ctx.router->route(std::move(reply), request.loop);
  });

  // XEP-0030 §3.1: the server answers for an account; the owner sees it.
  iq.add(IqScope::account, "get", std::string(ns::disco_info), [&ctx](const IqRequest& request) {
    if (request.from.bare() != request.to.bare() || request.iq.first_child()->has_attr("node")) {
      ctx.router->bounce(request.iq, request.from.bare() != request.to.bare() ? "service-unavailable" : "item-not-found",
                         request.loop);
      return;
    }
    xml::Element reply = make_iq_result(request.iq);
    xml::Element& out = reply.add_child("query", std::string(ns::disco_info));
    out.add_child("identity", std::string(ns::disco_info)).set_attr("category", "account").set_attr("type", "registered");
    out.add_child("feature", std::string(ns::disco_info)).set_attr("var", std::string(ns::disco_info));
    ctx.router->route(std::move(reply), request.loop);
  });

  iq.add(IqScope::server, "get", std::string(ns::ping), [&ctx](const IqRequest& request) {
    ctx.router->route(make_iq_result(request.iq), request.loop);
  });
}

}  // namespace parley
