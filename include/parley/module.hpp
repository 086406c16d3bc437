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

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "parley/module.h"
#include "parley/result.hpp"

// True if a struct that starts with its `size` (args, requests, the host
// table) is recent enough to hold `member`.
#define PARLEY_STRUCT_HAS(type, ptr, member) \
  ((ptr)->size >= offsetof(type, member) + sizeof(type::member))
// For Host::supports: where a host-table entry ends.
#define PARLEY_HOST_ENTRY_END(member) (offsetof(parley_host_api, member) + sizeof(parley_host_api::member))

namespace parley {

// Hook and handler outcomes; handlers may also return parley_result or void
// (void = PASS for a hook, HANDLED for an IQ handler).
enum class Outcome : int {
  pass = PARLEY_PASS,
  stop = PARLEY_STOP,
  handled = PARLEY_HANDLED,
  error = PARLEY_ERROR,
};

namespace detail {

inline parley_str to_c(std::string_view s) noexcept { return parley_str{s.data(), s.size()}; }
inline std::string_view to_sv(parley_str s) noexcept {
  return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view();
}

// The host calls append() from C: it must not throw, so a failure is remembered.
struct StringSink {
  std::string out;
  bool failed = false;
  parley_sink sink() noexcept { return parley_sink{this, &append}; }
  static void append(void* ctx, const char* data, size_t len) noexcept {
    auto* self = static_cast<StringSink*>(ctx);
    if (self->failed) return;
    try {
      self->out.append(data, len);
    } catch (...) {
      self->failed = true;
    }
  }
  std::string take() {
    if (failed) throw std::bad_alloc();
    return std::move(out);
  }
};

struct ListSink {
  std::vector<std::string> items;
  bool failed = false;
  parley_sink sink() noexcept { return parley_sink{this, &append}; }
  static void append(void* ctx, const char* data, size_t len) noexcept {
    auto* self = static_cast<ListSink*>(ctx);
    if (self->failed) return;
    try {
      self->items.emplace_back(data, len);
    } catch (...) {
      self->failed = true;
    }
  }
  std::vector<std::string> take() {
    if (failed) throw std::bad_alloc();
    return std::move(items);
  }
};

// The size of the 1.0 host table: the wrapper uses every 1.0 entry unchecked.
inline constexpr size_t host_api_size_1_0 =
    offsetof(parley_host_api, server_features) + sizeof(parley_host_api::server_features);

inline void sink_write(parley_sink sink, std::string_view text) noexcept {
  if (sink.append && !text.empty()) sink.append(sink.ctx, text.data(), text.size());
}

[[noreturn]] inline void fail(const char* what) { throw std::logic_error(what); }

template <class Ref>
class Children;

}  // namespace detail

class Element;

// A read-only borrowed view of an element. Cheap to copy; does not own.
class ElementView {
 public:
  ElementView() = default;
  ElementView(const parley_host_api* api, const parley_element* e) noexcept : api_(api), e_(e) {}

  explicit operator bool() const noexcept { return e_ != nullptr; }
  const parley_element* raw() const noexcept { return e_; }
  const parley_host_api* api() const noexcept { return api_; }

  std::string_view name() const { return detail::to_sv(t().element_name(check())); }
  std::string_view xmlns() const { return detail::to_sv(t().element_xmlns(check())); }
  std::optional<std::string_view> attr(std::string_view name) const {
    parley_str value{nullptr, 0};
    if (t().element_attr(check(), detail::to_c(name), &value) != 1) return std::nullopt;
    return detail::to_sv(value);
  }
  bool has_attr(std::string_view name) const { return attr(name).has_value(); }
  std::size_t child_count() const { return t().element_child_count(check()); }
  ElementView child_at(std::size_t index) const { return {api_, t().element_child_at(mut(), index)}; }
  // xmlns empty: any namespace.
  std::optional<ElementView> child(std::string_view name, std::string_view xmlns = {}) const {
    return found<ElementView>(t().element_find_child(mut(), detail::to_c(name), detail::to_c(xmlns)));
  }
  std::optional<ElementView> first_child() const {
    return child_count() ? std::optional<ElementView>(child_at(0)) : std::nullopt;
  }
  detail::Children<ElementView> children() const;
  std::string text() const {
    detail::StringSink s;
    t().element_text(check(), s.sink());
    return s.take();
  }
  // The text of the first matching child, or "" (e.g. a message's <body/>).
  std::string child_text(std::string_view name, std::string_view xmlns = {}) const {
    auto c = child(name, xmlns);
    return c ? c->text() : std::string();
  }
  std::string serialize() const {
    detail::StringSink s;
    t().element_serialize(check(), s.sink());
    return s.take();
  }
  Element clone() const;

