// An HTTP client on one libuv loop: libcurl's multi interface driven by the
// loop (curl_multi_socket_action from uv_poll and uv_timer callbacks), so a
// request never blocks the loop, whatever the server at the other end does
// (ARCHITECTURE.md: "HTTP clients complete via the loop"). One Client per
// worker loop, made with the loop's first request; owned and touched by that
// loop's thread only. Name resolution is libcurl's threaded resolver (Debian's
// libcurl4-openssl: AsynchDNS), off the loop too.
//
// Bounded: at most Limits::max_requests in flight (start() refuses past it),
// each with a deadline for the whole exchange and a response body of at most
// Limits::max_response_bytes (past it the request fails "too-large").
// Redirects are not followed; only http:// and https:// are spoken.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace parley::http_client {

struct Request {
  std::string method = "POST";       // upper-case token: GET, POST, PUT, DELETE, HEAD, ...
  std::string url;                   // http:// or https://
  std::vector<std::string> headers;  // "Name: value", no CR or LF
  std::string body;
  uint64_t timeout_ms = 30000;       // connect to last byte
};

struct Response {
  long status = 0;    // the HTTP status; 0 when no response came
  std::string body;
  std::string error;  // empty: a response came (any status); else "timeout", "connect", "too-large",
                      // "cancelled", or libcurl's description
};

struct Limits {
  size_t max_requests = 256;
  size_t max_response_bytes = 1024 * 1024;
};

// Why start() refused a request ("" when it did not).
std::string check_request(const Request& request);

class Client {
 public:
  using Done = std::function<void(Response&& response)>;

  Client(uv_loop_t* loop, Limits limits);
  // After close() (on the loop); the handles' close callbacks free what they own.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a request for `owner` (any tag: cancel_owner ends them together).
  // Returns its id (never 0); `done` runs exactly once, later on this loop
  // (never during this call), unless cancelled by cancel_owner/close, which
  // run it during their call. 0: refused (check_request, max_requests in
  // flight, closed) and done is dropped.
  uint64_t start(Request request, const void* owner, Done done);
  // Ends `owner`'s requests now, each done() running with error "cancelled".
  size_t cancel_owner(const void* owner);
  // Ends every request ("cancelled") and closes the loop handles; start()
  // refuses from here on. Call on the loop before it stops.
  void close();

  size_t in_flight() const { return transfers_.size(); }
  const Limits& limits() const { return limits_; }

  struct Transfer;
  struct Socket;

 private:
  static int on_socket(void* easy, int fd, int action, void* userp, void* socketp);
  static int on_timer(void* multi, long timeout_ms, void* userp);
  static void on_timeout(uv_timer_t* timer);
  static void on_poll(uv_poll_t* poll, int status, int events);
  void drive(int fd, int flags);
  void collect();
  void finish(uint64_t id, Response&& response);
  void close_socket(Socket* socket);

  uv_loop_t* loop_;
  Limits limits_;
  void* multi_ = nullptr;      // CURLM*
  uv_timer_t* timer_ = nullptr;  // heap: freed by its close callback
  std::set<Socket*> sockets_;
  std::map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
  bool driving_ = false;  // inside curl_multi_socket_action: no re-entry
};

}  // namespace parley::http_client
