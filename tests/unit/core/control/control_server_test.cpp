#include "core/control/control_server.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include "control_test_util.hpp"
#include "core/control/netstring.hpp"

using namespace std::chrono_literals;
using namespace parley::control;
using namespace parley::test;

namespace {

// A socket file with nobody behind it, as a crashed server leaves.
void make_stale_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("requests, replies, help and unknown commands") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);
  server.add_command("echo", "answer with the arguments", [](std::vector<std::string> args, Reply reply) {
    std::string body;
    for (size_t i = 1; i < args.size(); ++i) body += "[" + args[i] + "]";
    reply(true, body);
  });
  server.add_command("fail", "always fails", [](std::vector<std::string>, Reply reply) { reply(false, "no\n"); });
  REQUIRE(server.start().has_value());

  CHECK(ask(loop, path, {"echo", "a b", "c,d:e\nf", ""}) == "ok\n[a b][c,d:e\nf][]\n");
  CHECK(ask(loop, path, {"fail"}) == "error\nno\n");
  CHECK(ask(loop, path, {"echo"}) == "ok\n");

  std::string help = ask(loop, path, {"help"});
  CHECK(help.rfind("ok\n", 0) == 0);
  CHECK(help.find("echo") != std::string::npos);
  CHECK(help.find("answer with the arguments") != std::string::npos);
  CHECK(help.find("fail") != std::string::npos);
  CHECK(help.find("help") != std::string::npos);

  std::string unknown = ask(loop, path, {"frobnicate"});
  CHECK(unknown.rfind("error\n", 0) == 0);
  CHECK(unknown.find("unknown command 'frobnicate'") != std::string::npos);

  SUBCASE("a request sent byte by byte") {
    std::string request = encode_request({"echo", "slow"});
    std::vector<std::string> bytes;
    for (char c : request) bytes.emplace_back(1, c);
    CHECK(loop.run_while([&] { return talk(path, bytes, 2ms); }) == "ok\n[slow]\n");
  }
  SUBCASE("a replaced command") {
    server.add_command("echo", "new", [](std::vector<std::string>, Reply reply) { reply(true, "v2"); });
    CHECK(ask(loop, path, {"echo", "x"}) == "ok\nv2\n");
  }
  server.close();
}

TEST_CASE("malformed, oversized and unfinished requests get an error") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);
  int calls = 0;
  server.add_command("count", "", [&](std::vector<std::string>, Reply reply) {
    ++calls;
    reply(true, "");
  });
  REQUIRE(server.start().has_value());

  for (std::string bad : {"count\n", "5:count;\n", "\n", "5:count,\nextra", "05:count,\n", "99999999:"}) {
    CAPTURE(bad);
    std::string answer = loop.run_while([&] { return talk(path, {bad}); });
    CHECK(answer.rfind("error\nmalformed request: ", 0) == 0);
  }

  SUBCASE("too large") {
    // A netstring whose declared length is under the bound (kMaxRequestBytes) but whose bytes,
    // with the request's first netstring, go over it before it is complete.
    std::string big = std::to_string(kMaxRequestBytes - 10) + ":" + std::string(kMaxRequestBytes - 16, 'x');
    std::string answer = loop.run_while([&] { return talk(path, {"5:count,", big}); });
    CHECK(answer == "error\nrequest too large\n");
  }
  SUBCASE("EOF before the end of the request") {
    std::string answer = loop.run_while([&] {
      int fd = connect_to(path);
      ::send(fd, "5:cou", 5, MSG_NOSIGNAL);
      ::shutdown(fd, SHUT_WR);
      std::string a = read_all(fd);
      ::close(fd);
      return a;
    });
    CHECK(answer == "error\nincomplete request\n");
  }
  SUBCASE("a client that connects and leaves") {
    loop.run_while([&] { ::close(connect_to(path)); });
    for (int i = 0; i < 20 && server.connection_count() > 0; ++i) uv_run(loop.get(), UV_RUN_NOWAIT);
  }
  CHECK(calls == 0);
  server.close();
}

TEST_CASE("time limits: a slow client, a command that never answers") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);
  server.set_timeouts(100, 150);
  std::optional<Reply> kept;
  server.add_command("hang", "", [&](std::vector<std::string>, Reply reply) { kept = reply; });
  REQUIRE(server.start().has_value());

  auto start = std::chrono::steady_clock::now();
  CHECK(loop.run_while([&] { return talk(path, {"4:ha"}); }) == "error\nrequest timed out\n");
  CHECK(std::chrono::steady_clock::now() - start < 5s);

  CHECK(ask(loop, path, {"hang"}) == "error\ncommand timed out\n");
  REQUIRE(kept.has_value());
  (*kept)(true, "too late");  // after the connection closed: ignored, no crash
  uv_run(loop.get(), UV_RUN_NOWAIT);
  CHECK(server.connection_count() == 0);
  server.close();
}

