# The server proper: loops, connections, c2s, router, sessions.
add_library(parley_core STATIC
  loop/worker_loop.cpp
  session/session_table.cpp
  stanza/stanza_errors.cpp
  stanza/stanza_log.cpp
  router/router.cpp
  router/router_fanout.cpp
  net/listener.cpp
  net/connection.cpp
  net/connection_write.cpp
  net/output_batch.cpp
  net/lingering_sockets.cpp
  net/http_transport.cpp
  net/http_transport_bosh.cpp
  net/bosh_body.cpp
  net/bosh_session.cpp
  net/bosh_session_move.cpp
  net/http_metrics.cpp
  net/xmpp_framing.cpp
  session/session.cpp
  session/session_attach.cpp
  c2s/c2s_stream.cpp
  c2s/c2s_auth.cpp
  c2s/c2s_stanza.cpp
  c2s/idle_parser_sweep.cpp
  component/component_directory.cpp
  component/component_stream.cpp
  server/server_context.cpp
  server/server.cpp
  server/admin_commands.cpp
  server/config_reload.cpp
  server/log_format.cpp
  modules/hooks.cpp
  modules/module_accounts.cpp
  modules/host_api.cpp
  modules/host_api_services.cpp
  modules/host_api_sessions.cpp
  modules/host_api_archive.cpp
  modules/host_api_out_bytes.cpp
  modules/host_api_stores.cpp
  modules/host_api_module_sql.cpp
  modules/host_api_keys.cpp
  modules/host_api_http.cpp
  modules/host_api_http_client.cpp
  modules/host_api_admin.cpp
  modules/host_api_account_admin.cpp
  modules/pending_iqs.cpp
  modules/module_metrics.cpp
  modules/module_counters.cpp
  modules/module_manager.cpp
  modules/module_pause.cpp
  modules/module_reload.cpp
  modules/module_storage.cpp
  modules/slot_carry.cpp
  export/account_data.cpp
  export/account_import.cpp
)
target_include_directories(parley_core PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(parley_core
  PUBLIC parley_sdk parley_xml parley_http parley_storage parley_addr parley_sasl parley_tls parley_config parley_control parley_pie
         parley_http_client
         PkgConfig::LIBUV spdlog::spdlog fmt::fmt Threads::Threads
  # Used inside the core only (the module table fence, the loader, config parsing): nothing above sees them.
  PRIVATE yaml-cpp SQLite::SQLite3 EXPAT::EXPAT ${CMAKE_DL_LIBS})
# Where parleyd looks for modules after the configured module_paths: the build
# tree (so a fresh build runs as is) and the install prefix.
target_compile_definitions(parley_core PRIVATE
  PARLEY_BUILD_MODULE_DIR="${CMAKE_BINARY_DIR}/modules"
  PARLEY_INSTALL_MODULE_DIR="${CMAKE_INSTALL_PREFIX}/lib/parley/modules")

add_executable(parleyd server/main.cpp)
target_link_libraries(parleyd PRIVATE parley_core CLI11::CLI11)
target_compile_definitions(parleyd PRIVATE PARLEY_VERSION="${PROJECT_VERSION}")
install(TARGETS parleyd RUNTIME DESTINATION bin)
