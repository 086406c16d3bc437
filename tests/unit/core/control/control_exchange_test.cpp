// The control socket's continuations (control_server.hpp): a streamed answer, a continued
// request, and the abort a command hears of when its client goes early.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "control_test_util.hpp"
#include "core/control/control_server.hpp"
#include "core/control/netstring.hpp"

using namespace std::chrono_literals;
using namespace parley::control;
using namespace parley::test;

namespace {

// Reads until `lines` newlines arrived (the "continue" line and its text).
std::string read_lines(int fd, int lines) {
  std::string out;
  char c;
  while (lines > 0 && ::recv(fd, &c, 1, 0) == 1) {
    out += c;
    if (c == '\n') --lines;
  }
  return out;
}

// Runs the loop until `done` (bounded: a test never waits forever).
template <class F>
bool run_until(Loop& loop, F done) {
  for (int i = 0; i < 30000 && !done(); ++i) {  // ~30 s: a safety net only
    uv_run(loop.get(), UV_RUN_NOWAIT);
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

}  // namespace

TEST_CASE("a streamed answer: pieces as netstrings, the empty one, then the status") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);
  int written = 0;
  server.add_exchange_command("pieces", "", [&](std::vector<std::string> args, std::shared_ptr<Exchange> ex) {
    auto count = [&](bool ok) { written += ok ? 1 : 100; };
    CHECK_FALSE(ex->send_piece("", count));  // an empty piece would be the end marker
    CHECK(ex->send_piece("abc", count));
    CHECK(ex->send_piece("d,e:\n", count));
    CHECK(ex->send_piece(std::string(100000, 'x'), count));
    ex->finish(args.size() == 1, args.size() == 1 ? "done" : "failed half-way");
    CHECK_FALSE(ex->send_piece("late", count));  // after the final answer began
  });
  server.add_exchange_command("plain", "", [](std::vector<std::string>, std::shared_ptr<Exchange> ex) {
    ex->finish(true, "no pieces");
  });
  REQUIRE(server.start().has_value());

  std::string answer = ask(loop, path, {"pieces"});
  CHECK(answer == "stream\n3:abc,5:d,e:\n,100000:" + std::string(100000, 'x') + ",0:,ok\ndone\n");
  CHECK(written == 3);
  CHECK(ask(loop, path, {"pieces", "fail"}) ==
        "stream\n3:abc,5:d,e:\n,100000:" + std::string(100000, 'x') + ",0:,error\nfailed half-way\n");
  // Without pieces the answer is a plain one.
  CHECK(ask(loop, path, {"plain"}) == "ok\nno pieces\n");
  server.close();
}

