// mod_test_notes: module storage and timers, for the integration tests.
//   iq set  <note xmlns='urn:parley:test:notes'>TEXT</note>  stores TEXT (its own table)
//   iq get  <notes xmlns='urn:parley:test:notes'/>           answers every note, in order
//   iq get  <sneak xmlns='urn:parley:test:notes'/>           reads the server's users table:
//                                                            answers the error text (refused)
//   iq set  <timer xmlns='urn:parley:test:notes'/>           starts a 60 s timer (reload is refused meanwhile)
//   iq set  <cancel xmlns='urn:parley:test:notes'/>          cancels it
// stop() writes a note "stopped" with a completion callback: the write must be
// carried out, the callback must not run (the instance is being freed), and an
// unload or reload must wait for the call before unmapping the module.
#include <chrono>
#include <string>

#include "parley/module.hpp"

namespace {

constexpr const char* ns = "urn:parley:test:notes";

class ModTestNotes : public parley::Module {
 public:
  void on_set(const parley::IqRequest& request) {
    auto payload = *request.payload();  // the core checked: a get/set has exactly one
    if (payload.name() == "timer") {
      timer_ = host().start_timer(std::chrono::seconds(60), [] {});
      return reply(request);
    }
    if (payload.name() == "cancel") {
      host().cancel_timer(timer_);
      return reply(request);
    }
    std::string text = payload.text();
    // The completion outlives this call: keep a copy of the request.
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    host().execute("INSERT INTO mod_test_notes_items (text) VALUES (?)", {text},
                   [this, iq](parley::Result<parley::Rows, std::string> rows) {
                     if (!rows) return host().bounce(*iq, "internal-server-error", rows.error());
                     host().route(parley::make_iq_result(*iq));
                   });
  }

  void stop() override {
    host().execute("INSERT INTO mod_test_notes_items (text) VALUES ('stopped')", {},
                   [this](parley::Result<parley::Rows, std::string>) { host().info("stop note written"); });
  }

  void on_get(const parley::IqRequest& request) {
    auto iq = std::make_shared<parley::Element>(request.iq().clone());
    bool sneak = request.payload()->name() == "sneak";
    std::string sql = sneak ? "SELECT username FROM users" : "SELECT text FROM mod_test_notes_items ORDER BY id";
    host().query(sql, {}, [this, iq](parley::Result<parley::Rows, std::string> rows) {
      parley::Element result = parley::make_iq_result(*iq);
      parley::ElementRef notes = result.add_child("notes", ns);
      if (!rows) {
        notes.add_child("error", ns).add_text(rows.error());
      } else {
        for (std::size_t i = 0; i < rows->size(); ++i)
          notes.add_child("note", ns).add_text(std::string(rows->at(i, 0).bytes().value_or("")));
      }
      host().route(std::move(result));
    });
  }

 private:
  void reply(const parley::IqRequest& request) { host().route(parley::make_iq_result(request.iq())); }
  uint64_t timer_ = 0;
};

}  // namespace

PARLEY_MODULE(ModTestNotes, "mod_test_notes", "1.0.0",
              parley::iq_handler<&ModTestNotes::on_set>(PARLEY_IQ_SERVER, PARLEY_IQ_SET, ns),
              parley::iq_handler<&ModTestNotes::on_get>(PARLEY_IQ_SERVER, PARLEY_IQ_GET, ns),
              parley::schema("CREATE TABLE mod_test_notes_items (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"))
