// The HTTP side of BOSH (XEP-0124 §5, XEP-0206) on an HTTP listener's
// connection: a POST to /http-bind is read whole (bosh_max_body_bytes), handed
// to BoshSession::handle, and waits for its answer, which comes back as a
// posted task (bosh_answer) however late (up to the session's 'wait').
// Reading stops meanwhile (the next pipelined request waits: answers go in
// request order, RFC 9112 §9.3.2). CORS lets web clients on other origins in.
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <unordered_map>

#include "core/net/connection.hpp"
#include "core/net/http_transport.hpp"
#include "core/server/server_context.hpp"

namespace parley {

namespace {

// This loop's connections waiting for a BOSH answer, by wait id. Ids carry
// the loop (above bit 48), so none is ever reused server-wide.
thread_local std::unordered_map<uint64_t, HttpTransport*> t_bosh_waits;
thread_local uint64_t t_next_bosh_wait = 1;

void cors(std::vector<http::Header>& headers) {
  headers.push_back({"Access-Control-Allow-Origin", "*"});
}

}  // namespace

void bosh_answer(ServerContext& ctx, const BoshReply& to, BoshAnswer answer) {
  // Always posted, also to this loop: the session never calls into an HTTP
  // connection from inside its own work (nor the reverse).
  auto a = std::make_shared<BoshAnswer>(std::move(answer));
  uint64_t id = to.id;
  ctx.loops[to.loop]->loop.post([id, a] { HttpTransport::bosh_deliver(id, std::move(*a)); });
}

void HttpTransport::bosh_deliver(uint64_t id, BoshAnswer&& answer) {
  auto it = t_bosh_waits.find(id);
  if (it == t_bosh_waits.end()) return;  // the connection went: a repeat of the rid gets the answer again
  it->second->bosh_respond(std::move(answer));
}

bool HttpTransport::bosh_head(const http::Request& request) {
  if (request.method != "POST") return false;  // answered whole by bosh_other
  size_t limit = ctx_.config.limits.bosh_max_body_bytes;
  std::string_view declared = request.header("Content-Length");
  if (!declared.empty() && std::strtoull(std::string(declared).c_str(), nullptr, 10) > limit) {
    std::vector<http::Header> headers{{"Content-Type", "text/plain; charset=utf-8"}};
    cors(headers);
    answer_now(413, std::move(headers), "request body too large\n");
    return true;
  }
  server_.set_body_limit(limit);
  bosh_open_ = true;
  bosh_body_.clear();
  progress();
  return true;
}

void HttpTransport::bosh_body_end() {
  bosh_wait_ = (uint64_t{conn_.loop().loop.index() + 1} << 48) | t_next_bosh_wait++;
  t_bosh_waits[bosh_wait_] = this;
  // Held up to the session's 'wait': the idle timeout gives it that long.
  const auto& limits = ctx_.config.limits;
  conn_.arm_deadline((uint64_t{limits.http_idle_timeout} + limits.bosh_max_wait) * 1000);
  std::string body = std::move(bosh_body_);
  bosh_body_.clear();
  BoshSession::handle(ctx_, conn_.loop(), listener_, body, BoshReply{conn_.loop().loop.index(), bosh_wait_},
                      listener_.tls, conn_.peer_ip());
}

void HttpTransport::bosh_respond(BoshAnswer&& answer) {
  bosh_drop();
  if (answer.cut) {
    server_.kill();
    conn_.cut();
    return;
  }
  std::vector<http::Header> headers{{"Content-Type", answer.content_type}, {"Cache-Control", "no-store"}};
  cors(headers);
  server_.start_response(answer.status, headers, static_cast<int64_t>(answer.body.size()));
  server_.write_body(answer.body);
  bool go_on = server_.end_response();
  settle(go_on);
}

void HttpTransport::bosh_drop() {
  bosh_open_ = false;
  bosh_body_.clear();
  if (bosh_wait_ != 0) {
    t_bosh_waits.erase(bosh_wait_);
    bosh_wait_ = 0;
  }
}

void HttpTransport::bosh_other(const http::Request& request, http::Response& response) {
  if (request.method == "OPTIONS") {
    // A CORS preflight (a web client posting text/xml from another origin).
    response.status = 200;
    cors(response.headers);
    response.headers.push_back({"Access-Control-Allow-Methods", "POST, OPTIONS"});
    response.headers.push_back({"Access-Control-Allow-Headers", "Content-Type"});
    response.headers.push_back({"Access-Control-Max-Age", "86400"});
    return;
  }
  response.status = 405;
  response.headers.push_back({"Allow", "POST, OPTIONS"});
  response.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
  response.body = "XMPP over BOSH (XEP-0206): POST a <body/>\n";
}

}  // namespace parley
