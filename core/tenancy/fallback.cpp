#include "core/tenancy/fallback.h"

#include <algorithm>
#include <map>

#include "core/engine_impl.h"
#include "core/http/http.h"
#include "core/tenancy/tenants.h"

namespace ks::tenancy {
namespace {

// Members of a connection that describe the record itself, not its configuration: a child's
// record never takes them from the platform (enabled_clients and realms would name the control
// plane's clients and connection).
constexpr std::string_view kRecordOnlyConnectionKeys[] = {
    "id",         "name",       "enabled_clients", "realms",
    "created_at", "updated_at", "_secrets",        "_secret_layers"};

template <size_t N>
bool one_of(std::string_view key, const std::string_view (&set)[N]) {
  return std::find(std::begin(set), std::end(set), key) != std::end(set);
}

Json secret_layer(const SealedSecrets& s) { return {{"sealed", s.sealed}, {"aad", s.aad}}; }

SealedSecrets sealed_of(std::string_view tenant, const Json& con) {
  SealedSecrets s;
  if (auto it = con.find("_secrets"); it != con.end() && it->is_string())
    s.sealed = it->get<std::string>();
  s.aad = connection_aad(tenant, con.value("id", std::string()));
  return s;
}

Json without_secrets(const Json& con) {
  Json out = con;
  out.erase("_secrets");
  out.erase("_secret_layers");
  return out;
}

// A stored connection of `tenant` used as it is.
Json as_stored(std::string_view tenant, const Json& con) {
  const SealedSecrets s = sealed_of(tenant, con);
  Json out = without_secrets(con);
  out["_secret_layers"] = Json::array();
  if (!s.sealed.empty()) out["_secret_layers"].push_back(secret_layer(s));
  return out;
}

[[noreturn]] void invalid(const std::string& message) {
  throw http::HttpError{400, message, "invalid_body"};
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (true) {
    const size_t dot = path.find('.', i);
    parts.emplace_back(path.substr(i, dot == std::string_view::npos ? dot : dot - i));
    if (dot == std::string_view::npos) return parts;
    i = dot + 1;
  }
}

// Sets the member at a dotted path, creating (or replacing non-object) intermediates.
void set_at(Json& settings, std::string_view path, Json value) {
  Json* cur = &settings;
  const auto parts = split_path(path);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    Json& next = (*cur)[parts[i]];
    if (!next.is_object()) next = Json::object();
    cur = &next;
  }
  (*cur)[parts.back()] = std::move(value);
}

bool is_integer(const Json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

std::optional<int64_t> bound(const Json& c, const char* which) {
  auto it = c.find(which);
  if (it == c.end() || it->is_null()) return std::nullopt;
  return it->get<int64_t>();
}

const ConstrainedSetting* constrained(std::string_view path) {
  for (const auto& s : constrained_settings())
    if (s.path == path) return &s;
  return nullptr;
}

// The first connection of each strategy among `cons` (in creation order).
std::map<std::string, const store::Record*> firsts_by_strategy(
    const std::vector<store::Record>& cons) {
  std::map<std::string, const store::Record*> out;
  for (const auto& c : cons) out.emplace(c.data.value("strategy", ""), &c);
  return out;
}

std::optional<store::Record> first_of_strategy(store::Tx& tx, std::string_view strategy) {
  store::ListQuery q = store::ListQuery::first(1);
  q.field = "strategy";
  q.value = std::string(strategy);
  auto r = tx.list("connection", q);
  if (r.empty()) return std::nullopt;
  return std::move(r.front());
}

}  // namespace

// ---- merge rules --------------------------------------------------------------------------------

Json union_lists(const Json& first, const Json& second) {
  Json out = Json::array();
  for (const Json* list : {&first, &second}) {
    if (!list->is_array()) continue;
    for (const auto& item : *list)
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
  }
  return out;
}

Json merge_client(const Json& child, const Json& platform) {
  Json out = child;
  for (std::string_view key : kInheritedUrlLists) {
    const std::string k(key);
    const Json none = Json::array();
    out[k] =
        union_lists(platform.contains(k) ? platform[k] : none, child.contains(k) ? child[k] : none);
  }
  return out;
}

Json merge_options(const Json& child, const Json& platform) {
  if (!child.is_object() || !platform.is_object()) return child;
  Json out = platform;
  for (auto it = child.begin(); it != child.end(); ++it) {
    auto p = out.find(it.key());
    if (p != out.end() && p->is_object() && it->is_object())
      *p = merge_options(*it, *p);
    else
      out[it.key()] = *it;
  }
  return out;
}

std::string connection_aad(std::string_view tenant, std::string_view connection_id) {
  return std::string(tenant) + "\n" + std::string(connection_id);
}

Json merge_connection(const Json& child, const SealedSecrets& child_secrets, const Json& platform,
                      const SealedSecrets& platform_secrets) {
  Json out = without_secrets(child);
  for (auto it = platform.begin(); it != platform.end(); ++it)
    if (!out.contains(it.key()) && !one_of(it.key(), kRecordOnlyConnectionKeys))
      out[it.key()] = *it;
  if (child.contains("options") && platform.contains("options"))
    out["options"] = merge_options(child["options"], platform["options"]);
  out["_secret_layers"] = Json::array();
  for (const SealedSecrets* s : {&child_secrets, &platform_secrets})
    if (!s->sealed.empty()) out["_secret_layers"].push_back(secret_layer(*s));
  return out;
}

Json inherited_connection(const Json& platform, const SealedSecrets& platform_secrets) {
  Json out = without_secrets(platform);
  out["enabled_clients"] = Json::array();
  out["_secret_layers"] = Json::array();
  if (!platform_secrets.sealed.empty())
    out["_secret_layers"].push_back(secret_layer(platform_secrets));
  return out;
}

bool inheritable_as_a_whole(std::string_view strategy) {
  return strategy != "auth0" && strategy != "email" && strategy != "sms";
}

Json merge_settings(const Json& child, const Json& platform) {
  Json inherited = platform.is_object() ? platform : Json::object();
  for (std::string_view k : kPlatformOnlySettings) inherited.erase(std::string(k));
  Json out = merge_options(child.is_object() ? child : Json::object(), inherited);
  for (std::string_view k : kPlatformOnlySettings) out.erase(std::string(k));
  return out;
}

// ---- floors and ceilings ----------------------------------------------------------------------

const std::vector<ConstrainedSetting>& constrained_settings() {
  static const std::vector<ConstrainedSetting> kTable = {
      {"password_min_length", 1, 128, 0},
      {"access_token_lifetime", 1, 31536000, std::nullopt},
      {"refresh_token_lifetime", 1, 31536000 * 5LL, std::nullopt},
      {"brute_force_protection.max_attempts", 1, 1000, 10},
  };
  return kTable;
}

const Json* setting_at(const Json& settings, std::string_view path) {
  const Json* cur = &settings;
  for (const auto& part : split_path(path)) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::optional<int64_t> integer_setting(const Json& settings, std::string_view path) {
  const Json* v = setting_at(settings, path);
  if (!v || !is_integer(*v)) return std::nullopt;
  return v->get<int64_t>();
}

void validate_constraints(const Json& constraints) {
  if (constraints.is_null()) return;
  if (!constraints.is_object()) invalid("settings.constraints must be an object");
  for (auto it = constraints.begin(); it != constraints.end(); ++it) {
    const ConstrainedSetting* s = constrained(it.key());
    if (!s) {
      std::string known;
      for (const auto& c : constrained_settings())
        known += (known.empty() ? "" : ", ") + std::string(c.path);
      invalid("settings.constraints: '" + it.key() +
              "' cannot be constrained (constrainable: " + known + ")");
    }
    if (it->is_null()) continue;  // merge-patch removal
    if (!it->is_object())
      invalid("settings.constraints." + it.key() + " must be an object with min and/or max");
    for (auto b = it->begin(); b != it->end(); ++b) {
      if (b.key() != "min" && b.key() != "max")
        invalid("settings.constraints." + it.key() + ": unknown bound '" + b.key() +
                "' (use min and max)");
      if (b->is_null()) continue;
      if (!is_integer(*b) || b->get<int64_t>() < s->lowest || b->get<int64_t>() > s->highest)
        invalid("settings.constraints." + it.key() + "." + b.key() + " must be an integer from " +
                std::to_string(s->lowest) + " to " + std::to_string(s->highest));
    }
    auto lo = bound(*it, "min"), hi = bound(*it, "max");
    if (lo && hi && *lo > *hi)
      invalid("settings.constraints." + it.key() + ": min is greater than max");
  }
}

void check_against_constraints(const Json& patch, const Json& constraints) {
  for (const auto& s : constrained_settings()) {
    // An intermediate that is neither an object nor a removal would hide the setting.
    const auto parts = split_path(s.path);
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += (prefix.empty() ? "" : ".") + parts[i];
      const Json* mid = setting_at(patch, prefix);
      if (mid && !mid->is_null() && !mid->is_object())
        invalid("settings." + prefix + " must be an object");
    }
    const Json* v = setting_at(patch, s.path);
    if (!v || v->is_null()) continue;
    const std::string name(s.path);
    if (!is_integer(*v) || v->get<int64_t>() < s.lowest || v->get<int64_t>() > s.highest)
      invalid("settings." + name + " must be an integer from " + std::to_string(s.lowest) + " to " +
              std::to_string(s.highest));
    auto it = constraints.is_object() ? constraints.find(name) : constraints.end();
    if (!constraints.is_object() || it == constraints.end() || !it->is_object()) continue;
    const int64_t value = v->get<int64_t>();
    if (auto lo = bound(*it, "min"); lo && value < *lo)
      throw http::HttpError{422,
                            "The setting " + name + " (" + std::to_string(value) +
                                ") is below the platform minimum of " + std::to_string(*lo),
                            "constraint-violation"};
    if (auto hi = bound(*it, "max"); hi && value > *hi)
      throw http::HttpError{422,
                            "The setting " + name + " (" + std::to_string(value) +
                                ") exceeds the platform maximum of " + std::to_string(*hi),
                            "constraint-violation"};
  }
}

Json clamp_settings(Json settings, const Json& constraints) {
  if (!settings.is_object()) settings = Json::object();
  if (!constraints.is_object()) return settings;
  for (const auto& s : constrained_settings()) {
    auto it = constraints.find(std::string(s.path));
    if (it == constraints.end() || !it->is_object()) continue;
    const auto lo = bound(*it, "min"), hi = bound(*it, "max");
    std::optional<int64_t> value = integer_setting(settings, s.path);
    if (!value) value = s.when_absent;
    std::optional<int64_t> clamped = value;
    if (!clamped) {
      clamped = hi;  // unbounded: a ceiling bounds it
    } else {
      if (lo && *clamped < *lo) clamped = lo;
      if (hi && *clamped > *hi) clamped = hi;
    }
    if (clamped && clamped != value) set_at(settings, s.path, *clamped);
  }
  return settings;
}

Json effective_settings_of(const Json& own, const Json& platform, bool is_control_plane) {
  const Json& platform_settings = is_control_plane ? own : platform;
  const Json constraints = platform_settings.is_object()
                               ? platform_settings.value("constraints", Json::object())
                               : Json::object();
  Json merged =
      is_control_plane ? merge_settings(own, Json::object()) : merge_settings(own, platform);
  return clamp_settings(std::move(merged), constraints);
}

// ---- lookups ------------------------------------------------------------------------------------

void check_settings_constraints(store::Tx& cp, std::string_view control_plane_id,
                                std::string_view tenant, const Json& settings_patch) {
  if (!settings_patch.is_object()) return;
  const bool on_control_plane = tenant == control_plane_id;
  if (settings_patch.contains("constraints")) {
    if (!on_control_plane)
      throw http::HttpError{403, "Only the control plane may set constraints",
                            "operation_not_supported"};
    validate_constraints(settings_patch["constraints"]);
  }
  Json platform = Json::object();
  if (auto r = cp.get(kTenantKind, control_plane_id))
    platform = r->data.value("settings", Json::object());
  if (!platform.is_object()) platform = Json::object();
  if (on_control_plane) platform.merge_patch(settings_patch);
  check_against_constraints(settings_patch, platform.value("constraints", Json::object()));
}

namespace {

// The tx must be the state's tenant's: its own records are read through it.
void check_same_tenant(const TenantState& state, const store::Tx& tx) {
  if (tx.tenant() != state.id)
    throw std::logic_error("tenancy: a lookup for " + state.id + " in a Tx of " + tx.tenant());
}

}  // namespace

std::optional<Json> effective_client(const TenantState& state, store::Tx& tx,
                                     std::string_view client_id) {
  check_same_tenant(state, tx);
  auto r = tx.get("client", client_id);
  if (!r) return std::nullopt;
  if (state.control_plane || !state.platform->client) return std::move(r->data);
  return merge_client(r->data, *state.platform->client);
}

std::optional<Json> effective_connection(const TenantState& state, store::Tx& tx,
                                         std::string_view name) {
  check_same_tenant(state, tx);
  if (name.empty()) return std::nullopt;
  auto own = tx.find("connection", name);
  if (state.control_plane) {
    if (!own) return std::nullopt;
    return as_stored(tx.tenant(), own->data);
  }
  const PlatformState& platform = *state.platform;
  const std::string& cp_id = platform.tenant;
  if (own) {
    const store::Record* first = platform.first_of_strategy(own->data.value("strategy", ""));
    if (!first) return as_stored(tx.tenant(), own->data);
    return merge_connection(own->data, sealed_of(tx.tenant(), own->data), first->data,
                            sealed_of(cp_id, first->data));
  }
  const store::Record* inherited = platform.connection(name);
  if (!inherited) return std::nullopt;
  const std::string strategy = inherited->data.value("strategy", "");
  if (!inheritable_as_a_whole(strategy)) return std::nullopt;
  if (platform.first_of_strategy(strategy) != inherited) return std::nullopt;
  if (first_of_strategy(tx, strategy)) return std::nullopt;  // the child's own replaces it
  return inherited_connection(inherited->data, sealed_of(cp_id, inherited->data));
}

std::vector<Json> effective_connections(const TenantState& state, store::Tx& tx) {
  check_same_tenant(state, tx);
  std::vector<Json> out;
  const auto own = tx.list("connection", store::ListQuery::first(PlatformState::kMaxConnections));
  if (state.control_plane) {
    for (const auto& c : own) out.push_back(as_stored(tx.tenant(), c.data));
    return out;
  }
  const PlatformState& platform = *state.platform;
  const std::string& cp_id = platform.tenant;
  const auto own_firsts = firsts_by_strategy(own);
  for (const auto& c : own) {
    const store::Record* first = platform.first_of_strategy(c.data.value("strategy", ""));
    if (!first)
      out.push_back(as_stored(tx.tenant(), c.data));
    else
      out.push_back(merge_connection(c.data, sealed_of(tx.tenant(), c.data), first->data,
                                     sealed_of(cp_id, first->data)));
  }
  for (const auto& p : platform.connections) {
    const std::string strategy = p.data.value("strategy", "");
    if (platform.first_of_strategy(strategy) != &p || own_firsts.count(strategy) ||
        !inheritable_as_a_whole(strategy))
      continue;
    out.push_back(inherited_connection(p.data, sealed_of(cp_id, p.data)));
  }
  return out;
}

Json open_connection_secrets(const EngineImpl& e, std::string_view tenant, const Json& connection) {
  Json layers = Json::array();
  if (auto it = connection.find("_secret_layers"); it != connection.end() && it->is_array())
    layers = *it;
  else if (auto s = sealed_of(tenant, connection); !s.sealed.empty())
    layers.push_back(secret_layer(s));
  Json out = Json::object();
  for (const auto& layer : layers) {
    if (!layer.is_object()) continue;
    auto opened = e.open(layer.value("sealed", ""), layer.value("aad", ""));
    if (!opened) continue;
    Json secrets = Json::parse(*opened, nullptr, false);
    if (!secrets.is_object()) continue;
    for (auto it = secrets.begin(); it != secrets.end(); ++it)
      if (!out.contains(it.key())) out[it.key()] = *it;
  }
  return out;
}

}  // namespace ks::tenancy