TEST_CASE("a continued request: the next request on the same connection goes to the command") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);
  int aborts = 0;
  std::vector<std::string> seen;
  std::function<void(std::vector<std::string>, std::shared_ptr<Exchange>)> step;
  step = [&](std::vector<std::string> args, std::shared_ptr<Exchange> ex) {
    seen.push_back(args.back());
    if (args.back() == "end") return ex->finish(true, std::to_string(seen.size()) + " requests");
    CHECK(ex->continue_with("got\n" + args.back(), [&step, ex](std::vector<std::string> next) { step(next, ex); }));
  };
  server.add_exchange_command("parts", "", [&](std::vector<std::string> args, std::shared_ptr<Exchange> ex) {
    ex->on_abort([&] { ++aborts; });
    step(std::move(args), ex);
  });
  REQUIRE(server.start().has_value());

  std::string answer = loop.run_while([&] {
    int fd = connect_to(path);
    std::string r = "<connect failed>";
    if (fd < 0) return r;
    std::string req = encode_request({"parts", "one"});
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    r = read_lines(fd, 2);  // a newline in the line's text is sent as a space
    req = encode_request({"part", "two"});
    // The next request in fragments.
    ::send(fd, req.data(), 3, MSG_NOSIGNAL);
    std::this_thread::sleep_for(5ms);
    ::send(fd, req.data() + 3, req.size() - 3, MSG_NOSIGNAL);
    r += read_lines(fd, 2);
    req = encode_request({"part", "end"});
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    r += read_all(fd);
    ::close(fd);
    return r;
  });
  CHECK(answer == "continue\ngot one\ncontinue\ngot two\nok\n3 requests\n");
  CHECK(seen == std::vector<std::string>{"one", "two", "end"});
  CHECK(aborts == 0);  // finished: no abort

  // The client goes after the first part: the command hears of it once.
  seen.clear();
  loop.run_while([&] {
    int fd = connect_to(path);
    if (fd < 0) return;
    std::string req = encode_request({"parts", "one"});
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    read_lines(fd, 2);
    ::close(fd);
  });
  CHECK(run_until(loop, [&] { return aborts == 1; }));

  // A malformed next request is answered by the connection: an abort for the command.
  std::string malformed = loop.run_while([&] {
    int fd = connect_to(path);
    std::string r;
    if (fd < 0) return r;
    std::string req = encode_request({"parts", "one"});
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    read_lines(fd, 2);
    ::send(fd, "5:part", 6, MSG_NOSIGNAL);
    ::send(fd, ";\n", 2, MSG_NOSIGNAL);
    r = read_all(fd);
    ::close(fd);
    return r;
  });
  CHECK(malformed.rfind("error\nmalformed request", 0) == 0);
  CHECK(run_until(loop, [&] { return aborts == 2; }));
  server.close();
}

TEST_CASE("a streamed answer to a client that went away: the pieces are refused or reported unwritten") {
  TempDir dir;
  Loop loop;
  const std::string path = dir.file("ctl.sock");
  ControlServer server(loop.get(), path);
  std::shared_ptr<Exchange> held;
  int aborts = 0;
  server.add_exchange_command("slow", "", [&](std::vector<std::string>, std::shared_ptr<Exchange> ex) {
    ex->on_abort([&] { ++aborts; });
    held = ex;  // answers later
  });
  REQUIRE(server.start().has_value());
  int client = -1;
  loop.run_while([&] {
    client = connect_to(path);
    if (client < 0) return;
    std::string req = encode_request({"slow"});
    ::send(client, req.data(), req.size(), MSG_NOSIGNAL);
  });
  REQUIRE(run_until(loop, [&] { return held != nullptr; }));
  // The connection ends before the answer (here the server closing, as a timeout would).
  server.close();
  CHECK(run_until(loop, [&] { return aborts == 1; }));
  bool called = false;
  CHECK_FALSE(held->send_piece("x", [&](bool) { called = true; }));
  CHECK_FALSE(called);
  held->finish(true, "ignored");
  held.reset();
  if (client >= 0) ::close(client);
}

TEST_CASE("scan_netstring: the pieces of a streamed answer, fragmented and malformed") {
  const std::string stream = "3:abc,0:,";
  for (size_t n = 0; n < 6; ++n) {
    CAPTURE(n);
    CHECK(scan_netstring(std::string_view(stream).substr(0, n), 0).status == ScanStatus::incomplete);
  }
  auto first = scan_netstring(stream, 0);
  REQUIRE(first.status == ScanStatus::complete);
  CHECK(first.value == "abc");
  CHECK(first.next == 6);
  auto end = scan_netstring(stream, first.next);
  REQUIRE(end.status == ScanStatus::complete);
  CHECK(end.value.empty());
  CHECK(end.next == stream.size());
  for (const char* bad : {"3:abc;", "x:", "03:abc,", "3;abc,", ":abc,"}) {
    CAPTURE(bad);
    CHECK(scan_netstring(bad, 0).status == ScanStatus::malformed);
  }
  // The bound is the caller's.
  CHECK(scan_netstring("11:hello world,", 0, 10).status == ScanStatus::malformed);
  CHECK(scan_netstring("11:hello world,", 0, 11).status == ScanStatus::complete);
  CHECK(scan_request("4:help,\n", 3).status == ScanStatus::malformed);
  CHECK(scan_request("4:help,\n", 4).status == ScanStatus::complete);
}
