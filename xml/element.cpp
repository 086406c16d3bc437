#include "xml/element.hpp"

#include <algorithm>
#include <utility>

namespace parley::xml {

namespace {

const std::string kEmpty;

NamespaceRef make_ns(std::string uri) {
  if (uri.empty()) return nullptr;
  return std::make_shared<const std::string>(std::move(uri));
}

bool ns_matches(const Element& e, std::string_view xmlns) { return xmlns.empty() || e.xmlns() == xmlns; }

}  // namespace

Element::Element(std::string name, std::string xmlns) : name_(std::move(name)), xmlns_(make_ns(std::move(xmlns))) {}

Element::~Element() = default;

Element::Element(const Element& other) : name_(other.name_), xmlns_(other.xmlns_), attrs_(other.attrs_) {
  nodes_.reserve(other.nodes_.size());
  for (const Node& n : other.nodes_) {
    if (n.element) {
      nodes_.push_back(Node{std::make_unique<Element>(*n.element), {}});
    } else {
      nodes_.push_back(Node{nullptr, n.text});
    }
  }
}

Element& Element::operator=(const Element& other) {
  if (this != &other) {
    Element copy(other);
    *this = std::move(copy);
  }
  return *this;
}

Element::Element(Element&&) noexcept = default;
Element& Element::operator=(Element&&) noexcept = default;

const std::string& Element::xmlns() const { return xmlns_ ? *xmlns_ : kEmpty; }

void Element::set_xmlns(std::string xmlns) { xmlns_ = make_ns(std::move(xmlns)); }

const std::string* Element::find_attr(std::string_view name) const {
  for (const Attribute& a : attrs_) {
    if (a.name == name) return &a.value;
  }
  return nullptr;
}

std::string_view Element::attr(std::string_view name) const {
  const std::string* v = find_attr(name);
  return v ? std::string_view(*v) : std::string_view();
}

Element& Element::set_attr(std::string name, std::string value) {
  for (Attribute& a : attrs_) {
    if (a.name == name) {
      a.value = std::move(value);
      return *this;
    }
  }
  attrs_.push_back(Attribute{std::move(name), std::move(value)});
  return *this;
}

Element& Element::append_attr(std::string name, std::string value) {
  attrs_.push_back(Attribute{std::move(name), std::move(value)});
  return *this;
}

void Element::remove_attr(std::string_view name) {
  std::erase_if(attrs_, [&](const Attribute& a) { return a.name == name; });
}

Element& Element::add_child(Element child) {
  // Share our namespace string with a child in the same namespace: a parsed stanza then holds one copy.
  if (child.xmlns_ != xmlns_ && child.xmlns() == xmlns()) child.xmlns_ = xmlns_;
  nodes_.push_back(Node{std::make_unique<Element>(std::move(child)), {}});
  return *nodes_.back().element;
}

Element& Element::add_child(std::string name, std::string xmlns) {
  auto child = std::make_unique<Element>();
  child->name_ = std::move(name);
  child->xmlns_ = xmlns == this->xmlns() ? xmlns_ : make_ns(std::move(xmlns));
  nodes_.push_back(Node{std::move(child), {}});
  return *nodes_.back().element;
}

Element& Element::add_text(std::string_view text) {
  if (text.empty()) return *this;
  if (!nodes_.empty() && !nodes_.back().is_element()) {
    nodes_.back().text.append(text);
  } else {
    nodes_.push_back(Node{nullptr, std::string(text)});
  }
  return *this;
}

const Element* Element::find_child(std::string_view name, std::string_view xmlns) const {
  for (const Node& n : nodes_) {
    if (n.element && n.element->name_ == name && ns_matches(*n.element, xmlns)) return n.element.get();
  }
  return nullptr;
}

Element* Element::find_child(std::string_view name, std::string_view xmlns) {
  return const_cast<Element*>(std::as_const(*this).find_child(name, xmlns));
}

std::vector<const Element*> Element::children() const {
  std::vector<const Element*> out;
  for (const Node& n : nodes_) {
    if (n.element) out.push_back(n.element.get());
  }
  return out;
}

std::vector<Element*> Element::children() {
  std::vector<Element*> out;
  for (Node& n : nodes_) {
    if (n.element) out.push_back(n.element.get());
  }
  return out;
}

size_t Element::child_count() const {
  return static_cast<size_t>(std::count_if(nodes_.begin(), nodes_.end(), [](const Node& n) { return n.is_element(); }));
}

const Element* Element::first_child() const {
  for (const Node& n : nodes_) {
    if (n.element) return n.element.get();
  }
  return nullptr;
}

std::string Element::text() const {
  std::string out;
  for (const Node& n : nodes_) {
    if (!n.element) out += n.text;
  }
  return out;
}

std::string Element::child_text(std::string_view name, std::string_view xmlns) const {
  const Element* c = find_child(name, xmlns);
  return c ? c->text() : std::string();
}

void Element::remove_children(std::string_view name, std::string_view xmlns) {
  Nodes kept;
  kept.reserve(nodes_.size());
  for (Node& n : nodes_) {
    if (n.element && n.element->name_ == name && ns_matches(*n.element, xmlns)) continue;
    // Keep the invariant that no two text nodes are adjacent: a parsed tree never has them.
    if (!n.element && !kept.empty() && !kept.back().is_element()) {
      kept.back().text += n.text;
      continue;
    }
    kept.push_back(std::move(n));
  }
  nodes_ = std::move(kept);
}

void Element::clear_children() { nodes_.clear(); }

bool operator==(const Element& a, const Element& b) {
  if (a.name() != b.name() || a.xmlns() != b.xmlns()) return false;
  if (a.attrs().size() != b.attrs().size()) return false;
  for (const Attribute& attr : a.attrs()) {
    const std::string* other = b.find_attr(attr.name);
    if (!other || *other != attr.value) return false;
  }
  const Nodes& an = a.nodes();
  const Nodes& bn = b.nodes();
  if (an.size() != bn.size()) return false;
  for (size_t i = 0; i < an.size(); ++i) {
    if (an[i].is_element() != bn[i].is_element()) return false;
    if (an[i].is_element() ? !(*an[i].element == *bn[i].element) : an[i].text != bn[i].text) return false;
  }
  return true;
}

}  // namespace parley::xml