 protected:
  const parley_element* check() const {
    if (!e_ || !api_) detail::fail("parley: use of a null element");
    return e_;
  }
  // The table, once the element is known to be usable: `t().f(e_)` checks
  // before the call, where `api_->f(check())` would read through api_ first.
  const parley_host_api& t() const {
    check();
    return *api_;
  }
  // The C table takes non-const parents for lookups that hand back mutable children.
  parley_element* mut() const { return const_cast<parley_element*>(check()); }
  template <class Ref>
  std::optional<Ref> found(parley_element* e) const {
    return e ? std::optional<Ref>(Ref(api_, e)) : std::nullopt;
  }

  const parley_host_api* api_ = nullptr;
  const parley_element* e_ = nullptr;
};

// A mutable borrowed view: a filter hook's stanza, a child of an Element.
class ElementRef : public ElementView {
 public:
  ElementRef() = default;
  ElementRef(const parley_host_api* api, parley_element* e) noexcept : ElementView(api, e) {}

  parley_element* raw() const noexcept { return const_cast<parley_element*>(e_); }

  ElementRef& set_attr(std::string_view name, std::string_view value) {
    t().element_set_attr(mut(), detail::to_c(name), detail::to_c(value));
    return *this;
  }
  ElementRef& remove_attr(std::string_view name) {
    t().element_remove_attr(mut(), detail::to_c(name));
    return *this;
  }
  // Takes ownership of `child`; returns it, now borrowed from this element.
  ElementRef add_child(Element&& child);
  ElementRef add_child(std::string_view name, std::string_view xmlns);
  ElementRef& add_text(std::string_view text) {
    t().element_add_text(mut(), detail::to_c(text));
    return *this;
  }
  ElementRef& remove_children(std::string_view name, std::string_view xmlns = {}) {
    t().element_remove_children(mut(), detail::to_c(name), detail::to_c(xmlns));
    return *this;
  }
  ElementRef child_at(std::size_t index) const { return {api_, t().element_child_at(mut(), index)}; }
  std::optional<ElementRef> child(std::string_view name, std::string_view xmlns = {}) const {
    return found<ElementRef>(t().element_find_child(mut(), detail::to_c(name), detail::to_c(xmlns)));
  }
  std::optional<ElementRef> first_child() const {
    return child_count() ? std::optional<ElementRef>(child_at(0)) : std::nullopt;
  }
  detail::Children<ElementRef> children() const;
};

// An owned element: freed on destruction unless handed to the host (route,
// send_to_session, add_child) or release()d. Move-only.
class Element : public ElementRef {
 public:
  Element() = default;
  // Adopts `owned` (from element_new/parse/clone).
  Element(const parley_host_api* api, parley_element* owned) noexcept : ElementRef(api, owned) {}
  ~Element() { reset(); }
  Element(Element&& other) noexcept : ElementRef(other.api_, other.release()) {}
  Element& operator=(Element&& other) noexcept {
    if (this != &other) {
      reset();
      api_ = other.api_;
      e_ = other.release();
    }
    return *this;
  }
  Element(const Element&) = delete;
  Element& operator=(const Element&) = delete;

  static Element create(const parley_host_api* api, std::string_view name, std::string_view xmlns = {}) {
    parley_element* e = api->element_new(detail::to_c(name), detail::to_c(xmlns));
    if (!e) throw std::runtime_error("parley: element_new failed");
    return Element(api, e);
  }
  // nullopt if `xml` is not one well-formed element.
  static std::optional<Element> parse(const parley_host_api* api, std::string_view xml) {
    parley_element* e = api->element_parse(detail::to_c(xml));
    return e ? std::optional<Element>(Element(api, e)) : std::nullopt;
  }

