/* parley/abi/events.h - part of the module ABI (include parley/module.h, which
 * includes every part; its header comment has the rules: versioning, ownership,
 * threads). The events a module can hook, and the arguments a hook gets.
 */
#ifndef PARLEY_ABI_EVENTS_H
#define PARLEY_ABI_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Events a module can hook (ejabberd's hooks). Filter events pass a mutable
 * stanza. Numbers are part of the ABI and never reused. */
typedef enum parley_event {
  /* A stanza from a bound client, 'from' stamped and 'to' (if any) prepared
   * (RFC 7622, as the router uses it), before routing. Filter. */
  PARLEY_EVENT_STANZA_IN = 1,
  /* A message/presence/iq addressed to a local user (bare or full JID), before
   * the core delivers it. Filter. */
  PARLEY_EVENT_MESSAGE_TO_LOCAL = 2,
  PARLEY_EVENT_PRESENCE_TO_LOCAL = 3,
  PARLEY_EVENT_IQ_TO_LOCAL = 4,
  /* A message for a local user with no available resource (RFC 6121 8.5.2.2).
   * HANDLED = stored; otherwise the core answers service-unavailable.
   * args->session is the sender's session when the sender is a local client
   * whose session lives on the calling loop (1.1), else 0: a module may
   * session_hold it until the message is durable. */
  PARLEY_EVENT_OFFLINE_MESSAGE = 5,
  /* Session life: opened (TCP accepted), bound (resource bound), closed. */
  PARLEY_EVENT_SESSION_OPENED = 6,
  PARLEY_EVENT_SESSION_BOUND = 7,
  PARLEY_EVENT_SESSION_CLOSED = 8,
  /* The session's own presence without 'to' (initial, change, unavailable),
   * before the core reflects it to the user's resources. Filter; HANDLED =
   * the module broadcast it. */
  PARLEY_EVENT_PRESENCE_BROADCAST = 9,
  /* Accounts created or removed through the running server (parleyctl, or a
   * registration module); args->user and args->host name the account. An
   * account removed this way also loses its sessions. */
  PARLEY_EVENT_USER_REGISTERED = 10,
  PARLEY_EVENT_USER_REMOVED = 11,
  /* Fold: the server's disco#info is being built; args->acc is the <query/>,
   * hooks add <identity/> and <feature/> children (XEP-0030). mod_disco runs
   * it through host->run_fold. */
  PARLEY_EVENT_DISCO_INFO = 12,

  /* ---- 1.2 ---- Every one runs on the loop that owns args->session. */
  /* A top-level element that is not a stanza (not message, presence or iq of
   * jabber:client) on an authenticated stream: bound, or authenticated and not
   * bound yet (XEP-0198 <resume/> comes instead of binding). args->stanza is
   * the element (borrowed), args->jid the full JID (bound) or the bare JID.
   * HANDLED or STOP: a module took it (and answers, if at all, with
   * session_write). If no module takes it the core closes the stream with
   * <unsupported-stanza-type/>, as without the hook. */
  PARLEY_EVENT_NONZA_IN = 13,
  /* Filter: every stanza on its way out to a bound session (routed stanzas,
   * the core's own replies and errors, modules' sends) just before it is
   * written; args->stanza is mutable and what the hooks leave is what the
   * client gets. PASS: the next filter runs, then it is written; STOP: written
   * without the later filters; HANDLED: not written now (the module dropped
   * or holds it, and may send it later with session_send_after, which goes on
   * with the filters after its own). session_write is not filtered. Stanzas
   * that waited while the session was detached meet the filters when they are
   * written after re-attaching. */
  PARLEY_EVENT_STANZA_OUT = 14,
  /* A message the router gave to a bound session (RFC 6121 8.5 chose this
   * resource, or it was addressed to it), before the outgoing filters:
   * ejabberd's user_receive_packet (message carbons copy from here).
   * args->stanza must not be changed. HANDLED: not delivered to this resource
   * (the module took it). */
  PARLEY_EVENT_MESSAGE_DELIVERED = 15,
  /* The connection of a bound session ended without a closed stream (EOF,
   * reset, TLS or write error, cut as a slow reader, a timeout): HANDLED from
   * one hook keeps the session DETACHED instead of closing it (XEP-0198
   * resumption). A detached session stays bound and available; stanzas for it
   * wait in a bounded queue of the core (limits.max_detached_stanzas; over it,
   * or after limits.max_detached_seconds, or by session_close, the session is
   * closed and what waited is routed as for a resource that is gone). Bytes the
   * connection had not written at the end are settled as written: the module
   * that detached the session owns what the client has not acknowledged. Not
   * asked for a stream the client or the server closed (</stream:stream>, a
   * stream error), nor at shutdown, nor of a module being hot-reloaded at that
   * moment (its state may be saved). */
  PARLEY_EVENT_SESSION_CLOSING = 16,
  /* The session is detached now (after a CLOSING hook kept it). */
  PARLEY_EVENT_SESSION_DETACHED = 17,
  /* The session has a connection again (session_attach), before anything from
   * that connection is processed and before the stanzas that waited are
   * written; args->jid is the session's full JID, as before. */
  PARLEY_EVENT_SESSION_REATTACHED = 18,
  /* ---- issue 11 ---- */
  /* Fold: an account's disco#info, asked by its owner, is being built
   * (XEP-0030 section 3.1); args->acc is the <query/>, args->user and
   * args->host name the account; hooks add <feature/> children
   * (urn:xmpp:mam:2 on the account, as clients look for it there). mod_disco
   * runs it through host->run_fold; a host without it answers -2 there. */
  PARLEY_EVENT_ACCOUNT_DISCO_INFO = 19,
  /* ---- issue 14: push notifications ---- */
  /* A routed stanza has just been queued for a DETACHED session (its
   * connection was lost and a SESSION_CLOSING hook kept it, XEP-0198): its
   * client will not see it until it resumes, so a module may wake it (a
   * XEP-0357 push). On the session's loop; args->session, ->user, ->host and
   * ->jid name the session; args->stanza must not be changed (it may be
   * shared with other sessions). Observe only: the result is ignored, the
   * stanza waits for the session either way. Not raised for what a module
   * sends to the session itself, nor for a stanza that does not fit the
   * session's queue (the session ends). While modules are swapped (hot
   * reload) it runs, with a copy of the stanza, once the new code is in. */
  PARLEY_EVENT_DETACHED_STANZA = 20,
  /* ---- issue 17: disco nodes (XEP-0030 section 3.2 / 4.2) ---- */
  /* Folds: a disco#info (21) or disco#items (22) request to the server's
   * domain that names a node. args->acc is the whole reply being built: an
   * <iq type='result'/> addressed to the requester (its 'to' is the
   * requester's full JID), with the <query node='...'/> child to fill (the
   * request's 'id' and node copied); args->jid is the requester (the
   * reply's 'to'), args->session the requester's session if local. A
   * hook that serves the node fills the query and returns HANDLED: mod_disco routes
   * the reply. A hook that answers the request itself (an error such as
   * forbidden, or later) returns STOP: mod_disco sends nothing. PASS: not
   * this module's node; if every hook passes, mod_disco answers
   * item-not-found. mod_disco runs them through host->run_fold. */
  PARLEY_EVENT_DISCO_NODE_INFO = 21,
  PARLEY_EVENT_DISCO_NODE_ITEMS = 22,
  /* ---- issue 14: wake-ups (push notifications) ---- */
  /* Fold: a stanza that local users' clients will not see now warrants waking
   * them (a XEP-0357 push): raised by modules with run_fold, heard by a push
   * module; the raising module does not know who listens. args->acc is
   *   <wake xmlns='urn:parley:wake:0' reason='R'><user jid='local@host'/>...STANZA</wake>
   * (borrowed; hooks must not change it): one <user/> per recipient (bare JIDs
   * of accounts of args->host) and a copy of the stanza as they would get it.
   * Reasons: 'groupchat' (mod_muc: a room message for members with no joined
   * session), 'csi' (mod_csi: an urgent stanza for a session the client said
   * is inactive, XEP-0352; args->session is that session, on its loop). On
   * the raising module's loop; args->session is 0 unless the reason names a
   * session. Hooks return PASS so that every listener hears it. */
  PARLEY_EVENT_WAKE_UP = 23,
  /* ---- issue 16: personal eventing (events 25-26) ---- */
  /* Fold: an account's disco#items (XEP-0030 section 4.1, without 'node') is
   * being answered, to anyone: the account's PEP nodes are among its items
   * (XEP-0060 section 5.2, filtered by each node's access model). args->acc is
   * the whole reply, <iq type='result'/> with its <query/>: its 'from' is the
   * account's bare JID, its 'to' the requester; args->user and args->host name
   * the account; args->session is the requester's session (or 0). Hooks add
   * <item/> children to the <query/>. A hook whose items live elsewhere (on
   * another loop) takes a copy of acc, returns HANDLED and routes the copy
   * itself once it is complete: the later hooks do not run and mod_disco does
   * not answer. mod_disco runs it through run_fold (-2 from an older host). */
  PARLEY_EVENT_ACCOUNT_DISCO_ITEMS = 25,
  /* Fold: a c2s stream's <stream:features/> is being sent (at every stage:
   * before TLS, before and after authentication), on the stream's loop.
   * args->acc is an element whose children hooks may add: they are written
   * into the features (XEP-0115 section 6.3: the server's own <c/>, added by
   * mod_pep). args->session is the stream's session, args->host its domain.
   * Synchronous: a hook adds what it has now. */
  PARLEY_EVENT_STREAM_FEATURES = 26,
  /* ---- h-admin (issue 17): what modules know of an account, for XEP-0133 (events 27-28) ---- */
  /* Fold: a module serving service administration (mod_adhoc: get-user-roster,
   * get-user-lastlogin, user-stats) asks what the other modules know of an
   * account, without naming them. args->acc is
   *   <query xmlns='urn:parley:admin-user:0' user='LOCALPART' token='T' answers='0'/>
   * (args->user and args->host name the account; run_fold sets args->user from
   * the 'user' attribute). A module that keeps something about accounts adds 1
   * to 'answers' during its hook and returns PASS, so that every listener hears
   * it; it then raises PARLEY_EVENT_ADMIN_USER_ANSWER exactly once, now or
   * later, ON THE LOOP THAT RAN ITS HOOK (a storage or store completion comes
   * back there). The raiser reads 'answers' after run_fold to know how many
   * answers to wait for. On the raising module's loop. */
  PARLEY_EVENT_ADMIN_USER_QUERY = 27,
  /* Fold: one answer, raised with run_fold by the module that counted itself in:
   *   <answer xmlns='urn:parley:admin-user:0' token='T'>PAYLOAD</answer>
   * PAYLOAD: mod_roster's <query xmlns='jabber:iq:roster'> with the account's
   * items (RFC 6121 2.1); mod_last's <last xmlns='jabber:iq:last' stamp='UNIX
   * SECONDS'/> of the last logout (no stamp: none recorded); an empty answer
   * when the module failed to read (it logged why). The module that asked
   * matches the token; hooks must not change acc and return PASS. */
  PARLEY_EVENT_ADMIN_USER_ANSWER = 28,
  /* (issue 15) The server is shutting down gracefully (SIGTERM, server_stop):
   * run once on every worker loop for every served host (args->host), before
   * any stream is closed, so what a hook routes or sends now reaches clients
   * still connected (written before their <system-shutdown/>). A group chat
   * service tells its occupants the rooms go away (XEP-0045 status 332).
   * Synchronous; the result is ignored. */
  PARLEY_EVENT_SERVER_STOPPING = 29,
  /* ---- issue 11: XEP-0227 export and import (events 30-31) ---- */
  /* An account is being exported (parleyctl export): args->user and
   * args->host name it (prepared); args->session is NOT a session here but
   * the export request's handle, for the account_data_* entries. A hook adds
   * the account's data it owns as XEP-0227 children of <user/> (vcard-temp's
   * <vCard/>, a jabber:iq:roster <query/>, ...) with account_data_add, during
   * the call or later: a module whose store reads complete later calls
   * account_data_hold during the hook, account_data_add as they complete and
   * account_data_done once. Runs on a worker loop (the first). One account
   * at a time per parleyctl. Hooks return PASS so that every module
   * contributes. A request whose holds are not all done within 120 s fails. */
  PARLEY_EVENT_ACCOUNT_EXPORT = 30,
  /* An account is being imported: args->acc is the <user xmlns='urn:xmpp:pie:0'/>
   * element of the file (borrowed for the call: clone what you keep; hooks
   * must not change it), args->user and args->host name the account, created
   * already with its credentials; args->session is the request handle as for
   * ACCOUNT_EXPORT. A hook stores the children in its namespaces; if that
   * completes later it calls account_data_hold during the hook and
   * account_data_done when stored (with an error if not: the core then
   * removes the account again, and USER_REMOVED clears what was stored).
   * USER_REGISTERED for the account ran before it (and USER_REMOVED first
   * when an existing account is replaced), on the same loop; hooks return
   * PASS. */
  PARLEY_EVENT_ACCOUNT_IMPORT = 31,
  /* ---- ABI 1.10 (session 15): an account's nodes (XEP-0060 5.3-5.5 as PEP uses them) ---- */
  /* Folds: a disco#info (32) or disco#items (33) request to an account's bare
   * JID that names a node, from anyone (whether the requester may see the node
   * is the serving module's business). args->acc is the whole reply being
   * built: an <iq type='result'/> from the account's bare JID to the requester
   * (the request's 'id' copied) with the <query node='...'/> child to fill;
   * args->user and args->host name the account, args->jid is the requester
   * (the reply's 'to'), args->session the requester's session if local. As
   * events 21-22: HANDLED, the hook filled the query and mod_disco routes the
   * reply; STOP, the hook answers itself (later, or with an error); PASS, not
   * this module's node; if every hook passes mod_disco answers item-not-found,
   * as it does on a host without these events (run_fold answers -2 there). */
  PARLEY_EVENT_ACCOUNT_NODE_INFO = 32,
  PARLEY_EVENT_ACCOUNT_NODE_ITEMS = 33,
  /* ---- ABI 1.12 (session 17) ---- */
  /* A bound session's stream is about to be closed gracefully by the server:
   * the client sent </stream:stream>, or a module closed the session without a
   * condition. Raised on the session's loop before the server's
   * </stream:stream> is written, so what a hook writes with session_write goes
   * out first (XEP-0198 section 4: a last <a/> with the stanzas handled).
   * args->session, ->user, ->host and ->jid name the session. Not raised for a
   * stream error, a lost connection, a detached session, or a stream whose
   * session was never bound. Synchronous; the result is ignored. A module
   * being hot-reloaded at that moment is not asked (its state may be saved). */
  PARLEY_EVENT_STREAM_CLOSING = 34,
  PARLEY_EVENT_COUNT_ /* not an event; new events are added before it and it grows */
} parley_event;

typedef struct parley_event_args {
  size_t size;               /* sizeof(parley_event_args) of the host */
  uint32_t event;            /* parley_event */
  parley_session_id session; /* the session concerned, or 0 */
  parley_element* stanza;    /* the stanza, or NULL */
  parley_element* acc;       /* fold events: the accumulator, else NULL */
  parley_str user;           /* local user concerned (localpart), may be empty */
  parley_str host;           /* served domain concerned */
  parley_str jid;            /* full JID of the session concerned, may be empty */
} parley_event_args;

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_ABI_EVENTS_H */
