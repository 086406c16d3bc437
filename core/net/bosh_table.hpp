// The BOSH sessions of one loop's thread by sid, and what a loop knows of the
// sessions that moved away from it (a stream management resume onto a
// detached session of another loop: BoshSession::leave / arrive). Each table
// is the calling loop's own (thread_local): only that loop's thread touches
// it, other loops post to it. Internal to core/net's BOSH files.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/net/bosh_session.hpp"

namespace parley::bosh_table {

// The sessions living on this loop (bosh_session.cpp).
extern thread_local std::unordered_map<std::string, BoshSession*> sessions;

// An answer without a session: terminate with `condition` (bosh_session.cpp).
BoshAnswer terminal(std::string_view condition, bool legacy);

// On the loop the sid names, or one the session moved through: to the
// session if it is here, parked if it is on its way elsewhere, on to where it
// went, else item-not-found (bosh_session_move.cpp).
void route(ServerContext& ctx, std::shared_ptr<BoshRequest> r, const std::string& sid, size_t hops);

// The session ended: the loops it moved away from forget its sid.
void forget_forwards(ServerContext& ctx, const std::string& sid, const std::vector<unsigned>& loops);

}  // namespace parley::bosh_table
