// mod_test_dialect: a third-party module's own SQL per backend (ABI 1.7), for the
// integration tests: it declares its schema for SQLite and for PostgreSQL and writes its
// statements in the dialect of the backend its tables are on (host().storage_backend()).
//   iq set <note xmlns='urn:parley:test:dialect'>TEXT</note>  stores TEXT (answered once stored)
//   iq get <notes xmlns='urn:parley:test:dialect'/>          every note, in order, and the backend:
//                                                            <notes backend='sqlite|postgresql'><note/>...
//   iq get|set <raw xmlns='urn:parley:test:dialect'>SQL</raw> runs SQL (get: a read, set: a write) and
//                                                            answers <raw changes='N'><row><v>..</v></row></raw>,
//                                                            or <raw><error>why</error></raw>
// An error of the note set is an iq error (internal-server-error) with the store's text.
#include <memory>
#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns = "urn:parley:test:dialect";

class ModTestDialect : public parley::Module {
 public:
  bool postgresql() const { return host().storage_backend() == PARLEY_BACKEND_POSTGRESQL; }

  void on_set(const parley::IqRequest& request) {
    auto payload = *request.payload();
    if (payload.name() == "raw") return raw(request, true);
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    const char* sql = postgresql() ? "INSERT INTO mod_test_dialect_notes (text) VALUES ($1)"
                                   : "INSERT INTO mod_test_dialect_notes (text) VALUES (?)";
    host().execute(sql, {payload.text()}, [this, iq](parley::Result<parley::Rows, std::string> rows) {
      if (!rows) return host().bounce(*iq, "internal-server-error", rows.error());
      host().route(parley::make_iq_result(*iq));
    });
  }

  void on_get(const parley::IqRequest& request) {
    if (request.payload()->name() == "raw") return raw(request, false);
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    std::string backend = postgresql() ? "postgresql" : "sqlite";
    host().query("SELECT text FROM mod_test_dialect_notes ORDER BY id", {},
                 [this, iq, backend](parley::Result<parley::Rows, std::string> rows) {
                   if (!rows) return host().bounce(*iq, "internal-server-error", rows.error());
                   parley::Element result = parley::make_iq_result(*iq);
                   parley::ElementRef notes = result.add_child("notes", ns);
                   notes.set_attr("backend", backend);
                   for (std::size_t i = 0; i < rows->size(); ++i)
                     notes.add_child("note", ns).add_text(std::string(rows->at(i, 0).bytes().value_or("")));
                   host().route(std::move(result));
                 });
  }

 private:
  void raw(const parley::IqRequest& request, bool write) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    host().storage_call(request.payload()->text(), nullptr, 0, write,
                        [this, iq](parley::Result<parley::Rows, std::string> rows) {
                          parley::Element result = parley::make_iq_result(*iq);
                          parley::ElementRef out = result.add_child("raw", ns);
                          if (!rows) {
                            out.add_child("error", ns).add_text(rows.error());
                          } else {
                            out.set_attr("changes", std::to_string(rows->changes()));
                            for (std::size_t r = 0; r < rows->size(); ++r) {
                              parley::ElementRef row = out.add_child("row", ns);
                              for (std::size_t c = 0; c < rows->columns(); ++c) {
                                parley::Cell cell = rows->at(r, c);
                                std::string v = cell.integer() ? std::to_string(*cell.integer())
                                                               : std::string(cell.bytes().value_or(""));
                                row.add_child("v", ns).add_text(v);
                              }
                            }
                          }
                          host().route(std::move(result));
                        });
  }
};

}  // namespace

PARLEY_MODULE(ModTestDialect, "mod_test_dialect", "1.0.0",
              parley::iq_handler<&ModTestDialect::on_set>(PARLEY_IQ_SERVER, PARLEY_IQ_SET, ns),
              parley::iq_handler<&ModTestDialect::on_get>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns),
              parley::schema("CREATE TABLE mod_test_dialect_notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"),
              parley::schema_for(PARLEY_BACKEND_POSTGRESQL,
                                 "CREATE TABLE mod_test_dialect_notes (id BIGSERIAL PRIMARY KEY, text TEXT NOT NULL)",
                                 "CREATE INDEX mod_test_dialect_notes_by_text ON mod_test_dialect_notes (text)"))
