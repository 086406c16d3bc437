-- Prosody for parley-bench (bench/compare.sh fills in the @...@ fields and starts it in the foreground).
-- 127.0.0.1 only, its own high port, registration open to the bench, SCRAM-SHA-256 with 4096
-- iterations, STARTTLS required, the same RSA-2048 self-signed certificate as the other servers.
daemonize = false
data_path = "@DIR@/data"
certificates = "@DIR@"
log = { { levels = { min = "warn" }, to = "file", filename = "@DIR@/prosody.log" } }
network_backend = "epoll"

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "offline";
}
-- mod_posix refuses to run as root, and the bench has no use for its pidfile or daemonizing.
modules_disabled = { "s2s"; "http"; "admin_shell"; "posix"; }

authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"

c2s_require_encryption = true
allow_registration = true
registration_allowlist = { "127.0.0.1" }

ssl = { certificate = "@CERT@"; key = "@KEY@"; }

VirtualHost "localhost"

-- The fan-out scenario (muc): one room of 1,000 occupants; Prosody sets no occupant limit by default.
Component "conference.localhost" "muc"