TEST_CASE("asynchronous replies, answered once") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);

  // The command answers from a timer on the loop, 30 ms later, twice.
  struct Later {
    uv_timer_t timer;
    Reply reply;
  };
  server.add_command("later", "", [&](std::vector<std::string> args, Reply reply) {
    auto* later = new Later{{}, std::move(reply)};
    uv_timer_init(loop.get(), &later->timer);
    later->timer.data = later;
    uv_timer_start(
        &later->timer,
        [](uv_timer_t* t) {
          auto* l = static_cast<Later*>(t->data);
          l->reply(true, "first");
          l->reply(false, "second");
          uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
        },
        30, 0);
  });
  server.add_command("throws", "", [](std::vector<std::string>, Reply) -> void {
    throw std::runtime_error("boom");
  });
  REQUIRE(server.start().has_value());

  // Several clients at once, each answered on its own.
  auto answers = loop.run_while([&] {
    std::vector<std::future<std::string>> clients;
    for (int i = 0; i < 5; ++i) {
      clients.push_back(std::async(std::launch::async, [&] { return talk(path, {encode_request({"later"})}); }));
    }
    std::vector<std::string> out;
    for (auto& c : clients) out.push_back(c.get());
    return out;
  });
  for (const auto& a : answers) CHECK(a == "ok\nfirst\n");

  std::string thrown = ask(loop, path, {"throws"});
  CHECK(thrown == "error\ninternal error: boom\n");
  server.close();
}

TEST_CASE("the socket is owner-only and removed by close") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  {
    ControlServer server(loop.get(), path);
    REQUIRE(server.start().has_value());
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    CHECK_FALSE(server.start().has_value());  // only once
    server.close();
    CHECK_FALSE(std::filesystem::exists(path));
    server.close();  // idempotent
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a stale socket is replaced, a live one is not stolen") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");

  SUBCASE("stale") {
    make_stale_socket(path);
    ControlServer server(loop.get(), path);
    auto r = server.start();
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
    CHECK(ask(loop, path, {"help"}).rfind("ok\n", 0) == 0);
    server.close();
  }
  SUBCASE("live") {
    ControlServer first(loop.get(), path);
    REQUIRE(first.start().has_value());
    ControlServer second(loop.get(), path);
    auto r = second.start();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("another parleyd is running") != std::string::npos);
    second.close();  // must not remove the first one's socket
    CHECK(std::filesystem::exists(path));
    CHECK(ask(loop, path, {"help"}).rfind("ok\n", 0) == 0);
    first.close();
  }
  SUBCASE("not a socket") {
    std::ofstream(path) << "precious";
    ControlServer server(loop.get(), path);
    auto r = server.start();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("not a socket") != std::string::npos);
    std::ifstream in(path);
    std::string content;
    in >> content;
    CHECK(content == "precious");
  }
  SUBCASE("a socket replaced behind our back is not removed by close") {
    ControlServer first(loop.get(), path);
    REQUIRE(first.start().has_value());
    ::unlink(path.c_str());
    ControlServer second(loop.get(), path);
    REQUIRE(second.start().has_value());
    first.close();
    CHECK(std::filesystem::exists(path));
    second.close();
    CHECK_FALSE(std::filesystem::exists(path));
  }
  SUBCASE("a path too long for a Unix socket") {
    ControlServer server(loop.get(), dir.path() + "/" + std::string(200, 'x'));
    auto r = server.start();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().find("too long") != std::string::npos);
  }
}

TEST_CASE("close drops open connections; their late replies are ignored") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  std::optional<Reply> kept;
  {
    ControlServer server(loop.get(), path);
    std::atomic<bool> arrived{false};
    server.add_command("hang", "", [&](std::vector<std::string>, Reply reply) {
      kept = reply;
      arrived = true;
    });
    REQUIRE(server.start().has_value());
    std::string answer = loop.run_while([&] {
      int fd = connect_to(path);
      std::string req = encode_request({"hang"});
      ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
      while (!arrived) std::this_thread::sleep_for(1ms);  // the loop thread sets it
      return std::string("sent");
    });
    CHECK(answer == "sent");
    CHECK(server.connection_count() == 1);
  }  // destroyed without an explicit close()
  uv_run(loop.get(), UV_RUN_NOWAIT);
  REQUIRE(kept.has_value());
  (*kept)(true, "after the server");
  CHECK_FALSE(std::filesystem::exists(path));
}
