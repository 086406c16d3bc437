// mod_mam's rules, kept apart from the module so that they are tested without a host:
// which messages are archived (XEP-0313 section 5, XEP-0334 hints), the preferences
// (XEP-0313 section 6), the query form and RSM set of a query (sections 4.1, 4.2;
// XEP-0059), and the times and ids they carry.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parley/sdk/archive_ids.hpp"

namespace parley::mod_mam {

inline constexpr std::string_view ns_mam = "urn:xmpp:mam:2";
inline constexpr std::string_view ns_mam_extended = "urn:xmpp:mam:2#extended";
inline constexpr std::string_view ns_sid = "urn:xmpp:sid:0";
inline constexpr std::string_view ns_hints = "urn:xmpp:hints";
inline constexpr std::string_view ns_client = "jabber:client";

// A direct child of a message: its local name and namespace.
struct ChildName {
  std::string_view name;
  std::string_view ns;
};

// Whether a message goes to the archives (XEP-0313 section 5.1.1): chat and normal
// messages (a missing or unknown type is normal, RFC 6121 5.2.2) with a <body/>, or with
// a <store/> hint; never errors, groupchat (not to a user's archive) or headlines, nor
// a message with a <no-store/> or <no-permanent-store/> hint.
bool archivable(std::string_view type, const std::vector<ChildName>& children);

// The same rule read one child at a time, with nothing allocated (the archiving hooks
// run for every message).
class ArchivableScan {
 public:
  void add(ChildName child);
  bool result(std::string_view type) const;

 private:
  bool body_ = false;
  bool store_ = false;
  bool refused_ = false;
};

enum class Mode { always, roster, never };
std::optional<Mode> parse_mode(std::string_view text);
std::string_view mode_name(Mode mode);

struct Prefs {
  Mode default_mode = Mode::always;
  std::vector<std::string> always;  // JIDs (bare: also every full JID of it)
  std::vector<std::string> never;
};

// Whether a message with `with` (the other party's JID) is archived under `prefs`:
// `never` wins over `always`, then the default. Mode::roster is archived as always
// here (decide() below tells when the roster must be asked).
bool should_archive(const Prefs& prefs, std::string_view with);

// As should_archive, with Mode::roster left to the roster (XEP-0313 section 6): a
// message with a JID in neither list under a `roster` default is archived only if
// the JID's bare JID is in the user's roster.
enum class Decision { archive, skip, ask_roster };
Decision decide(const Prefs& prefs, std::string_view with);

// Prefs as stored ("default\nalways jid\nnever jid..."), and back (nullopt: corrupt).
std::string encode_prefs(const Prefs& prefs);
std::optional<Prefs> decode_prefs(std::string_view text);

// XEP-0082 DateTime ("2010-06-07T00:00:00Z", fractions and a +hh:mm offset allowed) in
// microseconds since the epoch, UTC; nullopt if malformed.
std::optional<int64_t> parse_datetime(std::string_view text);
// A positive decimal number of 1 to 19 digits (RSM's <max/>).
std::optional<uint64_t> parse_positive(std::string_view text);
// "2w", "7d", "12h", "30m", "45s", "3600" (seconds) -> seconds; "0"/"never": 0 (keep);
// nullopt if malformed.
std::optional<int64_t> parse_duration(std::string_view text);

// One field of a submitted data form (XEP-0004): its var and values.
struct FormField {
  std::string var;
  std::vector<std::string> values;
};

// The RSM <set/> of a query (XEP-0059): each element present or not, with its text.
struct RsmIn {
  std::optional<std::string> max;
  std::optional<std::string> after;
  std::optional<std::string> before;  // present and empty: the last page
  bool index_present = false;
};

struct ParsedQuery {
  std::string with;  // as given (the module prepares it)
  int64_t start_us = std::numeric_limits<int64_t>::min();
  int64_t end_us = std::numeric_limits<int64_t>::max();
  uint64_t after_id = 0;
  uint64_t before_id = 0;
  bool by_ids = false;
  std::vector<uint64_t> ids;
  uint64_t page_after = 0;
  uint64_t page_before = 0;
  bool from_end = false;
  uint32_t max = 0;
  bool flip = false;
};

struct QueryError {
  std::string condition;  // RFC 6120: bad-request, feature-not-implemented
  std::string text;
};

struct QueryLimits {
  uint32_t default_page = 50;
  uint32_t max_page = 250;  // a larger <max/> is capped to it
  size_t max_ids = 250;     // ids in one query at most
};

// form_type_seen: whether the form had a FORM_TYPE (a query without a form has none).
// Errors: a malformed time or max is bad-request; an id (form or RSM) that is not one
// this archive could have made is item-not-found (ids are opaque to clients, 4.1.3); a
// field this server does not know is feature-not-implemented (XEP-0313 4.1.5); start
// after end is bad-request.
struct QueryResultOrError {
  std::optional<ParsedQuery> query;
  std::optional<QueryError> error;
};
// `ids` reads the archive ids the client names (parley/sdk/archive_ids.hpp).
QueryResultOrError parse_query(const std::vector<FormField>& fields, const RsmIn& rsm, bool flip,
                               const QueryLimits& limits, const ArchiveIds& ids);

}  // namespace parley::mod_mam
