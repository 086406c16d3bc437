// core/export/pie_reader.hpp - reads XEP-0227 (Portable Import/Export, urn:xmpp:pie:0)
// documents one <user/> at a time.
//
// The document is fed in chunks (a file of any size, or the one-user document the control
// socket carries); each complete <user/> is built as an element tree and handed over, then
// dropped, so memory is bounded by the largest user (PieLimits), never by the file.
// Whatever is not XEP-0227's frame (server-data > host > user) is skipped: elements the
// format does not name at those levels, whitespace. Inside a <user/> everything is kept
// for the modules that own its namespaces. A DOCTYPE is refused (no entity expansion).
// Errors name the line of the input where they were found. Files may be split with
// XInclude as XEP-0227 section 4 describes (read_pie_file only: hrefs are relative to
// the including file). The namespace of XEP-0227 before 1.1
// (http://www.xmpp.org/extensions/xep-0227.html#ns) is read as urn:xmpp:pie:0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "parley/result.hpp"
#include "xml/element.hpp"

namespace parley::pie {

inline constexpr std::string_view kPieNs = "urn:xmpp:pie:0";
inline constexpr std::string_view kScramNs = "urn:xmpp:pie:0#scram";

struct PieLimits {
  size_t max_user_bytes = 16 * 1024 * 1024;  // bytes of one <user/>, from its start tag to its end tag
                                             // (with part_bytes: of one part)
  size_t max_depth = 64;                      // open elements inside one <user/>, itself included
  // 0: each <user/> is handed over whole. Else a <user/> larger than this is handed over in
  // parts (an account of any size in bounded memory): a part ends after the entry of a
  // list (<archive xmlns='urn:xmpp:pie:0#mam'/>, <offline-messages/>) that brings its
  // bytes to part_bytes. Every part is a <user/> with the same attributes; the first
  // holds every child that came before the cut, the later ones what came after the last
  // cut, the list cut through appearing (same name and attributes) in both parts with the
  // entries of each.
  size_t part_bytes = 0;
};

struct PieUser {
  std::string host;   // the <host jid=''> around it, as written
  std::string name;   // its name='' (the localpart), as written
  uint64_t line = 0;  // the line of its start tag
  xml::Element user;  // <user xmlns='urn:xmpp:pie:0'/> with every child (of this part)
  uint32_t part = 0;  // with PieLimits::part_bytes: 0 for the first part, then 1, 2, ...
  bool last = true;   // the account's last part (its only one when not cut)
};

struct PieError {
  uint64_t line = 0;  // 0: not tied to a line (the input ended early)
  std::string message;
  std::string to_string() const;  // "line 12: ..."
};

class PieReader {
 public:
  // Called for each complete user, in document order; return false to stop reading
  // (feed then returns the error "stopped").
  using UserFn = std::function<bool(PieUser&&)>;
  explicit PieReader(UserFn on_user, PieLimits limits = {});
  ~PieReader();
  PieReader(const PieReader&) = delete;
  PieReader& operator=(const PieReader&) = delete;

  // The next bytes of the document. After an error every later call returns it again.
  Result<void, PieError> feed(std::string_view bytes);
  // The end of the input: the document must be complete.
  Result<void, PieError> finish();

  uint64_t users() const;  // users handed over so far
  // The directory XInclude hrefs are relative to (read_pie_file sets the file's).
  void set_base_dir(std::string dir);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Reads a whole document from memory (tests, the control socket's one-user documents).
Result<uint64_t, PieError> read_pie(std::string_view document, const PieReader::UserFn& on_user,
                                    PieLimits limits = {});
// Reads a file in chunks. The error of an unreadable file has line 0.
Result<uint64_t, PieError> read_pie_file(const std::string& path, const PieReader::UserFn& on_user,
                                         PieLimits limits = {});

}  // namespace parley::pie