  parley_element* release() noexcept {
    auto* e = const_cast<parley_element*>(e_);
    e_ = nullptr;
    return e;
  }
  void reset() noexcept {
    if (e_ && api_) api_->element_free(release());
  }
};

namespace detail {

template <class Ref>
class Children {
 public:
  class iterator {
   public:
    iterator(const parley_host_api* api, parley_element* parent, std::size_t i) : api_(api), parent_(parent), i_(i) {}
    Ref operator*() const { return Ref(api_, api_->element_child_at(parent_, i_)); }
    iterator& operator++() { ++i_; return *this; }
    bool operator==(const iterator& o) const { return i_ == o.i_; }
   private:
    const parley_host_api* api_;
    parley_element* parent_;
    std::size_t i_;
  };
  Children(const parley_host_api* api, parley_element* parent)
      : api_(api), parent_(parent), n_(api->element_child_count(parent)) {}
  iterator begin() const { return {api_, parent_, 0}; }
  iterator end() const { return {api_, parent_, n_}; }
  std::size_t size() const { return n_; }
 private:
  const parley_host_api* api_;
  parley_element* parent_;
  std::size_t n_;
};

}  // namespace detail

inline detail::Children<ElementView> ElementView::children() const { return {api_, mut()}; }
inline detail::Children<ElementRef> ElementRef::children() const { return {api_, mut()}; }

inline Element ElementView::clone() const {
  parley_element* e = t().element_clone(e_);
  if (!e) throw std::runtime_error("parley: element_clone failed");
  return Element(api_, e);
}

inline ElementRef ElementRef::add_child(Element&& child) {
  if (!child) detail::fail("parley: add_child of a null element");
  parley_element* parent = mut();
  return ElementRef(api_, t().element_add_child(parent, child.release()));
}

inline ElementRef ElementRef::add_child(std::string_view name, std::string_view xmlns) {
  return add_child(Element::create(api_, name, xmlns));
}

// <iq type='result'/> answering `iq`: same id, from/to swapped, no payload.
inline Element make_iq_result(ElementView iq) {
  Element r = Element::create(iq.api(), "iq", iq.xmlns());
  r.set_attr("type", "result");
  if (auto id = iq.attr("id")) r.set_attr("id", *id);
  if (auto to = iq.attr("to")) r.set_attr("from", *to);
  if (auto from = iq.attr("from")) r.set_attr("to", *from);
  return r;
}

// "user@host/res" -> "user@host"; a bare JID or a domain is returned as is.
inline std::string_view bare_jid(std::string_view jid) noexcept { return jid.substr(0, jid.find('/')); }

// One hook call. Views are valid for the call only.
class Event {
 public:
  Event(const parley_host_api* api, const parley_event_args* args) noexcept : api_(api), a_(args) {}
  parley_event type() const noexcept { return static_cast<parley_event>(a_->event); }
  parley_session_id session() const noexcept { return a_->session; }
  std::optional<ElementRef> stanza() const { return ref(a_->stanza); }
  std::optional<ElementRef> acc() const { return ref(a_->acc); }
  std::string_view user() const noexcept { return detail::to_sv(a_->user); }
  std::string_view host() const noexcept { return detail::to_sv(a_->host); }
  std::string_view jid() const noexcept { return detail::to_sv(a_->jid); }
  const parley_event_args* raw() const noexcept { return a_; }
  const parley_host_api* api() const noexcept { return api_; }
 private:
  std::optional<ElementRef> ref(parley_element* e) const {
    return e ? std::optional<ElementRef>(ElementRef(api_, e)) : std::nullopt;
  }
  const parley_host_api* api_;
  const parley_event_args* a_;
};

// One IQ addressed to a handler. Answer with exactly one result or error.
class IqRequest {
 public:
  IqRequest(const parley_host_api* api, const parley_iq_request* r) noexcept : api_(api), r_(r) {}
  ElementView iq() const noexcept { return {api_, r_->iq}; }
  std::optional<ElementView> payload() const { return iq().first_child(); }
  std::string_view type() const { return iq().attr("type").value_or(std::string_view()); }
  std::string_view from() const noexcept { return detail::to_sv(r_->from); }
  std::string_view to() const noexcept { return detail::to_sv(r_->to); }
  parley_session_id session() const noexcept {
    return PARLEY_STRUCT_HAS(parley_iq_request, r_, session) ? r_->session : 0;
  }
  const parley_iq_request* raw() const noexcept { return r_; }
 private:
  const parley_host_api* api_;
  const parley_iq_request* r_;
};

// A storage parameter: NULL, an integer, text (UTF-8) or a blob. Borrows its
// bytes: the host copies parameters during storage_query.
class Value {
 public:
  Value(std::nullptr_t = nullptr) noexcept : v_{PARLEY_VALUE_NULL, 0, {nullptr, 0}} {}
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Value(I i) noexcept : v_{PARLEY_VALUE_INT, static_cast<int64_t>(i), {nullptr, 0}} {}
  Value(std::string_view text) noexcept : v_{PARLEY_VALUE_TEXT, 0, detail::to_c(text)} {}
  Value(const char* text) noexcept : Value(std::string_view(text)) {}
  Value(const std::string& text) noexcept : Value(std::string_view(text)) {}
  static Value blob(std::string_view bytes) noexcept {
    Value v(bytes);
    v.v_.type = PARLEY_VALUE_BLOB;
    return v;
  }
  const parley_value& raw() const noexcept { return v_; }

