// /api/v2/hooks: a tenant's Lua hooks (DESIGN.md "Hooks in Lua", docs/hooks.md). Code is compiled
// on every save, so a stored hook always compiles; a syntax error is a 400 with Lua's message and
// line. Hook records are state (store.h kStateKinds): the flows read them from the tenant's cached
// state, never per request.
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/tenancy/state.h"

namespace ks::mgmt {
namespace {

using model::Type;

constexpr size_t kMaxCodeBytes = 100 * 1024;
constexpr int64_t kMaxPriority = 1'000'000;

const model::Schema kCreate = {
    {"name", Type::String, false, 128}, {"trigger_id", Type::String, true},
    {"code", Type::String, true},       {"enabled", Type::Boolean},
    {"priority", Type::Integer},        {"metadata", Type::Object},
};
const model::Schema kUpdate = {
    {"name", Type::String, false, 128}, {"trigger_id", Type::String}, {"code", Type::String},
    {"enabled", Type::Boolean},         {"priority", Type::Integer},  {"metadata", Type::Object},
};

hooks::HookRunner& runner(Ctx& ctx) {
  if (auto* r = ctx.e.hook_runner()) return *r;
  throw http::HttpError{501,
                        "Hooks are not available: this engine was opened without a hook runtime",
                        "not_implemented"};
}

hooks::Trigger trigger_of(const Json& body, bool control_plane) {
  const std::string name = body["trigger_id"].get<std::string>();
  auto t = hooks::trigger_from_name(name);
  if (!t) {
    std::string names;
    for (auto k : hooks::kTriggers)
      names += (names.empty() ? "" : ", ") + std::string(hooks::trigger_name(k));
    model::invalid_body("Payload validation error: 'trigger_id' must be one of " + names + ".");
  }
  if (*t == hooks::Trigger::kSyncFilter && !control_plane)
    model::invalid_body(
        "Payload validation error: sync-filter hooks run on the control plane only.");
  return *t;
}

// Everything but the trigger: code compiles, priority in range, metadata.inheritable a boolean
// and only on the control plane.
void check_members(Ctx& ctx, const Json& body, bool control_plane) {
  if (body.contains("code")) {
    const auto& code = body["code"].get_ref<const std::string&>();
    if (code.size() > kMaxCodeBytes)
      model::invalid_body("Payload validation error: 'code' is longer than 102400 bytes.");
    if (auto err = runner(ctx).compile_error(code))
      throw http::HttpError{400, "Hook code does not compile: " + *err, "invalid_body"};
  }
  if (body.contains("priority")) {
    const int64_t p = body["priority"].get<int64_t>();
    if (p < -kMaxPriority || p > kMaxPriority)
      model::invalid_body(
          "Payload validation error: 'priority' must be between -1000000 and 1000000.");
  }
  if (body.contains("metadata") && body["metadata"].contains("inheritable")) {
    const Json& inh = body["metadata"]["inheritable"];
    if (!inh.is_boolean())
      model::invalid_body("Payload validation error: 'metadata.inheritable' must be a boolean.");
    if (inh.get<bool>() && !control_plane)
      model::invalid_body("Payload validation error: only control-plane hooks can be inheritable.");
  }
}

bool on_control_plane(const Ctx& ctx) { return ctx.tenant == ctx.e.cfg().control_plane_id; }

http::Response create_hook(Ctx& ctx) {
  authorize(ctx, "create:hooks");
  runner(ctx);
  Json body = ctx.json_body();
  kCreate.check(body);
  const bool cp = on_control_plane(ctx);
  const hooks::Trigger trigger = trigger_of(body, cp);
  check_members(ctx, body, cp);
  const std::string id = model::new_prefixed_id("hk", ctx.e.rng());
  const std::string now = now_iso(ctx);
  Json hook = {{"id", id},
               {"name", body.value("name", std::string(hooks::trigger_name(trigger)))},
               {"trigger_id", std::string(hooks::trigger_name(trigger))},
               {"code", body["code"]},
               {"enabled", body.value("enabled", true)},
               {"priority", body.value("priority", int64_t{0})},
               {"metadata", body.value("metadata", Json::object())},
               {"created_at", now},
               {"updated_at", now}};
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    if (tx.count("hook", {}) >= tenancy::kMaxHooks)
      throw http::HttpError{400,
                            "A tenant has at most " + std::to_string(tenancy::kMaxHooks) + " hooks",
                            "too_many_entities"};
    tx.insert("hook", id, hook);
  });
  return http::Response::json(201, hook);
}

http::Response get_hook(Ctx& ctx) {
  authorize(ctx, "read:hooks");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    out = public_view(must_get(tx, "hook", ctx.param("id")).data);
  });
  return http::Response::json(200, out);
}

http::Response list_hooks(Ctx& ctx) {
  authorize(ctx, "read:hooks");
  store::ListQuery filter;
  auto trigger = ctx.query.get("trigger_id");
  if (!trigger) trigger = ctx.query.get("triggerId");  // Auth0's spelling
  if (trigger) {
    if (!hooks::trigger_from_name(*trigger))
      throw http::HttpError{400, "Unknown trigger: " + std::string(*trigger),
                            "invalid_query_string"};
    filter.field = "trigger_id";
    filter.value = *trigger;
  }
  return list_records(ctx, "hook", "hooks", public_view, filter);
}

http::Response update_hook(Ctx& ctx) {
  authorize(ctx, "update:hooks");
  runner(ctx);
  Json body = ctx.json_body();
  kUpdate.check(body, true);
  const bool cp = on_control_plane(ctx);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    Json hook = must_get(tx, "hook", ctx.param("id")).data;
    if (body.contains("trigger_id") && body["trigger_id"] != hook["trigger_id"])
      model::invalid_body("Payload validation error: 'trigger_id' cannot be changed.");
    check_members(ctx, body, cp);
    for (const char* k : {"name", "code", "enabled", "priority", "metadata"})
      if (body.contains(k)) hook[k] = body[k];
    hook["updated_at"] = now_iso(ctx);
    tx.update("hook", ctx.param("id"), hook);
    out = public_view(hook);
  });
  return http::Response::json(200, out);
}

http::Response delete_hook(Ctx& ctx) {
  authorize(ctx, "delete:hooks");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "hook", ctx.param("id"));
    tx.remove("hook", ctx.param("id"));
  });
  return http::Response::empty(204);
}

}  // namespace

void register_hook_routes(Routes& r) {
  r.add("GET", "/api/v2/hooks", list_hooks);
  r.add("POST", "/api/v2/hooks", create_hook);
  r.add("GET", "/api/v2/hooks/:id", get_hook);
  r.add("PATCH", "/api/v2/hooks/:id", update_hook);
  r.add("DELETE", "/api/v2/hooks/:id", delete_hook);
}

}  // namespace ks::mgmt
