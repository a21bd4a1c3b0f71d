// /api/v2/roles, /roles/{id}/permissions, /roles/{id}/users. Roles synced from the control plane
// are system resources on a child: they can be assigned, not changed. Writes on the control plane
// fan out to every child tenant in the same transaction (core/tenancy/sync.h).
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"
#include "core/tenancy/sync.h"

namespace ks::mgmt {
namespace {

using model::Type;

// `metadata` is a Keystead extension (metadata.sync / metadata.internal steer entity sync).
const model::Schema kCreate = {
    {"name", Type::String, true, 50},
    {"description", Type::String, false, 140},
    {"metadata", Type::Object},
};
const model::Schema kUpdate = {
    {"name", Type::String, false, 50},
    {"description", Type::String, false, 140},
    {"metadata", Type::Object},
};

Json role_view(const Json& d) { return public_view(d); }

void no_is_system(const Json& body) {
  if (body.is_object() && body.contains("is_system"))
    model::invalid_body("Payload validation error: 'is_system' cannot be set.");
}

// The role, or 404; 403 when it is a system resource (a copy synced from the control plane).
store::Record must_get_modifiable(store::Tx& tx, std::string_view id) {
  auto rec = must_get(tx, "role", id);
  if (rec.data.value("is_system", false)) tenancy::forbid_system_change("role");
  return rec;
}

// On the control plane, copies the change to every child tenant (inside the write's tx).
void sync(Ctx& ctx, store::Tx& tx, std::string_view id) {
  if (ctx.tenant == ctx.e.cfg().control_plane_id) ctx.e.sync().role_changed(tx, id);
}

http::Response create_role(Ctx& ctx) {
  authorize(ctx, "create:roles");
  Json body = ctx.json_body();
  no_is_system(body);
  kCreate.check(body);
  const std::string name = body["name"].get<std::string>();
  if (name.empty()) model::invalid_body("Payload validation error: 'name' must not be empty.");
  const std::string id = model::new_prefixed_id("rol", ctx.e.rng());
  Json role = {{"id", id},
               {"name", name},
               {"description", body.value("description", "")},
               {"metadata", body.value("metadata", Json::object())},
               {"is_system", false}};
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    try {
      tx.insert("role", id, role, name);
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "Role name already exists", "conflict"};
    }
    sync(ctx, tx, id);
  });
  return http::Response::json(201, role_view(role));
}

http::Response get_role(Ctx& ctx) {
  authorize(ctx, "read:roles");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    out = role_view(must_get(tx, "role", ctx.param("id")).data);
  });
  return http::Response::json(200, out);
}

http::Response list_roles(Ctx& ctx) {
  authorize(ctx, "read:roles");
  store::ListQuery filter;
  if (auto n = ctx.query.get("name_filter")) {
    filter.field = "name";
    filter.value = *n;
  }
  return list_records(ctx, "role", "roles", role_view, filter);
}

http::Response update_role(Ctx& ctx) {
  authorize(ctx, "update:roles");
  Json body = ctx.json_body();
  no_is_system(body);
  kUpdate.check(body, true);
  if (body.contains("name") && body["name"].get<std::string>().empty())
    model::invalid_body("Payload validation error: 'name' must not be empty.");
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    Json role = must_get_modifiable(tx, ctx.param("id")).data;
    for (const char* k : {"name", "description", "metadata"})
      if (body.contains(k)) role[k] = body[k];
    try {
      tx.update("role", ctx.param("id"), role, role["name"].get<std::string>());
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "Role name already exists", "conflict"};
    }
    sync(ctx, tx, ctx.param("id"));
    out = role_view(role);
  });
  return http::Response::json(200, out);
}

http::Response delete_role(Ctx& ctx) {
  authorize(ctx, "delete:roles");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get_modifiable(tx, ctx.param("id"));
    tx.unlink_from("role_permission", ctx.param("id"));
    tx.unlink_to("user_role", ctx.param("id"));
    tx.unlink_to("org_member_role", ctx.param("id"));
    tx.remove("role", ctx.param("id"));
    sync(ctx, tx, ctx.param("id"));
  });
  return http::Response::empty(204);
}

http::Response role_permissions(Ctx& ctx) {
  authorize(ctx, "read:roles");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { must_get(tx, "role", ctx.param("id")); });
  return list_links(ctx, "role_permission", ctx.param("id"), "permissions",
                    [](store::Tx& tx, const store::Link& l) -> std::optional<Json> {
                      return permission_view(tx, l.to);
                    });
}

http::Response change_role_permissions(Ctx& ctx, bool add) {
  authorize(ctx, "update:roles");
  Json body = ctx.json_body();
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get_modifiable(tx, ctx.param("id"));
    for (const auto& key : permission_keys(tx, body)) {
      if (add)
        tx.link("role_permission", ctx.param("id"), key);
      else
        tx.unlink("role_permission", ctx.param("id"), key);
    }
    sync(ctx, tx, ctx.param("id"));
  });
  return http::Response::empty(204);
}

http::Response role_users(Ctx& ctx) {
  authorize(ctx, "read:role_members");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { must_get(tx, "role", ctx.param("id")); });
  return list_links(
      ctx, "user_role", ctx.param("id"), "users",
      [](store::Tx& tx, const store::Link& l) -> std::optional<Json> {
        auto u = tx.get("user", l.from);
        if (!u) return std::nullopt;
        return Json{{"user_id", u->id},
                    {"email", u->data.value("email", "")},
                    {"name", u->data.value("name", "")},
                    {"picture", u->data.value("picture", "")}};
      },
      true);
}

http::Response add_role_users(Ctx& ctx) {
  authorize(ctx, "create:role_members");
  auto users = id_list(ctx.json_body(), "users");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "role", ctx.param("id"));
    for (const auto& u : users) {
      must_get(tx, "user", u);
      tx.link("user_role", u, ctx.param("id"));
    }
  });
  return http::Response::empty(204);
}

}  // namespace

void register_role_routes(Routes& r) {
  r.add("GET", "/api/v2/roles", list_roles);
  r.add("POST", "/api/v2/roles", create_role);
  r.add("GET", "/api/v2/roles/:id", get_role);
  r.add("PATCH", "/api/v2/roles/:id", update_role);
  r.add("DELETE", "/api/v2/roles/:id", delete_role);
  r.add("GET", "/api/v2/roles/:id/permissions", role_permissions);
  r.add("POST", "/api/v2/roles/:id/permissions",
        [](Ctx& c) { return change_role_permissions(c, true); });
  r.add("DELETE", "/api/v2/roles/:id/permissions",
        [](Ctx& c) { return change_role_permissions(c, false); });
  r.add("GET", "/api/v2/roles/:id/users", role_users);
  r.add("POST", "/api/v2/roles/:id/users", add_role_users);
}

}  // namespace ks::mgmt
