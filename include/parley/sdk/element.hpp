// parley/sdk/element.hpp - elements: borrowed views (ElementView,
// ElementRef), the owned Element, and helpers built on them.
// Part of parley/module.hpp, the one header a module includes; not meant to be
// included on its own.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "parley/module.h"
#include "parley/sdk/detail.hpp"

namespace parley {

namespace detail {

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
  // As serialize(), into `out` (its content replaced, its memory reused): a module that
  // serializes every message keeps one buffer per loop instead of allocating each time.
  void serialize_to(std::string& out) const {
    detail::StringSink s;
    s.out = std::move(out);
    s.out.clear();
    t().element_serialize(check(), s.sink());
    out = s.take();
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

}  // namespace parley
