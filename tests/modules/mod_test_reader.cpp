// mod_test_reader: ABI 1.1 read access to a dependency's tables, for the
// integration tests. Depends on mod_test_notes.
//   iq get <read xmlns='urn:parley:test:reader'/>   answers the notes read from mod_test_notes_items
//   iq set <write xmlns='urn:parley:test:reader'/>  tries to insert into mod_test_notes_items: answers the
//                                                   error text (refused: only reads are allowed)
#include <memory>
#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns = "urn:parley:test:reader";

class ModTestReader : public parley::Module {
 public:
  void on_read(const parley::IqRequest& request) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    host().query("SELECT text FROM mod_test_notes_items ORDER BY id", {}, [this, iq](auto rows) { answer(*iq, rows); });
  }
  void on_write(const parley::IqRequest& request) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    host().execute("INSERT INTO mod_test_notes_items (text) VALUES ('forged')", {},
                   [this, iq](auto rows) { answer(*iq, rows); });
  }

 private:
  void answer(const parley::Element& iq, const parley::Result<parley::Rows, std::string>& rows) {
    parley::Element result = parley::make_iq_result(iq);
    parley::ElementRef out = result.add_child("notes", ns);
    if (!rows) {
      out.add_child("error", ns).add_text(rows.error());
    } else {
      for (std::size_t i = 0; i < rows->size(); ++i)
        out.add_child("note", ns).add_text(std::string(rows->at(i, 0).bytes().value_or("")));
    }
    host().route(std::move(result));
  }
};

}  // namespace

PARLEY_MODULE(ModTestReader, "mod_test_reader", "1.0.0", parley::depends("mod_test_notes"),
              parley::iq_handler<&ModTestReader::on_read>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns),
              parley::iq_handler<&ModTestReader::on_write>(PARLEY_IQ_SERVER, PARLEY_IQ_SET, ns))