 private:
  parley_value v_;
};

// One cell of a result, borrowed for the completion callback.
class Cell {
 public:
  explicit Cell(parley_value v) noexcept : v_(v) {}
  parley_value_type type() const noexcept { return static_cast<parley_value_type>(v_.type); }
  bool is_null() const noexcept { return v_.type == PARLEY_VALUE_NULL; }
  std::optional<int64_t> integer() const noexcept {
    return v_.type == PARLEY_VALUE_INT ? std::optional<int64_t>(v_.integer) : std::nullopt;
  }
  // TEXT or BLOB bytes.
  std::optional<std::string_view> bytes() const noexcept {
    return v_.type == PARLEY_VALUE_TEXT || v_.type == PARLEY_VALUE_BLOB ? std::optional(detail::to_sv(v_.bytes))
                                                                         : std::nullopt;
  }
 private:
  parley_value v_;
};

// A query's result, borrowed for the completion callback: copy what you keep.
class Rows {
 public:
  Rows(const parley_host_api* api, const parley_rows* rows) noexcept : api_(api), rows_(rows) {}
  std::size_t size() const { return api_->rows_count(rows_); }
  std::size_t columns() const { return api_->rows_columns(rows_); }
  int64_t changes() const { return api_->rows_changes(rows_); }  // rows changed by a write
  Cell at(std::size_t row, std::size_t column) const { return Cell(api_->rows_value(rows_, row, column)); }
  const parley_rows* raw() const noexcept { return rows_; }
 private:
  const parley_host_api* api_;
  const parley_rows* rows_;
};

class Host;

namespace detail {

// Timers and storage calls whose callback has not run yet. The host hands back
// an opaque key, never a pointer: a callback for something cancelled or for a
// Host that is gone finds nothing and does nothing. One registry per .so
// (hidden visibility), shared by the instances of the module in it.
struct Pending {
  const Host* owner;
  uint64_t timer_id = 0;  // 0: a storage call
  bool repeating = false;
  bool firing = false;
  bool cancelled = false;
  std::function<void(uint64_t)> on_timer;
  std::function<void(Result<Rows, std::string>)> on_rows;
};

struct Callbacks {
  // Recursive: a host that ran a callback from inside timer_start would
  // otherwise deadlock; it then finds no id yet and the callback is dropped.
  std::recursive_mutex mu;
  std::map<uint64_t, std::unique_ptr<Pending>> pending;
  uint64_t next_key = 1;

  static Callbacks& get() {
    static Callbacks callbacks;
    return callbacks;
  }
};

inline void* key_arg(uint64_t key) noexcept { return reinterpret_cast<void*>(static_cast<uintptr_t>(key)); }
inline uint64_t arg_key(void* arg) noexcept { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(arg)); }

}  // namespace detail

// The host as seen by one module instance: the module handle and the function
// table. Timers and storage completions are std::functions kept by the module
// until they ran or were cancelled.
class Host {
 public:
  using TimerFn = std::function<void(uint64_t timer_id)>;
  using RowsFn = std::function<void(Result<Rows, std::string>)>;

  Host() = default;
  Host(parley_module* m, const parley_host_api* api) noexcept : m_(m), api_(api) {}
  ~Host() { forget_all(); }
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  void attach(parley_module* m, const parley_host_api* api) noexcept { m_ = m; api_ = api; }
  parley_module* handle() const noexcept { return m_; }
  const parley_host_api* api() const noexcept { return api_; }
  // For entries newer than 1.0: `if (host.supports(PARLEY_HOST_ENTRY_END(foo))) host.api()->foo(...)`.
  bool supports(std::size_t entry_end) const noexcept { return api_ && api_->size >= entry_end; }

  void log(parley_log_level level, std::string_view text) const noexcept {
    if (api_) api_->log(m_, level, detail::to_c(text));
  }
  void trace(std::string_view t) const noexcept { log(PARLEY_LOG_TRACE, t); }
  void debug(std::string_view t) const noexcept { log(PARLEY_LOG_DEBUG, t); }
  void info(std::string_view t) const noexcept { log(PARLEY_LOG_INFO, t); }
  void warn(std::string_view t) const noexcept { log(PARLEY_LOG_WARN, t); }
  void error(std::string_view t) const noexcept { log(PARLEY_LOG_ERROR, t); }

