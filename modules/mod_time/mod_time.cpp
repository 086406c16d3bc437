// mod_time: XEP-0202 Entity Time of the server.
//
//   get <time xmlns='urn:xmpp:time'/> to the server -> <tzo/> and <utc/> (section 2)
//   set                                            -> not-allowed (the namespace defines a get only)
//   a get whose <time/> has children, or another
//   element of the namespace                       -> bad-request (<tzo/> and <utc/> are
//                                                     defined for results)
//
// Only the server's own time: an iq to a user's full JID is that user's
// client's business, and the core routes it there.
//
// The offset is +00:00 unless the operator asks for the server's local one
// (`local_offset: true`): XEP-0202 section 6 notes that the offset tells
// where an entity is, and a server's clock zone says nothing its users need
// (Prosody answers +00:00 too). <utc/> carries milliseconds (XEP-0082 allows
// a fraction): a client that sets its clock by the server gets more than the
// second.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "parley/module.hpp"
#include "parley/sdk/stamp.hpp"

namespace {

constexpr const char* ns_time = "urn:xmpp:time";

// XEP-0082's TZD of an offset east of UTC in seconds: "+hh:mm" or "-hh:mm".
std::string tzd(long offset_seconds) {
  const char sign = offset_seconds < 0 ? '-' : '+';
  long minutes = std::labs(offset_seconds) / 60;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", sign, (minutes / 60) % 100, minutes % 60);
  return buf;
}

class ModTime : public parley::Module {
 public:
  parley::Result<void, std::string> start() override {
    local_offset_ = host().option_bool("local_offset").value_or(false);
    // glibc reads the zone file (/etc/localtime or TZ) at the first call: here,
    // not on a loop thread at the first request.
    if (local_offset_) tzset();
    return {};
  }

  void on_time(const parley::IqRequest& request) {
    if (request.type() != "get") return host().bounce(request.iq(), "not-allowed");
    auto query = request.payload();
    if (!query || query->name() != "time")
      return host().bounce(request.iq(), "bad-request", "the request is <time xmlns='urn:xmpp:time'/>");
    if (query->child_count() != 0)
      return host().bounce(request.iq(), "bad-request", "<tzo/> and <utc/> belong in the result");
    const auto now = std::chrono::system_clock::now();
    parley::Element reply = parley::make_iq_result(request.iq());
    parley::ElementRef time = reply.add_child("time", ns_time);
    time.add_child("tzo", ns_time).add_text(tzd(local_offset_ ? offset_at(now) : 0));
    time.add_child("utc", ns_time).add_text(parley::xep0082_stamp(now));
    host().route(std::move(reply));
  }

 private:
  // The local zone's offset at that moment (it changes with daylight saving).
  static long offset_at(std::chrono::system_clock::time_point when) {
    std::time_t t = std::chrono::system_clock::to_time_t(when);
    std::tm local{};
    if (localtime_r(&t, &local) == nullptr) return 0;
    return local.tm_gmtoff;
  }

  bool local_offset_ = false;
};

}  // namespace

PARLEY_MODULE(ModTime, "mod_time", "1.0.0",
              parley::option("local_offset", PARLEY_OPT_BOOL),
              parley::iq_handler<&ModTime::on_time>(PARLEY_IQ_SERVER, PARLEY_IQ_GET | PARLEY_IQ_SET, ns_time),
              parley::disco_feature(ns_time))
