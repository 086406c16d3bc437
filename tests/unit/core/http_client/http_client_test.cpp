// The core's HTTP client (libcurl multi on a libuv loop) against small servers
// on 127.0.0.1 run by threads of the test: a request completes on the loop
// with the status and body; a server that accepts and never answers times
// out while the loop keeps running; the in-flight bound, cancellation and
// the response size limit.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/http_client/http_client.hpp"

using namespace parley::http_client;

namespace {

// One listening socket; each connection is served by `answer` (or held
// open unanswered when it returns nullopt) on the server's thread.
class TestServer {
 public:
  explicit TestServer(std::function<std::optional<std::string>(const std::string& request)> answer)
      : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 16) == 0);
    thread_ = std::thread([this] { run(); });
  }
  ~TestServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : held_) ::close(c);
  }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  void run() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      size_t need = std::string::npos;
      while (true) {
        auto end = req.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
          size_t cl = 0;
          auto p = req.find("Content-Length: ");
          if (p != std::string::npos && p < end) cl = std::stoul(req.substr(p + 16));
          need = end + 4 + cl;
        }
        if (need != std::string::npos && req.size() >= need) break;
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        last_ = req;
      }
      auto reply = answer_(req);
      if (!reply) {
        held_.push_back(c);  // hangs: never answered
        continue;
      }
      (void)!::write(c, reply->data(), reply->size());
      ::close(c);
    }
  }
  std::function<std::optional<std::string>(const std::string&)> answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<int> held_;
  std::mutex mu_;
  std::string last_;
};

std::string http_reply(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

struct Loop {
  uv_loop_t uv{};
  Loop() { uv_loop_init(&uv); }
  ~Loop() {
    uv_run(&uv, UV_RUN_DEFAULT);  // the client's handles close
    CHECK(uv_loop_close(&uv) == 0);
  }
  // Runs the loop until `cond` or a 10 s safety deadline.
  template <class F>
  void run_until(F cond) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cond() && std::chrono::steady_clock::now() < deadline) uv_run(&uv, UV_RUN_ONCE);
  }
};

}  // namespace

TEST_CASE("a POST completes on the loop with the status and the body; the request as sent") {
  TestServer server([](const std::string&) { return http_reply(201, "created"); });
  Loop loop;
  Client client(&loop.uv, Limits{});
  std::optional<Response> got;
  Request req;
  req.url = server.url();
  req.headers = {"Content-Type: application/json", "X-Sig: abc"};
  req.body = "{\"a\":1}";
  uint64_t id = client.start(req, nullptr, [&](Response&& r) { got = std::move(r); });
  CHECK(id != 0);
  CHECK_FALSE(got);  // never during start()
  loop.run_until([&] { return got.has_value(); });
  REQUIRE(got);
  CHECK(got->error == "");
  CHECK(got->status == 201);
  CHECK(got->body == "created");
  std::string sent = server.last_request();
  CHECK(sent.rfind("POST /hook HTTP/1.1\r\n", 0) == 0);
  CHECK(sent.find("X-Sig: abc\r\n") != std::string::npos);
  CHECK(sent.find("Expect:") == std::string::npos);
  CHECK(sent.substr(sent.size() - 7) == "{\"a\":1}");
  CHECK(client.in_flight() == 0);
  client.close();
}

TEST_CASE("a server that never answers: the request times out, the loop runs meanwhile") {
  TestServer server([](const std::string&) { return std::nullopt; });
  Loop loop;
  Client client(&loop.uv, Limits{});
  std::optional<Response> got;
  Request req;
  req.url = server.url();
  req.timeout_ms = 300;
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(client.start(req, nullptr, [&](Response&& r) { got = std::move(r); }) != 0);
  // A timer on the same loop keeps firing while the request hangs.
  int ticks = 0;
  uv_timer_t tick;
  uv_timer_init(&loop.uv, &tick);
  tick.data = &ticks;
  uv_timer_start(&tick, [](uv_timer_t* t) { ++*static_cast<int*>(t->data); }, 20, 20);
  loop.run_until([&] { return got.has_value(); });
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(got);
  CHECK(got->error == "timeout");
  CHECK(got->status == 0);
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::seconds(5));
  CHECK(ticks >= 5);
  client.close();
}

TEST_CASE("nobody listening: connect error") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // a port nobody listens on
  Loop loop;
  Client client(&loop.uv, Limits{});
  std::optional<Response> got;
  Request req;
  req.url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/";
  REQUIRE(client.start(req, nullptr, [&](Response&& r) { got = std::move(r); }) != 0);
  loop.run_until([&] { return got.has_value(); });
  REQUIRE(got);
  CHECK(got->error == "connect");
  client.close();
}

TEST_CASE("bounded: max_requests in flight, then refused; cancel_owner and close end them as cancelled") {
  TestServer server([](const std::string&) { return std::nullopt; });
  Loop loop;
  Client client(&loop.uv, Limits{2, 1024});
  std::vector<std::string> errors;
  Request req;
  req.url = server.url();
  int owner_a = 0, owner_b = 0;
  CHECK(client.start(req, &owner_a, [&](Response&& r) { errors.push_back("a:" + r.error); }) != 0);
  CHECK(client.start(req, &owner_b, [&](Response&& r) { errors.push_back("b:" + r.error); }) != 0);
  CHECK(client.start(req, &owner_b, [&](Response&&) { errors.push_back("refused one ran"); }) == 0);
  CHECK(client.in_flight() == 2);
  uv_run(&loop.uv, UV_RUN_NOWAIT);
  CHECK(client.cancel_owner(&owner_a) == 1);
  CHECK(errors == std::vector<std::string>{"a:cancelled"});
  client.close();
  CHECK(errors == std::vector<std::string>{"a:cancelled", "b:cancelled"});
  CHECK(client.start(req, nullptr, [](Response&&) {}) == 0);  // closed
}

TEST_CASE("a response body past max_response_bytes fails too-large") {
  TestServer server([](const std::string&) { return http_reply(200, std::string(5000, 'x')); });
  Loop loop;
  Client client(&loop.uv, Limits{8, 1024});
  std::optional<Response> got;
  Request req;
  req.url = server.url();
  req.method = "GET";
  REQUIRE(client.start(req, nullptr, [&](Response&& r) { got = std::move(r); }) != 0);
  loop.run_until([&] { return got.has_value(); });
  REQUIRE(got);
  CHECK(got->error == "too-large");
  client.close();
}

TEST_CASE("malformed requests are refused before anything is sent") {
  Request r;
  r.url = "http://127.0.0.1/";
  CHECK(check_request(r) == "");
  r.method = "post";
  CHECK(check_request(r) != "");
  r.method = "POST";
  r.url = "file:///etc/passwd";
  CHECK(check_request(r) != "");
  r.url = "gopher://127.0.0.1/";
  CHECK(check_request(r) != "");
  r.url = "http://127.0.0.1/a b";
  CHECK(check_request(r) != "");
  r.url = "http://127.0.0.1/";
  r.headers = {"X-A: b\r\nX-Injected: 1"};
  CHECK(check_request(r) != "");
  r.headers = {"no colon"};
  CHECK(check_request(r) != "");
}