  // Options of this module for this host; nullopt if unset (or of another type).
  std::optional<std::string> option_string(std::string_view name) const {
    detail::StringSink s;
    if (table()->option_string(m_, detail::to_c(name), s.sink()) != 1) return std::nullopt;
    return s.take();
  }
  std::optional<int64_t> option_int(std::string_view name) const {
    int64_t v = 0;
    if (table()->option_int(m_, detail::to_c(name), &v) != 1) return std::nullopt;
    return v;
  }
  std::optional<bool> option_bool(std::string_view name) const {
    int v = 0;
    if (table()->option_bool(m_, detail::to_c(name), &v) != 1) return std::nullopt;
    return v != 0;
  }
  std::optional<std::vector<std::string>> option_string_list(std::string_view name) const {
    detail::ListSink s;
    if (table()->option_string_list(m_, detail::to_c(name), s.sink()) != 1) return std::nullopt;
    return s.take();
  }
  // The served domain this instance was started for.
  std::string module_host() const { return std::string(detail::to_sv(table()->module_host(m_))); }

  Element element(std::string_view name, std::string_view xmlns = {}) const {
    return Element::create(table(), name, xmlns);
  }
  std::optional<Element> parse(std::string_view xml) const { return Element::parse(table(), xml); }

  void route(Element&& stanza) const {
    if (!stanza) detail::fail("parley: route of a null element");
    table()->route(m_, stanza.release());
  }
  // An error reply (RFC 6120 8.3) to `stanza` with a defined condition name.
  void bounce(ElementView stanza, std::string_view condition, std::string_view text = {}) const {
    if (!stanza) detail::fail("parley: bounce of a null element");
    table()->bounce(m_, stanza.raw(), detail::to_c(condition), detail::to_c(text));
  }
  // false if the session is gone (the stanza is freed either way).
  bool send_to_session(parley_session_id session, Element&& stanza) const {
    if (!stanza) detail::fail("parley: send of a null element");
    return table()->send_to_session(m_, session, stanza.release()) == 1;
  }

  void counter_add(std::string_view name, int64_t delta = 1) const {
    table()->counter_add(m_, detail::to_c(name), delta);
  }
  std::vector<std::string> server_features() const {
    detail::ListSink s;
    table()->server_features(m_, s.sink());
    return s.take();
  }

  // Timers run `fn` on the calling loop; fn may take the timer id. The
  // function is kept until it fired (one-shot) or was cancelled. The host
  // refuses a reload while timers are pending.
  template <class F>
  uint64_t start_timer(std::chrono::milliseconds delay, F&& fn) {
    return start_timer_impl(delay, std::chrono::milliseconds(0), wrap(std::forward<F>(fn)));
  }
  template <class F>
  uint64_t start_repeating_timer(std::chrono::milliseconds delay, std::chrono::milliseconds every, F&& fn) {
    if (every.count() <= 0) detail::fail("parley: a repeating timer needs a period");
    return start_timer_impl(delay, every, wrap(std::forward<F>(fn)));
  }
  bool cancel_timer(uint64_t id);
  std::size_t pending_timers() const { return count_pending(true); }

  // Storage: one SQL statement on the module's own tables (named mod_NAME_*),
  // `?` parameters. `done` runs later on the calling loop with the rows (valid
  // during the call) or the error text. query() reads; execute() writes, in
  // order, on the single writer. Needs a host with storage (else throws).
  void query(std::string_view sql, std::initializer_list<Value> params, RowsFn done) {
    storage_call(sql, params.begin(), params.size(), false, std::move(done));
  }
  void execute(std::string_view sql, std::initializer_list<Value> params, RowsFn done = {}) {
    storage_call(sql, params.begin(), params.size(), true, std::move(done));
  }
  void storage_call(std::string_view sql, const Value* params, std::size_t count, bool write, RowsFn done);
  std::size_t pending_storage_calls() const { return count_pending(false); }

  // Cancels this instance's timers at the host and drops every pending
  // callback (storage completions then find nothing). Run by the destructor.
  void forget_all() noexcept;

 private:
  const parley_host_api* table() const {
    if (!api_) detail::fail("parley: host not attached");
    return api_;
  }
  template <class F>
  static TimerFn wrap(F&& fn) {
    if constexpr (std::is_invocable_v<F&, uint64_t>) {
      return TimerFn(std::forward<F>(fn));
    } else {
      return [f = std::forward<F>(fn)](uint64_t) mutable { f(); };
    }
  }
  uint64_t start_timer_impl(std::chrono::milliseconds delay, std::chrono::milliseconds every, TimerFn fn);
  std::size_t count_pending(bool timers) const;
  static void on_timer(void* state, uint64_t timer_id, void* arg) noexcept;
  static void on_rows(void* state, void* arg, const parley_rows* rows, parley_str error) noexcept;

  parley_module* m_ = nullptr;
  const parley_host_api* api_ = nullptr;
};

