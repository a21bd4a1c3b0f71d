#pragma once
// Runtime configuration: environment variables KEYSTEAD_* with matching `keystead serve` flags.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/hooks.h"
#include "core/json.h"

namespace ks {

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string tls_listen;  // empty: no HTTPS listener
  std::string tls_cert;    // PEM paths; empty with tls_listen in dev mode: self-signed
  std::string tls_key;
  std::string public_url;  // default: http://{listen}
  std::string base_domain;
  std::string data_dir = "./data";
  std::string mode = "dev";  // dev | prod
  std::string control_plane_id = "control_plane";
  std::vector<std::string> resolution = {"domain", "subdomain", "path", "header"};
  std::string tenant_header;  // extra header name; tenant-id and x-tenant-id always work
  int threads = 0;            // 0: number of cores
  std::string master_key;     // 64 hex chars (32 bytes); dev generates one into data_dir
  std::string bootstrap_admin_email;
  std::string bootstrap_admin_password;
  std::string bootstrap_client_id;
  std::string bootstrap_client_secret;
  std::string control_plane_client_id;
  // "settings" and "import" are Management API paths under /api/v2/tenants/.
  std::vector<std::string> reserved_ids = {"www", "api", "admin", "static", "settings", "import"};
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  int header_timeout_ms = 10000;      // whole request head must arrive within this
  int idle_timeout_ms = 60000;        // keep-alive idle
  bool trust_forwarded_host = false;  // honour X-Forwarded-Host / X-Forwarded-Proto
  std::string database;               // SQLite path; default {data_dir}/keystead.db
  std::string default_isolation = "shared";
  int access_token_lifetime = 86400;  // seconds, default for resource servers
  hooks::Limits hook_limits;          // per hook call: instructions, memory, wall clock

  bool dev() const { return mode == "dev"; }
  std::string effective_public_url() const;  // no trailing slash
  std::string database_path() const;

  // Reads KEYSTEAD_* variables over the defaults.
  static Config from_env();
  // Applies {"listen": ..., "data_dir": ...} style overrides (the C ABI's config JSON uses the
  // same names as the struct members). Unknown keys are an error.
  void apply_json(const Json& j);
  // Applies one setting by its environment name without the prefix, e.g. ("LISTEN", "...").
  // Returns false for an unknown name.
  bool apply(const std::string& env_name, const std::string& value);
  // Throws std::invalid_argument with a clear message.
  void validate() const;
};

}  // namespace ks
