// /api/v2/roles, /roles/{id}/permissions, /roles/{id}/users.
#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"

namespace ks::mgmt {
namespace {

using model::Type;

const model::Schema kCreate = {
    {"name", Type::String, true, 50},
    {"description", Type::String, false, 140},
};
const model::Schema kUpdate = {
    {"name", Type::String, false, 50},
    {"description", Type::String, false, 140},
};

Json role_view(const Json& d) { return public_view(d); }

http::Response create_role(Ctx& ctx) {
  authorize(ctx, "create:roles");
  Json body = ctx.json_body();
  kCreate.check(body);
  const std::string name = body["name"].get<std::string>();
  if (name.empty()) model::invalid_body("Payload validation error: 'name' must not be empty.");
  const std::string id = model::new_prefixed_id("rol", ctx.e.rng());
  Json role = {{"id", id}, {"name", name}, {"description", body.value("description", "")}};
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    try {
      tx.insert("role", id, role, name);
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "Role name already exists", "conflict"};
    }
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
  kUpdate.check(body, true);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    Json role = must_get(tx, "role", ctx.param("id")).data;
    if (body.contains("name")) role["name"] = body["name"];
    if (body.contains("description")) role["description"] = body["description"];
    try {
      tx.update("role", ctx.param("id"), role, role["name"].get<std::string>());
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "Role name already exists", "conflict"};
    }
    out = role_view(role);
  });
  return http::Response::json(200, out);
}

http::Response delete_role(Ctx& ctx) {
  authorize(ctx, "delete:roles");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    must_get(tx, "role", ctx.param("id"));
    tx.unlink_from("role_permission", ctx.param("id"));
    tx.unlink_to("user_role", ctx.param("id"));
    tx.unlink_to("org_member_role", ctx.param("id"));
    tx.remove("role", ctx.param("id"));
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
    must_get(tx, "role", ctx.param("id"));
    for (const auto& key : permission_keys(tx, body)) {
      if (add)
        tx.link("role_permission", ctx.param("id"), key);
      else
        tx.unlink("role_permission", ctx.param("id"), key);
    }
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
