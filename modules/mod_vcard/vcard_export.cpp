// mod_vcard/vcard_export.cpp - see vcard_export.hpp.
#include "vcard_export.hpp"

namespace mod_vcard {

void export_vcard(const parley::Host& host, const parley::AccountData& data, const std::string& user) {
  bool sent = host.keyval_get(user, vcard_key, [&host, data](parley::Result<parley::KeyvalResult, std::string> r) {
    if (!r) return data.fail("reading the vCard failed: " + r.error());
    if (!r->found()) return data.done();
    auto card = host.parse(r->value());
    if (!card) return data.fail("the stored vCard does not parse");
    data.add(*card);
    data.done("vCard");
  });
  if (!sent) data.fail("the keyval store refused the read");
}

void import_vcard(const parley::Host& host, const parley::AccountData& data, const std::string& user,
                  const std::string& xml) {
  bool sent = host.keyval_put(user, vcard_key, xml, [data](parley::Result<parley::KeyvalResult, std::string> r) {
    if (!r) return data.fail("storing the vCard failed: " + r.error());
    data.done("vCard");
  });
  if (!sent) data.fail("the keyval store refused the write");
}

}  // namespace mod_vcard
