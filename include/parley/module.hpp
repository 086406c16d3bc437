// parley/module.hpp - the C++ way to write a Parley module.
//
// Header-only and compiled into each module: nothing here crosses the .so
// boundary except through parley/module.h. Every entry point the host calls is
// a trampoline generated here that catches every exception, logs it with the
// module's name and returns PARLEY_ERROR (start: a non-zero status and the
// text), so a throwing module never takes the server down.
//
//   class ModPing : public parley::Module {
//    public:
//     void on_ping(const parley::IqRequest& req) { host().route(parley::make_iq_result(req.iq())); }
//   };
//   PARLEY_MODULE(ModPing, "mod_ping", "1.0.0",
//                 parley::iq_handler<&ModPing::on_ping>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, "urn:xmpp:ping"),
//                 parley::disco_feature("urn:xmpp:ping"))
//
// Hooks, IQ handlers, options, dependencies, disco features and schema steps
// are declared in the PARLEY_MODULE list (the host registers and removes them,
// so an unload can never leave one behind); handler bodies are member
// functions or captureless lambdas `+[](ModPing& self, const parley::Event& ev) {...}`.
// Timers and storage completions take std::functions, kept by the module until
// they ran or were cancelled.
//
// Lifetimes: a string_view returned by an element accessor lives as long as the
// element, unmodified. An Event or IqRequest, and every view reached through
// it, lives for the call only: clone() what you keep.
#pragma once

#include "parley/sdk/detail.hpp"
#include "parley/sdk/element.hpp"
#include "parley/sdk/event.hpp"
#include "parley/sdk/storage.hpp"
#include "parley/sdk/host.hpp"
#include "parley/sdk/jid.hpp"
#include "parley/sdk/module_base.hpp"
#include "parley/sdk/trampolines.hpp"
#include "parley/sdk/services.hpp"
#include "parley/sdk/http_client.hpp"
#include "parley/sdk/http.hpp"
#include "parley/sdk/admin.hpp"
#include "parley/sdk/account_data.hpp"
#include "parley/sdk/account_admin.hpp"  // h-admin (issue 17): disabled accounts, lists, events 27-28
#include "parley/sdk/account_query.hpp"  // issue 11: asking other modules about an account (events 27-28)
#include "parley/sdk/subscription.hpp"   // what a roster subscription state lets through
#include "parley/sdk/declare.hpp"