namespace detail {

// The exception text for the log, without letting a second exception escape.
inline void log_exception(const Host& host, std::string_view where, std::exception_ptr ep) noexcept {
  try {
    std::string what = "non-standard exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    host.error(std::string(where) + " threw: " + what);
  } catch (...) {
    host.error(where);
  }
}

}  // namespace detail

inline uint64_t Host::start_timer_impl(std::chrono::milliseconds delay, std::chrono::milliseconds every, TimerFn fn) {
  const parley_host_api* api = table();
  auto& cb = detail::Callbacks::get();
  auto pending = std::make_unique<detail::Pending>();
  pending->owner = this;
  pending->on_timer = std::move(fn);
  pending->repeating = every.count() > 0;
  detail::Pending* p = pending.get();
  // Held across timer_start, so that a callback on another loop cannot look
  // for the timer before its id is recorded.
  std::lock_guard lock(cb.mu);
  uint64_t key = cb.next_key++;
  cb.pending.emplace(key, std::move(pending));
  uint64_t id = api->timer_start(m_, static_cast<uint64_t>(delay.count()), static_cast<uint64_t>(every.count()),
                                 &Host::on_timer, detail::key_arg(key));
  if (id == 0) {
    cb.pending.erase(key);
    throw std::runtime_error("parley: timer_start failed");
  }
  p->timer_id = id;
  return id;
}

inline bool Host::cancel_timer(uint64_t id) {
  auto& cb = detail::Callbacks::get();
  auto find = [&]() {
    for (auto it = cb.pending.begin(); it != cb.pending.end(); ++it)
      if (it->second->owner == this && it->second->timer_id == id) return it;
    return cb.pending.end();
  };
  {
    std::lock_guard lock(cb.mu);
    if (find() == cb.pending.end()) return false;
  }
  if (table()->timer_cancel(m_, id) != 1) return false;
  std::lock_guard lock(cb.mu);
  auto it = find();
  if (it == cb.pending.end()) return true;
  // Cancelled from inside its own callback: on_timer frees it on return.
  if (it->second->firing) it->second->cancelled = true;
  else cb.pending.erase(it);
  return true;
}

inline std::size_t Host::count_pending(bool timers) const {
  auto& cb = detail::Callbacks::get();
  std::lock_guard lock(cb.mu);
  std::size_t n = 0;
  for (const auto& [key, p] : cb.pending) n += p->owner == this && !p->cancelled && (p->timer_id != 0) == timers;
  return n;
}

inline void Host::forget_all() noexcept {
  auto& cb = detail::Callbacks::get();
  std::vector<uint64_t> timers;
  {
    std::lock_guard lock(cb.mu);
    for (auto it = cb.pending.begin(); it != cb.pending.end();) {
      detail::Pending& p = *it->second;
      if (p.owner != this) {
        ++it;
        continue;
      }
      if (p.timer_id && !p.cancelled) timers.push_back(p.timer_id);
      if (p.firing) {  // running right now: on_timer frees it on return
        p.cancelled = true;
        p.owner = nullptr;
        ++it;
      } else {
        it = cb.pending.erase(it);
      }
    }
  }
  if (api_)
    for (uint64_t id : timers) api_->timer_cancel(m_, id);
}

inline void Host::on_timer(void*, uint64_t timer_id, void* arg) noexcept {
  auto& cb = detail::Callbacks::get();
  uint64_t key = detail::arg_key(arg);
  detail::Pending* p = nullptr;
  {
    std::lock_guard lock(cb.mu);
    auto it = cb.pending.find(key);
    if (it == cb.pending.end() || it->second->cancelled || it->second->timer_id != timer_id) return;
    p = it->second.get();
    p->firing = true;
  }
  try {
    p->on_timer(timer_id);
  } catch (...) {
    if (p->owner) detail::log_exception(*p->owner, "timer callback", std::current_exception());
  }
  std::lock_guard lock(cb.mu);
  p->firing = false;
  if (!p->repeating || p->cancelled) cb.pending.erase(key);
}

inline void Host::storage_call(std::string_view sql, const Value* params, std::size_t count, bool write, RowsFn done) {
  const parley_host_api* api = table();
  if (!supports(PARLEY_HOST_ENTRY_END(rows_changes))) throw std::runtime_error("parley: this host has no module storage");
  auto& cb = detail::Callbacks::get();
  uint64_t key;
  {
    std::lock_guard lock(cb.mu);
    key = cb.next_key++;
    auto pending = std::make_unique<detail::Pending>();
    pending->owner = this;
    pending->on_rows = std::move(done);
    cb.pending.emplace(key, std::move(pending));
  }
  std::vector<parley_value> values;
  values.reserve(count);
  for (std::size_t i = 0; i < count; ++i) values.push_back(params[i].raw());
  api->storage_query(m_, detail::to_c(sql), values.data(), count, write ? 1 : 0, &Host::on_rows, detail::key_arg(key));
}

