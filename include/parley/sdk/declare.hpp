// parley/sdk/declare.hpp - the PARLEY_MODULE list: hook, iq_handler,
// option, depends, disco_feature and schema declarations, the constexpr
// parley_module_def built from them, and the PARLEY_MODULE(_DEF) macros.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "parley/module.h"
#include "parley/sdk/trampolines.hpp"

namespace parley {

namespace detail {

// One entry of a PARLEY_MODULE list. Errors in a list are compile errors: a
// constexpr function that throws is not a constant expression.
enum class DeclKind { hook, iq, option, depends, feature, schema, preauth_feature, session_feature };

struct Decl {
  DeclKind kind{};
  parley_hook_decl hook{};
  parley_iq_decl iq{};
  parley_option_decl option{};
  const char* text = nullptr;
  uint32_t backend = PARLEY_BACKEND_SQLITE;  // a schema step's backend (schema_for)
};

// Several entries from one declaration (schema_for's steps).
template <std::size_t N>
struct Decls {
  std::array<Decl, N> items{};
};

template <class D>
struct decl_size {
  static constexpr std::size_t value = 1;
};
template <std::size_t N>
struct decl_size<Decls<N>> {
  static constexpr std::size_t value = N;
};

template <std::size_t M>
constexpr void append_decl(std::array<Decl, M>& out, std::size_t& j, const Decl& d) {
  out[j++] = d;
}
template <std::size_t M, std::size_t N>
constexpr void append_decl(std::array<Decl, M>& out, std::size_t& j, const Decls<N>& d) {
  for (const Decl& x : d.items) out[j++] = x;
}

template <class... D>
constexpr std::array<Decl, (decl_size<D>::value + ... + 0)> make_decls(D... d) {
  std::array<Decl, (decl_size<D>::value + ... + 0)> out{};
  std::size_t j = 0;
  (append_decl(out, j, d), ...);
  return out;
}

template <std::size_t N>
constexpr std::size_t count_of(const std::array<Decl, N>& d, DeclKind kind) {
  std::size_t n = 0;
  for (const Decl& x : d) n += x.kind == kind;
  return n;
}

// Schema steps of one backend, NULL-terminated, in the order declared.
template <std::size_t N>
constexpr std::size_t count_steps(const std::array<Decl, N>& d, uint32_t backend) {
  std::size_t n = 0;
  for (const Decl& x : d) n += x.kind == DeclKind::schema && x.backend == backend;
  return n;
}
template <std::size_t K, std::size_t N>
constexpr std::array<const char*, K + 1> collect_steps(const std::array<Decl, N>& d, uint32_t backend) {
  std::array<const char*, K + 1> out{};
  std::size_t j = 0;
  for (const Decl& x : d) if (x.kind == DeclKind::schema && x.backend == backend) out[j++] = x.text;
  out[K] = nullptr;
  return out;
}
// The def's backend_schemas: PostgreSQL's steps, if any.
template <std::size_t K>
constexpr std::array<parley_backend_schema, 1> backend_schemas(const std::array<const char*, K>& postgresql) {
  return {parley_backend_schema{PARLEY_BACKEND_POSTGRESQL, K > 1 ? postgresql.data() : nullptr, K - 1}};
}

template <std::size_t K, std::size_t N>
constexpr std::array<parley_hook_decl, K> collect_hooks(const std::array<Decl, N>& d) {
  std::array<parley_hook_decl, K> out{};
  std::size_t j = 0;
  for (const Decl& x : d) if (x.kind == DeclKind::hook) out[j++] = x.hook;
  return out;
}

template <std::size_t K, std::size_t N>
constexpr std::array<parley_iq_decl, K> collect_iqs(const std::array<Decl, N>& d) {
  std::array<parley_iq_decl, K> out{};
  std::size_t j = 0;
  for (const Decl& x : d) if (x.kind == DeclKind::iq) out[j++] = x.iq;
  return out;
}

template <std::size_t K, std::size_t N>
constexpr std::array<parley_option_decl, K> collect_options(const std::array<Decl, N>& d) {
  std::array<parley_option_decl, K> out{};
  std::size_t j = 0;
  for (const Decl& x : d) if (x.kind == DeclKind::option) out[j++] = x.option;
  return out;
}

// NULL-terminated.
template <std::size_t K, std::size_t N>
constexpr std::array<const char*, K + 1> collect_strings(const std::array<Decl, N>& d, DeclKind kind) {
  std::array<const char*, K + 1> out{};
  std::size_t j = 0;
  for (const Decl& x : d) if (x.kind == kind) out[j++] = x.text;
  out[K] = nullptr;
  return out;
}

template <class C, std::size_t NH, std::size_t NI, std::size_t NO, std::size_t ND, std::size_t NF, std::size_t NS,
          std::size_t NP, std::size_t NQ>
constexpr parley_module_def make_def(const char* name, const char* version, const std::array<parley_hook_decl, NH>& hooks,
                                     const std::array<parley_iq_decl, NI>& iqs,
                                     const std::array<parley_option_decl, NO>& options,
                                     const std::array<const char*, ND>& depends,
                                     const std::array<const char*, NF>& features,
                                     const std::array<const char*, NS>& schema,
                                     const std::array<const char*, NP>& preauth_features,
                                     const std::array<const char*, NQ>& session_features,
                                     const std::array<parley_backend_schema, 1>& backend_schemas) {
  if (!name || name[0] == '\0') throw "parley: a module needs a name";
  if (!version) throw "parley: a module needs a version";
  parley_module_def def{};
  def.size = sizeof(parley_module_def);
  def.abi_major = PARLEY_ABI_MAJOR;
  def.abi_minor = PARLEY_ABI_MINOR;
  def.name = name;
  def.version = version;
  def.depends = ND > 1 ? depends.data() : nullptr;
  def.options = NO ? options.data() : nullptr;
  def.option_count = NO;
  def.start = &Trampolines<C>::start;
  def.stop = &Trampolines<C>::stop;
  def.save_state = Trampolines<C>::has_save ? &Trampolines<C>::save_state : nullptr;
  def.restore_state = Trampolines<C>::has_restore ? &Trampolines<C>::restore_state : nullptr;
  def.hooks = NH ? hooks.data() : nullptr;
  def.hook_count = NH;
  def.iq_handlers = NI ? iqs.data() : nullptr;
  def.iq_handler_count = NI;
  def.disco_features = NF > 1 ? features.data() : nullptr;
  def.schema = NS > 1 ? schema.data() : nullptr;
  def.schema_count = NS - 1;
  def.preauth_features = NP > 1 ? preauth_features.data() : nullptr;
  def.session_features = NQ > 1 ? session_features.data() : nullptr;
  def.save_session_data = Trampolines<C>::has_session_data ? &Trampolines<C>::save_session_data : nullptr;
  def.restore_session_data = Trampolines<C>::has_session_data ? &Trampolines<C>::restore_session_data : nullptr;
  def.backend_schemas = backend_schemas[0].count > 0 ? backend_schemas.data() : nullptr;
  def.backend_schema_count = backend_schemas[0].count > 0 ? 1 : 0;
  return def;
}

}  // namespace detail

// A hook on `event`; lower priority runs first (ejabberd's default is 50).
template <auto F>
constexpr detail::Decl hook(parley_event event, int32_t priority = 50) {
  if (event < PARLEY_EVENT_STANZA_IN || event >= PARLEY_EVENT_COUNT_) throw "parley: unknown event";
  detail::Decl d{detail::DeclKind::hook};
  d.hook = parley_hook_decl{static_cast<uint32_t>(event), priority, &detail::hook_trampoline<F>};
  return d;
}

// An IQ handler for (scope, PARLEY_IQ_GET and/or PARLEY_IQ_SET, payload namespace).
template <auto F>
constexpr detail::Decl iq_handler(parley_iq_scope scope, uint32_t types, const char* xmlns) {
  if (scope != PARLEY_IQ_SERVER && scope != PARLEY_IQ_ACCOUNT && scope != PARLEY_IQ_PREAUTH)
    throw "parley: unknown iq scope";
  if (types == 0 || (types & ~(PARLEY_IQ_GET | PARLEY_IQ_SET)) != 0) throw "parley: iq types are GET and/or SET";
  if (!xmlns || xmlns[0] == '\0') throw "parley: an iq handler needs a namespace";
  detail::Decl d{detail::DeclKind::iq};
  d.iq = parley_iq_decl{static_cast<uint32_t>(scope), types, xmlns, &detail::iq_trampoline<F>};
  return d;
}

// A declared option (the host refuses undeclared keys and wrong types).
constexpr detail::Decl option(const char* name, parley_option_type type, bool required = false) {
  if (!name || name[0] == '\0') throw "parley: an option needs a name";
  detail::Decl d{detail::DeclKind::option};
  d.option = parley_option_decl{name, static_cast<uint32_t>(type), required ? 1 : 0};
  return d;
}
constexpr detail::Decl required_option(const char* name, parley_option_type type) { return option(name, type, true); }

// A module that must be started first.
constexpr detail::Decl depends(const char* module_name) {
  if (!module_name || module_name[0] == '\0') throw "parley: depends needs a module name";
  detail::Decl d{detail::DeclKind::depends};
  d.text = module_name;
  return d;
}

// A feature this module adds to the server's disco#info.
constexpr detail::Decl disco_feature(const char* feature) {
  if (!feature || feature[0] == '\0') throw "parley: an empty disco feature";
  detail::Decl d{detail::DeclKind::feature};
  d.text = feature;
  return d;
}

// A schema migration step of the module's own tables (mod_NAME_*): the host
// runs each step once, in the order declared, before start. Append new steps;
// never edit or remove a released one.
constexpr detail::Decl schema(const char* sql) {
  if (!sql || sql[0] == '\0') throw "parley: an empty schema step";
  detail::Decl d{detail::DeclKind::schema};
  d.text = sql;
  return d;
}

// Schema steps for one backend, in its dialect (ABI 1.7): schema_for(PARLEY_BACKEND_POSTGRESQL,
// "CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, note TEXT)", ...). Declaring PostgreSQL
// steps puts the module's tables on PostgreSQL when the server runs that backend
// (host().storage_backend() says where they are); each backend's steps are versioned on
// their own: append new steps, never edit or remove a released one.
// schema_for(PARLEY_BACKEND_SQLITE, ...) is the same as schema(...) for each step.
template <class... S>
constexpr detail::Decls<sizeof...(S)> schema_for(uint32_t backend, S... steps) {
  static_assert(sizeof...(S) > 0, "parley: schema_for needs at least one step");
  if (backend != PARLEY_BACKEND_SQLITE && backend != PARLEY_BACKEND_POSTGRESQL) throw "parley: unknown backend";
  detail::Decls<sizeof...(S)> out{};
  const char* texts[] = {steps...};
  for (std::size_t i = 0; i < sizeof...(S); ++i) {
    if (!texts[i] || texts[i][0] == '\0') throw "parley: an empty schema step";
    out.items[i].kind = detail::DeclKind::schema;
    out.items[i].text = texts[i];
    out.items[i].backend = backend;
  }
  return out;
}

// A stream feature offered before authentication (XML), e.g.
// "<register xmlns='http://jabber.org/features/iq-register'/>".
constexpr detail::Decl preauth_feature(const char* xml) {
  if (!xml || xml[0] != '<') throw "parley: a stream feature is an XML element";
  detail::Decl d{detail::DeclKind::preauth_feature};
  d.text = xml;
  return d;
}

// A stream feature offered after authentication, next to resource binding,
// e.g. "<ver xmlns='urn:xmpp:features:rosterver'/>".
constexpr detail::Decl session_feature(const char* xml) {
  if (!xml || xml[0] != '<') throw "parley: a stream feature is an XML element";
  detail::Decl d{detail::DeclKind::session_feature};
  d.text = xml;
  return d;
}

}  // namespace parley

