// mod_muc: wake-ups for a room's members who are not in it (issue 14). A
// group chat message with a body is announced through PARLEY_EVENT_WAKE_UP
// (reason 'groupchat') for every member (affiliation member, admin or owner)
// with no joined session, so that a push module (mod_push) can notify their
// phones, as Prosody's and ejabberd's users ask; mod_muc does not know who
// listens. Members whose joined session is detached (XEP-0198) get the
// message queued like any stanza: the core's PARLEY_EVENT_DETACHED_STANZA
// covers them.
#pragma once

#include <map>
#include <string>

#include "room.hpp"

namespace muc {

// One fold per message, whatever the number of absent members (one <user/>
// each); nothing when every member is in the room.
void wake_absent_members(const Service& service, const std::map<std::string, Affiliation>& affiliations,
                         const std::map<std::string, Occupant>& occupants, const parley::Element& message);

}  // namespace muc