inline void Host::on_rows(void*, void* arg, const parley_rows* rows, parley_str error) noexcept {
  auto& cb = detail::Callbacks::get();
  std::unique_ptr<detail::Pending> p;
  {
    std::lock_guard lock(cb.mu);
    auto it = cb.pending.find(detail::arg_key(arg));
    if (it == cb.pending.end()) return;  // its Host is gone
    p = std::move(it->second);
    cb.pending.erase(it);
  }
  if (!p->on_rows || !p->owner) return;
  const Host& host = *p->owner;
  try {
    if (error.len > 0) p->on_rows(unexpected(std::string(detail::to_sv(error))));
    else p->on_rows(Rows(host.api(), rows));
  } catch (...) {
    detail::log_exception(host, "storage callback", std::current_exception());
  }
}

// The base of every module. One instance per served host, made by the
// generated start trampoline; host() is usable from start() on.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // An error refuses to start (the host logs the text with the module's name).
  virtual Result<void, std::string> start() { return {}; }
  virtual void stop() {}
  // Hot reload: bytes from the old code's save_state reach the new code's
  // restore_state. Declared in the def only when the class overrides them.
  virtual Result<std::string, std::string> save_state() { return std::string(); }
  virtual Result<void, std::string> restore_state(std::string_view /*bytes*/) { return {}; }

  Host& host() noexcept { return host_; }
  const Host& host() const noexcept { return host_; }

 private:
  Host host_;
};

namespace detail {

inline Module* as_module(void* state) noexcept { return static_cast<Module*>(state); }

template <class F>
struct handler_class;
template <class R, class C, class A>
struct handler_class<R (C::*)(A)> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (C::*)(A) const> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (C::*)(A) noexcept> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (C::*)(A) const noexcept> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (*)(C&, A)> { using type = C; };
template <class R, class C, class A>
struct handler_class<R (*)(C&, A) noexcept> { using type = C; };

template <class R>
parley_result to_result(R r) {
  if constexpr (std::is_same_v<R, Outcome>) return static_cast<parley_result>(static_cast<int>(r));
  else return static_cast<parley_result>(r);
}

template <auto F>
parley_result hook_trampoline(void* state, const parley_event_args* args) noexcept {
  using C = typename handler_class<decltype(F)>::type;
  Module* mod = as_module(state);
  if (!mod || !args) return PARLEY_ERROR;
  try {
    Event ev(mod->host().api(), args);
    C& self = static_cast<C&>(*mod);
    using R = decltype(std::invoke(F, self, ev));
    if constexpr (std::is_void_v<R>) {
      std::invoke(F, self, ev);
      return PARLEY_PASS;
    } else {
      return to_result(std::invoke(F, self, ev));
    }
  } catch (...) {
    log_exception(mod->host(), "hook", std::current_exception());
    return PARLEY_ERROR;
  }
}

template <auto F>
parley_result iq_trampoline(void* state, const parley_iq_request* request) noexcept {
  using C = typename handler_class<decltype(F)>::type;
  Module* mod = as_module(state);
  if (!mod || !request || !request->iq) return PARLEY_ERROR;
  try {
    IqRequest req(mod->host().api(), request);
    C& self = static_cast<C&>(*mod);
    using R = decltype(std::invoke(F, self, req));
    if constexpr (std::is_void_v<R>) {
      std::invoke(F, self, req);
      return PARLEY_HANDLED;
    } else {
      return to_result(std::invoke(F, self, req));
    }
  } catch (...) {
    log_exception(mod->host(), "iq handler", std::current_exception());
    return PARLEY_ERROR;
  }
}

template <class C>
struct Trampolines {
  static_assert(std::is_base_of_v<Module, C>, "a Parley module class derives from parley::Module");
  static_assert(std::is_default_constructible_v<C>, "a Parley module class is default-constructible");

  // The type of &C::f names the class that declared f: different from
  // Module's only when C (or a base between) overrides it.
  static constexpr bool has_save = !std::is_same_v<decltype(&C::save_state), decltype(&Module::save_state)>;
  static constexpr bool has_restore = !std::is_same_v<decltype(&C::restore_state), decltype(&Module::restore_state)>;