// Defines `constexpr parley_module_def var` (internal linkage) for Class.
#define PARLEY_MODULE_DEF(var, Class, mod_name, mod_version, ...)                                                     \
  constexpr auto var##_decls_ = ::parley::detail::make_decls(__VA_ARGS__);                                           \
  constexpr auto var##_hooks_ = ::parley::detail::collect_hooks<::parley::detail::count_of(                          \
      var##_decls_, ::parley::detail::DeclKind::hook)>(var##_decls_);                                                \
  constexpr auto var##_iqs_ = ::parley::detail::collect_iqs<::parley::detail::count_of(                              \
      var##_decls_, ::parley::detail::DeclKind::iq)>(var##_decls_);                                                  \
  constexpr auto var##_options_ = ::parley::detail::collect_options<::parley::detail::count_of(                      \
      var##_decls_, ::parley::detail::DeclKind::option)>(var##_decls_);                                              \
  constexpr auto var##_depends_ = ::parley::detail::collect_strings<::parley::detail::count_of(                      \
      var##_decls_, ::parley::detail::DeclKind::depends)>(var##_decls_, ::parley::detail::DeclKind::depends);        \
  constexpr auto var##_features_ = ::parley::detail::collect_strings<::parley::detail::count_of(                     \
      var##_decls_, ::parley::detail::DeclKind::feature)>(var##_decls_, ::parley::detail::DeclKind::feature);        \
  constexpr auto var##_schema_ = ::parley::detail::collect_steps<::parley::detail::count_steps(                     \
      var##_decls_, PARLEY_BACKEND_SQLITE)>(var##_decls_, PARLEY_BACKEND_SQLITE);                                    \
  constexpr auto var##_pg_schema_ = ::parley::detail::collect_steps<::parley::detail::count_steps(                  \
      var##_decls_, PARLEY_BACKEND_POSTGRESQL)>(var##_decls_, PARLEY_BACKEND_POSTGRESQL);                            \
  constexpr auto var##_backend_schemas_ = ::parley::detail::backend_schemas(var##_pg_schema_);                       \
  constexpr auto var##_preauth_ = ::parley::detail::collect_strings<::parley::detail::count_of(                      \
      var##_decls_, ::parley::detail::DeclKind::preauth_feature)>(var##_decls_,                                      \
                                                                  ::parley::detail::DeclKind::preauth_feature);      \
  constexpr auto var##_session_ = ::parley::detail::collect_strings<::parley::detail::count_of(                      \
      var##_decls_, ::parley::detail::DeclKind::session_feature)>(var##_decls_,                                      \
                                                                  ::parley::detail::DeclKind::session_feature);      \
  constexpr parley_module_def var = ::parley::detail::make_def<Class>(                                               \
      mod_name, mod_version, var##_hooks_, var##_iqs_, var##_options_, var##_depends_, var##_features_,              \
      var##_schema_, var##_preauth_, var##_session_, var##_backend_schemas_)

// The module's definition and its one exported symbol. Once per .so.
#define PARLEY_MODULE(Class, mod_name, mod_version, ...)                                 \
  namespace {                                                                          \
  PARLEY_MODULE_DEF(parley_module_def_, Class, mod_name, mod_version, __VA_ARGS__);    \
  }                                                                                    \
  extern "C" PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return &parley_module_def_; }
