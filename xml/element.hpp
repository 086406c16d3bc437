// xml/element.hpp - the element tree of one stanza (or any XML fragment).
//
// An Element is a name, a namespace URI, attributes and an ordered list of child nodes (elements and
// text). Prefixes are not kept: the serializer generates them. The namespace string is shared by
// reference count, so that the thousands of children of a hostile stanza that all inherit one long
// namespace URI cost one copy of it, not thousands. Elements and their child and attribute lists take
// their memory from the pool of the thread that builds or frees them (xml/element_pool.hpp: why, and why
// an element stays valid on any loop); the strings in them are the heap's.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xml/element_pool.hpp"

namespace parley::xml {

struct Attribute {
  // The local name for unqualified attributes, "xml:lang" (and "xml:space", ...) for the xml namespace,
  // "{uri}local" (Clark notation) for any other namespaced attribute.
  std::string name;
  std::string value;
};

class Element;

struct Node {
  std::unique_ptr<Element> element;  // set for an element node
  std::string text;                  // the (unescaped) text of a text node
  bool is_element() const { return element != nullptr; }
};

using Attributes = std::vector<Attribute, PoolAllocator<Attribute>>;
using Nodes = std::vector<Node, PoolAllocator<Node>>;

// An interned namespace URI; null means the empty namespace.
using NamespaceRef = std::shared_ptr<const std::string>;

class Element {
 public:
  Element() = default;
  explicit Element(std::string name, std::string xmlns = {});
  ~Element();

  // Deep copies; the namespace strings are shared.
  Element(const Element&);
  Element& operator=(const Element&);
  Element(Element&&) noexcept;
  Element& operator=(Element&&) noexcept;

  // From the pool (make_unique, delete), wherever the element is built or dropped.
  static void* operator new(size_t size) { return pool::allocate(size); }
  static void operator delete(void* p, size_t size) noexcept { pool::deallocate(p, size); }

  const std::string& name() const { return name_; }
  const std::string& xmlns() const;
  const NamespaceRef& xmlns_ref() const { return xmlns_; }
  void set_name(std::string name) { name_ = std::move(name); }
  void set_xmlns(std::string xmlns);
  void set_xmlns_ref(NamespaceRef xmlns) { xmlns_ = std::move(xmlns); }  // share an interned URI

  // Attributes, by the name described at Attribute::name.
  std::string_view attr(std::string_view name) const;         // "" when absent
  const std::string* find_attr(std::string_view name) const;  // nullptr when absent
  bool has_attr(std::string_view name) const { return find_attr(name) != nullptr; }
  Element& set_attr(std::string name, std::string value);     // replaces an existing one; returns *this
  void remove_attr(std::string_view name);
  // Appends without looking for an existing attribute of that name: for parsers, which already
  // guarantee unique names. Returns *this.
  Element& append_attr(std::string name, std::string value);
  // Room for n attributes without growing (parsers know the count; a stanza gets its `from` next).
  void reserve_attrs(size_t n) { attrs_.reserve(n); }
  const Attributes& attrs() const { return attrs_; }

  // Children. The returned references stay valid until that child is removed (children live on the heap).
  // Namespaces are literal: a child is in the namespace it is given, "" being no namespace (written as
  // xmlns='' under a namespaced parent). For a child in the parent's namespace pass parent.xmlns().
  Element& add_child(Element child);                        // returns the added child
  Element& add_child(std::string name, std::string xmlns);  // a new empty child, returned
  Element& add_text(std::string_view text);                 // returns *this; merges with a preceding text node
  // xmlns "" matches any namespace.
  const Element* find_child(std::string_view name, std::string_view xmlns = {}) const;
  Element* find_child(std::string_view name, std::string_view xmlns = {});
  std::vector<const Element*> children() const;  // element children in order
  std::vector<Element*> children();
  size_t child_count() const;                    // element children only
  const Element* first_child() const;            // first element child or nullptr
  std::string text() const;                      // concatenation of the direct text nodes
  std::string child_text(std::string_view name, std::string_view xmlns = {}) const;  // text of find_child or ""
  // Removes the matching element children (xmlns "" = any); text nodes left adjacent are merged.
  void remove_children(std::string_view name, std::string_view xmlns = {});
  void clear_children();  // removes every child node, text included
  const Nodes& nodes() const { return nodes_; }

 private:
  std::string name_;
  NamespaceRef xmlns_;
  Attributes attrs_;
  Nodes nodes_;
};

// Structural equality: names, namespaces, attributes (in any order) and child nodes (in order).
bool operator==(const Element& a, const Element& b);

}  // namespace parley::xml