  static int start(parley_module* m, const parley_host_api* api, void** state, parley_sink error) noexcept {
    if (!api || !state) return 1;
    if (api->abi_major != PARLEY_ABI_MAJOR || api->size < host_api_size_1_0) {
      sink_write(error, "the host's module ABI is incompatible with this module's");
      return 1;
    }
    C* mod = nullptr;
    try {
      mod = new C();
      static_cast<Module*>(mod)->host().attach(m, api);
      Result<void, std::string> r = static_cast<Module*>(mod)->start();
      if (!r) {
        sink_write(error, r.error().empty() ? std::string_view("start failed") : std::string_view(r.error()));
        destroy(mod);
        return 1;
      }
    } catch (...) {
      std::string what = "start threw a non-standard exception";
      try {
        std::rethrow_exception(std::current_exception());
      } catch (const std::exception& e) {
        what = std::string("start threw: ") + e.what();
      } catch (...) {
      }
      sink_write(error, what);
      destroy(mod);
      return 1;
    }
    *state = static_cast<Module*>(mod);
    return 0;
  }

  static void stop(void* state) noexcept {
    Module* mod = as_module(state);
    if (!mod) return;
    try {
      mod->stop();
    } catch (...) {
      log_exception(mod->host(), "stop", std::current_exception());
    }
    destroy(static_cast<C*>(mod));
  }

  static int save_state(void* state, parley_sink out) noexcept {
    Module* mod = as_module(state);
    if (!mod) return 1;
    try {
      Result<std::string, std::string> r = mod->save_state();
      if (!r) {
        mod->host().error("save_state failed: " + r.error());
        return 1;
      }
      sink_write(out, *r);
      return 0;
    } catch (...) {
      log_exception(mod->host(), "save_state", std::current_exception());
      return 1;
    }
  }

  static int restore_state(void* state, parley_str bytes) noexcept {
    Module* mod = as_module(state);
    if (!mod) return 1;
    try {
      Result<void, std::string> r = mod->restore_state(to_sv(bytes));
      if (!r) {
        mod->host().error("restore_state failed: " + r.error());
        return 1;
      }
      return 0;
    } catch (...) {
      log_exception(mod->host(), "restore_state", std::current_exception());
      return 1;
    }
  }

 private:
  static void destroy(C* mod) noexcept {
    if (!mod) return;
    static_cast<Module*>(mod)->host().forget_all();
    try {
      delete mod;
    } catch (...) {
    }
  }
};

// One entry of a PARLEY_MODULE list. Errors in a list are compile errors: a
// constexpr function that throws is not a constant expression.
enum class DeclKind { hook, iq, option, depends, feature, schema };

struct Decl {
  DeclKind kind;
  parley_hook_decl hook{};
  parley_iq_decl iq{};
  parley_option_decl option{};
  const char* text = nullptr;
};

template <class... D>
constexpr std::array<Decl, sizeof...(D)> make_decls(D... d) {
  return {d...};
}

template <std::size_t N>
constexpr std::size_t count_of(const std::array<Decl, N>& d, DeclKind kind) {
  std::size_t n = 0;
  for (const Decl& x : d) n += x.kind == kind;
  return n;
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

template <class C, std::size_t NH, std::size_t NI, std::size_t NO, std::size_t ND, std::size_t NF, std::size_t NS>
constexpr parley_module_def make_def(const char* name, const char* version, const std::array<parley_hook_decl, NH>& hooks,
                                     const std::array<parley_iq_decl, NI>& iqs,
                                     const std::array<parley_option_decl, NO>& options,
                                     const std::array<const char*, ND>& depends,
                                     const std::array<const char*, NF>& features,
                                     const std::array<const char*, NS>& schema) {
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
  if (scope != PARLEY_IQ_SERVER && scope != PARLEY_IQ_ACCOUNT) throw "parley: unknown iq scope";
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
  constexpr auto var##_schema_ = ::parley::detail::collect_strings<::parley::detail::count_of(                       \
      var##_decls_, ::parley::detail::DeclKind::schema)>(var##_decls_, ::parley::detail::DeclKind::schema);          \
  constexpr parley_module_def var = ::parley::detail::make_def<Class>(                                               \
      mod_name, mod_version, var##_hooks_, var##_iqs_, var##_options_, var##_depends_, var##_features_, var##_schema_)

// The module's definition and its one exported symbol. Once per .so.
#define PARLEY_MODULE(Class, mod_name, mod_version, ...)                                 \
  namespace {                                                                          \
  PARLEY_MODULE_DEF(parley_module_def_, Class, mod_name, mod_version, __VA_ARGS__);    \
  }                                                                                    \
  extern "C" PARLEY_EXPORT const parley_module_def* parley_module_entry(void) { return &parley_module_def_; }
