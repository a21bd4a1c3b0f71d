#include "core/config.h"

#include <cstdlib>
#include <regex>
#include <stdexcept>

namespace ks {
namespace {

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= v.size()) {
    size_t c = v.find(',', i);
    if (c == std::string::npos) c = v.size();
    std::string item = v.substr(i, c - i);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    i = c + 1;
  }
  return out;
}

size_t to_size(const std::string& name, const std::string& v) {
  try {
    size_t pos = 0;
    long long n = std::stoll(v, &pos);
    if (pos != v.size() || n < 0) throw std::invalid_argument(v);
    return static_cast<size_t>(n);
  } catch (const std::exception&) {
    throw std::invalid_argument("KEYSTEAD_" + name + " must be a non-negative integer, got '" + v +
                                "'");
  }
}

bool to_bool(const std::string& v) { return v == "1" || v == "true" || v == "yes" || v == "on"; }

// One table maps every setting name to its member, so env vars, CLI flags and the C ABI's JSON
// config all go through the same code.
struct Setting {
  const char* env;   // without the KEYSTEAD_ prefix
  const char* json;  // member name in JSON config
  void (*set)(Config&, const std::string&);
};

const Setting kSettings[] = {
    {"LISTEN", "listen", [](Config& c, const std::string& v) { c.listen = v; }},
    {"TLS_LISTEN", "tls_listen", [](Config& c, const std::string& v) { c.tls_listen = v; }},
    {"TLS_CERT", "tls_cert", [](Config& c, const std::string& v) { c.tls_cert = v; }},
    {"TLS_KEY", "tls_key", [](Config& c, const std::string& v) { c.tls_key = v; }},
    {"PUBLIC_URL", "public_url", [](Config& c, const std::string& v) { c.public_url = v; }},
    {"BASE_DOMAIN", "base_domain", [](Config& c, const std::string& v) { c.base_domain = v; }},
    {"DATA_DIR", "data_dir", [](Config& c, const std::string& v) { c.data_dir = v; }},
    {"MODE", "mode", [](Config& c, const std::string& v) { c.mode = v; }},
    {"CONTROL_PLANE_ID", "control_plane_id",
     [](Config& c, const std::string& v) { c.control_plane_id = v; }},
    {"TENANT_RESOLUTION", "resolution",
     [](Config& c, const std::string& v) { c.resolution = split_list(v); }},
    {"TENANT_HEADER", "tenant_header",
     [](Config& c, const std::string& v) { c.tenant_header = v; }},
    {"THREADS", "threads",
     [](Config& c, const std::string& v) { c.threads = static_cast<int>(to_size("THREADS", v)); }},
    {"MASTER_KEY", "master_key", [](Config& c, const std::string& v) { c.master_key = v; }},
    {"BOOTSTRAP_ADMIN_EMAIL", "bootstrap_admin_email",
     [](Config& c, const std::string& v) { c.bootstrap_admin_email = v; }},
    {"BOOTSTRAP_ADMIN_PASSWORD", "bootstrap_admin_password",
     [](Config& c, const std::string& v) { c.bootstrap_admin_password = v; }},
    {"BOOTSTRAP_CLIENT_ID", "bootstrap_client_id",
     [](Config& c, const std::string& v) { c.bootstrap_client_id = v; }},
    {"BOOTSTRAP_CLIENT_SECRET", "bootstrap_client_secret",
     [](Config& c, const std::string& v) { c.bootstrap_client_secret = v; }},
    {"CONTROL_PLANE_CLIENT_ID", "control_plane_client_id",
     [](Config& c, const std::string& v) { c.control_plane_client_id = v; }},
    {"RESERVED_IDS", "reserved_ids",
     [](Config& c, const std::string& v) {
       for (auto& id : split_list(v)) c.reserved_ids.push_back(id);
     }},
    {"MAX_BODY_BYTES", "max_body_bytes",
     [](Config& c, const std::string& v) { c.max_body_bytes = to_size("MAX_BODY_BYTES", v); }},
    {"MAX_HEADER_BYTES", "max_header_bytes",
     [](Config& c, const std::string& v) { c.max_header_bytes = to_size("MAX_HEADER_BYTES", v); }},
    {"HEADER_TIMEOUT_MS", "header_timeout_ms",
     [](Config& c, const std::string& v) {
       c.header_timeout_ms = static_cast<int>(to_size("HEADER_TIMEOUT_MS", v));
     }},
    {"IDLE_TIMEOUT_MS", "idle_timeout_ms",
     [](Config& c, const std::string& v) {
       c.idle_timeout_ms = static_cast<int>(to_size("IDLE_TIMEOUT_MS", v));
     }},
    {"TRUST_FORWARDED_HOST", "trust_forwarded_host",
     [](Config& c, const std::string& v) { c.trust_forwarded_host = to_bool(v); }},
    {"DATABASE", "database", [](Config& c, const std::string& v) { c.database = v; }},
    {"DEFAULT_ISOLATION", "default_isolation",
     [](Config& c, const std::string& v) { c.default_isolation = v; }},
    {"ACCESS_TOKEN_LIFETIME", "access_token_lifetime",
     [](Config& c, const std::string& v) {
       c.access_token_lifetime = static_cast<int>(to_size("ACCESS_TOKEN_LIFETIME", v));
     }},
    {"HOOK_MAX_INSTRUCTIONS", "hook_max_instructions",
     [](Config& c, const std::string& v) {
       c.hook_limits.max_instructions = to_size("HOOK_MAX_INSTRUCTIONS", v);
     }},
    {"HOOK_MAX_MEMORY_BYTES", "hook_max_memory_bytes",
     [](Config& c, const std::string& v) {
       c.hook_limits.max_memory_bytes = to_size("HOOK_MAX_MEMORY_BYTES", v);
     }},
    {"HOOK_TIMEOUT_MS", "hook_timeout_ms",
     [](Config& c, const std::string& v) {
       c.hook_limits.timeout_ms = static_cast<int64_t>(to_size("HOOK_TIMEOUT_MS", v));
     }},
};

}  // namespace

