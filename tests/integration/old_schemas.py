"""The modules' own SQLite tables from before the typed stores, as a server of
sessions 1-10 left them in parley.db: fixtures for the tests of the moves. A
module drops each of these once its rows are moved (parley::OldTables), a fresh
server right at its first start, so a test that plants old rows creates the
table again first, in the shape an old server had."""

OLD_TABLES = {
    "mod_vcard_cards": ["CREATE TABLE mod_vcard_cards (host TEXT NOT NULL, user TEXT NOT NULL, "
                        "xml TEXT NOT NULL, PRIMARY KEY (host, user))"],
    "mod_private_items": ["CREATE TABLE mod_private_items (host TEXT NOT NULL, user TEXT NOT NULL, "
                          "ns TEXT NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (host, user, ns))"],
    "mod_last_activity": ["CREATE TABLE mod_last_activity (host TEXT NOT NULL, user TEXT NOT NULL, "
                          "seconds INTEGER NOT NULL, status TEXT NOT NULL, PRIMARY KEY (host, user))"],
    "mod_roster_items": ["CREATE TABLE mod_roster_items (host TEXT NOT NULL, user TEXT NOT NULL, "
                         "contact TEXT NOT NULL, subscription TEXT NOT NULL DEFAULT 'none', "
                         "ask INTEGER NOT NULL DEFAULT 0, approved INTEGER NOT NULL DEFAULT 0, name TEXT, "
                         "groups TEXT NOT NULL DEFAULT '', ver INTEGER NOT NULL DEFAULT 0, "
                         "PRIMARY KEY (host, user, contact))"],
    "mod_roster_pending": ["CREATE TABLE mod_roster_pending (host TEXT NOT NULL, user TEXT NOT NULL, "
                           "contact TEXT NOT NULL, stanza TEXT NOT NULL, PRIMARY KEY (host, user, contact))"],
    "mod_roster_removed": ["CREATE TABLE mod_roster_removed (host TEXT NOT NULL, user TEXT NOT NULL, "
                           "contact TEXT NOT NULL, ver INTEGER NOT NULL, PRIMARY KEY (host, user, contact))"],
    "mod_pep_nodes": ["CREATE TABLE mod_pep_nodes (host TEXT NOT NULL, user TEXT NOT NULL, node TEXT NOT NULL, "
                      "config TEXT NOT NULL, PRIMARY KEY (host, user, node))"],
    "mod_pep_items": ["CREATE TABLE mod_pep_items (host TEXT NOT NULL, user TEXT NOT NULL, node TEXT NOT NULL, "
                      "item_id TEXT NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL, "
                      "PRIMARY KEY (host, user, node, item_id))"],
    "mod_blocking_items": ["CREATE TABLE mod_blocking_items (id INTEGER PRIMARY KEY, host TEXT NOT NULL, "
                           "user TEXT NOT NULL, jid TEXT NOT NULL, UNIQUE (host, user, jid))"],
    "mod_offline_messages": ["CREATE TABLE mod_offline_messages (id INTEGER PRIMARY KEY, host TEXT NOT NULL, "
                             "user TEXT NOT NULL, stamp TEXT NOT NULL, xml TEXT NOT NULL, "
                             "sender TEXT NOT NULL DEFAULT '')",
                             "CREATE INDEX mod_offline_messages_by_user ON mod_offline_messages (host, user, id)"],
    "mod_pubsub_nodes": ["CREATE TABLE mod_pubsub_nodes (service TEXT NOT NULL, node TEXT NOT NULL, "
                         "creator TEXT NOT NULL, config TEXT NOT NULL, PRIMARY KEY (service, node))"],
    "mod_pubsub_affiliations": ["CREATE TABLE mod_pubsub_affiliations (service TEXT NOT NULL, node TEXT NOT NULL, "
                                "jid TEXT NOT NULL, affiliation TEXT NOT NULL, PRIMARY KEY (service, node, jid))"],
    "mod_pubsub_subscriptions": ["CREATE TABLE mod_pubsub_subscriptions (service TEXT NOT NULL, node TEXT NOT NULL, "
                                 "jid TEXT NOT NULL, subid TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'subscribed', "
                                 "options TEXT NOT NULL DEFAULT '', PRIMARY KEY (service, node, jid))"],
    "mod_pubsub_items": ["CREATE TABLE mod_pubsub_items (service TEXT NOT NULL, node TEXT NOT NULL, "
                         "item_id TEXT NOT NULL, seq INTEGER NOT NULL, publisher TEXT NOT NULL, "
                         "payload TEXT NOT NULL, PRIMARY KEY (service, node, item_id))"],
    "mod_mam_prefs": ["CREATE TABLE mod_mam_prefs (owner TEXT PRIMARY KEY, prefs TEXT NOT NULL)"],
    "mod_muc_rooms": ["CREATE TABLE mod_muc_rooms (jid TEXT PRIMARY KEY, secret TEXT NOT NULL, "
                      "config TEXT NOT NULL, subject TEXT NOT NULL, subject_nick TEXT NOT NULL)"],
    "mod_muc_affiliations": ["CREATE TABLE mod_muc_affiliations (room TEXT NOT NULL, jid TEXT NOT NULL, "
                             "affiliation TEXT NOT NULL, reason TEXT NOT NULL, nick TEXT NOT NULL DEFAULT '', "
                             "PRIMARY KEY (room, jid))"],
    "mod_muc_history": ["CREATE TABLE mod_muc_history (room TEXT NOT NULL, seq INTEGER NOT NULL, "
                        "stamp INTEGER NOT NULL, xml TEXT NOT NULL, PRIMARY KEY (room, seq))"],
}


def recreate_old_tables(db, *tables):
    """Creates each of `tables` in the sqlite3 connection `db` unless it is there."""
    present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in tables:
        if table not in present:
            for ddl in OLD_TABLES[table]:
                db.execute(ddl)