std::string Config::effective_public_url() const {
  std::string u = public_url.empty() ? "http://" + listen : public_url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  return u;
}

std::string Config::database_path() const {
  return database.empty() ? data_dir + "/keystead.db" : database;
}

Config Config::from_env() {
  Config c;
  for (const auto& s : kSettings) {
    std::string name = std::string("KEYSTEAD_") + s.env;
    if (const char* v = std::getenv(name.c_str())) s.set(c, v);
  }
  return c;
}

bool Config::apply(const std::string& env_name, const std::string& value) {
  for (const auto& s : kSettings) {
    if (env_name == s.env) {
      s.set(*this, value);
      return true;
    }
  }
  return false;
}

void Config::apply_json(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("config must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Setting* found = nullptr;
    for (const auto& s : kSettings)
      if (it.key() == s.json) found = &s;
    if (!found) throw std::invalid_argument("unknown config key '" + it.key() + "'");
    const Json& v = it.value();
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_number_integer() || v.is_number_unsigned()) {
      text = std::to_string(v.get<long long>());
    } else if (v.is_boolean()) {
      text = v.get<bool>() ? "true" : "false";
    } else if (v.is_array()) {
      for (const auto& e : v) {
        if (!e.is_string()) throw std::invalid_argument("config '" + it.key() + "': strings only");
        if (!text.empty()) text += ",";
        text += e.get<std::string>();
      }
      if (it.key() == std::string("resolution")) resolution.clear();
    } else {
      throw std::invalid_argument("config '" + it.key() + "' has an unsupported type");
    }
    found->set(*this, text);
  }
}

void Config::validate() const {
  static const std::regex kId("^[a-z0-9][a-z0-9_-]{0,62}$");
  if (mode != "dev" && mode != "prod")
    throw std::invalid_argument("KEYSTEAD_MODE must be 'dev' or 'prod', got '" + mode + "'");
  if (!std::regex_match(control_plane_id, kId))
    throw std::invalid_argument("KEYSTEAD_CONTROL_PLANE_ID '" + control_plane_id +
                                "' is not a valid tenant id");
  for (const auto& r : resolution) {
    if (r != "domain" && r != "subdomain" && r != "path" && r != "header")
      throw std::invalid_argument("KEYSTEAD_TENANT_RESOLUTION: unknown strategy '" + r + "'");
  }
  if (!master_key.empty()) {
    static const std::regex kHex("^[0-9a-fA-F]{64}$");
    if (!std::regex_match(master_key, kHex))
      throw std::invalid_argument("KEYSTEAD_MASTER_KEY must be 64 hex characters (32 bytes)");
  } else if (!dev()) {
    throw std::invalid_argument("KEYSTEAD_MASTER_KEY is required in prod mode");
  }
  if (!public_url.empty() && public_url.rfind("http://", 0) != 0 &&
      public_url.rfind("https://", 0) != 0)
    throw std::invalid_argument("KEYSTEAD_PUBLIC_URL must start with http:// or https://");
  if (bootstrap_client_id.empty() != bootstrap_client_secret.empty())
    throw std::invalid_argument(
        "KEYSTEAD_BOOTSTRAP_CLIENT_ID and KEYSTEAD_BOOTSTRAP_CLIENT_SECRET go together");
  if (bootstrap_admin_email.empty() != bootstrap_admin_password.empty())
    throw std::invalid_argument(
        "KEYSTEAD_BOOTSTRAP_ADMIN_EMAIL and KEYSTEAD_BOOTSTRAP_ADMIN_PASSWORD go together");
  if (max_body_bytes == 0) throw std::invalid_argument("KEYSTEAD_MAX_BODY_BYTES must be > 0");
  if (max_header_bytes < 1024)
    throw std::invalid_argument("KEYSTEAD_MAX_HEADER_BYTES must be at least 1024");
  if (header_timeout_ms <= 0 || idle_timeout_ms <= 0)
    throw std::invalid_argument(
        "KEYSTEAD_HEADER_TIMEOUT_MS and KEYSTEAD_IDLE_TIMEOUT_MS must be > 0");
}

}  // namespace ks
