// /api/v2/organizations, members and member roles.
#include <regex>

#include "core/mgmt/common.h"
#include "core/model/ids.h"
#include "core/model/schema.h"

namespace ks::mgmt {
namespace {

using model::Type;

const model::Schema kCreate = {
    {"name", Type::String, true, 50},
    {"display_name", Type::String, false, 255},
    {"branding", Type::Object},
    {"metadata", Type::Object},
};
const model::Schema kUpdate = {
    {"name", Type::String, false, 50},
    {"display_name", Type::String, false, 255},
    {"branding", Type::Object},
    {"metadata", Type::Object},
};

void check(const Json& body) {
  static const std::regex kName("^[a-z0-9_-]+$");
  if (body.contains("name") && !std::regex_match(body["name"].get<std::string>(), kName))
    model::invalid_body(
        "Payload validation error: 'String does not match pattern ^[a-z0-9_-]+$' "
        "on property name.");
  if (body.contains("metadata")) {
    if (body["metadata"].size() > 25)
      model::invalid_body("Payload validation error: 'metadata' has more than 25 properties.");
    for (auto it = body["metadata"].begin(); it != body["metadata"].end(); ++it)
      if (!it->is_string() && !it->is_null())
        model::invalid_body("Payload validation error: 'metadata' values must be strings.");
  }
}

store::Record find_org(store::Tx& tx, const std::string& id) {
  auto r = tx.get("organization", id);
  if (!r) not_found("organization");
  return std::move(*r);
}

std::string member_key(const std::string& org, const std::string& user) {
  return org + "\n" + user;
}

http::Response create_org(Ctx& ctx) {
  authorize(ctx, "create:organizations");
  Json body = ctx.json_body();
  kCreate.check(body);
  check(body);
  const std::string id = model::new_prefixed_id("org", ctx.e.rng());
  const std::string name = body["name"].get<std::string>();
  Json org = {{"id", id}, {"name", name}, {"display_name", body.value("display_name", name)}};
  if (body.contains("branding")) org["branding"] = body["branding"];
  Json meta = body.value("metadata", Json::object());
  for (auto it = meta.begin(); it != meta.end();)
    it = it->is_null() ? meta.erase(it) : std::next(it);
  org["metadata"] = meta;
  org["created_at"] = now_iso(ctx);
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    try {
      tx.insert("organization", id, org, name);
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "An organization with this name already exists.", "conflict"};
    }
  });
  return http::Response::json(201, public_view(org));
}

http::Response list_orgs(Ctx& ctx) {
  authorize(ctx, "read:organizations");
  return list_records(ctx, "organization", "organizations", public_view);
}

http::Response get_org(Ctx& ctx) {
  authorize(ctx, "read:organizations");
  Json out;
  ctx.e.store().read(ctx.tenant,
                     [&](store::Tx& tx) { out = public_view(find_org(tx, ctx.param("id")).data); });
  return http::Response::json(200, out);
}

http::Response get_org_by_name(Ctx& ctx) {
  authorize(ctx, "read:organizations");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.find("organization", ctx.param("name"));
    if (!r) not_found("organization");
    out = public_view(r->data);
  });
  return http::Response::json(200, out);
}

http::Response update_org(Ctx& ctx) {
  authorize(ctx, "update:organizations");
  Json body = ctx.json_body();
  kUpdate.check(body, true);
  check(body);
  Json out;
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto rec = find_org(tx, ctx.param("id"));
    Json org = rec.data;
    if (org["metadata"].contains("tenant_id") &&
        ((body.contains("name") && body["name"] != org["name"]) ||
         (body.contains("metadata") && body["metadata"].contains("tenant_id") &&
          body["metadata"]["tenant_id"] != org["metadata"]["tenant_id"])))
      forbidden(
          "The organization of a tenant keeps its name and tenant_id; they change with the "
          "tenant.",
          "operation_not_supported");
    for (const char* k : {"name", "display_name", "branding"})
      if (body.contains(k)) org[k] = body[k];
    if (body.contains("metadata")) org["metadata"].merge_patch(body["metadata"]);
    try {
      tx.update("organization", rec.id, org, org["name"].get<std::string>());
    } catch (const store::Conflict&) {
      throw http::HttpError{409, "An organization with this name already exists.", "conflict"};
    }
    out = public_view(org);
  });
  return http::Response::json(200, out);
}

http::Response delete_org(Ctx& ctx) {
  authorize(ctx, "delete:organizations");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto rec = find_org(tx, ctx.param("id"));
    if (rec.data["metadata"].contains("tenant_id"))
      forbidden("This organization stands for tenant '" +
                    rec.data["metadata"]["tenant_id"].get<std::string>() +
                    "'; delete the tenant instead.",
                "operation_not_supported");
    purge_organization(tx, rec.id);
  });
  return http::Response::empty(204);
}

http::Response list_members(Ctx& ctx) {
  authorize(ctx, "read:organization_members");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { find_org(tx, ctx.param("id")); });
  const std::string org = ctx.param("id");
  return list_links(
      ctx, "org_member", org, "members",
      [&](store::Tx& tx, const store::Link& l) -> std::optional<Json> {
        auto u = tx.get("user", l.to);
        if (!u) return std::nullopt;
        Json roles = Json::array();
        for (const auto& rl :
             tx.links_from("org_member_role", member_key(org, l.to), store::ListQuery::first(1000)))
          if (auto role = tx.get("role", rl.to))
            roles.push_back({{"id", role->id}, {"name", role->data.value("name", "")}});
        return Json{{"user_id", u->id},
                    {"email", u->data.value("email", "")},
                    {"name", u->data.value("name", "")},
                    {"picture", u->data.value("picture", "")},
                    {"roles", roles}};
      });
}

http::Response change_members(Ctx& ctx, bool add) {
  authorize(ctx, add ? "create:organization_members" : "delete:organization_members");
  auto members = id_list(ctx.json_body(), "members");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    auto org = find_org(tx, ctx.param("id"));
    for (const auto& u : members) {
      if (add) {
        must_get(tx, "user", u);
        tx.link("org_member", org.id, u);
      } else {
        tx.unlink("org_member", org.id, u);
        tx.unlink_from("org_member_role", member_key(org.id, u));
      }
    }
  });
  return http::Response::empty(204);
}

void require_member(store::Tx& tx, const std::string& org, const std::string& user) {
  find_org(tx, org);
  if (!tx.linked("org_member", org, user))
    throw http::HttpError{404, "The user is not a member of the organization", "inexistent_member"};
}

http::Response member_roles(Ctx& ctx) {
  authorize(ctx, "read:organization_member_roles");
  const std::string org = ctx.param("id"), user = ctx.param("user_id");
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) { require_member(tx, org, user); });
  return list_links(ctx, "org_member_role", member_key(org, user), "roles",
                    [](store::Tx& tx, const store::Link& l) -> std::optional<Json> {
                      auto r = tx.get("role", l.to);
                      if (!r) return std::nullopt;
                      return Json{{"id", r->id},
                                  {"name", r->data.value("name", "")},
                                  {"description", r->data.value("description", "")}};
                    });
}

http::Response change_member_roles(Ctx& ctx, bool add) {
  authorize(ctx, add ? "create:organization_member_roles" : "delete:organization_member_roles");
  auto roles = id_list(ctx.json_body(), "roles");
  const std::string org = ctx.param("id"), user = ctx.param("user_id");
  ctx.e.store().write(ctx.tenant, [&](store::Tx& tx) {
    require_member(tx, org, user);
    for (const auto& r : roles) {
      must_get(tx, "role", r);
      if (add)
        tx.link("org_member_role", member_key(org, user), r);
      else
        tx.unlink("org_member_role", member_key(org, user), r);
    }
  });
  return http::Response::empty(204);
}

}  // namespace

void register_organization_routes(Routes& r) {
  r.add("GET", "/api/v2/organizations", list_orgs);
  r.add("POST", "/api/v2/organizations", create_org);
  r.add("GET", "/api/v2/organizations/name/:name", get_org_by_name);
  r.add("GET", "/api/v2/organizations/:id", get_org);
  r.add("PATCH", "/api/v2/organizations/:id", update_org);
  r.add("DELETE", "/api/v2/organizations/:id", delete_org);
  r.add("GET", "/api/v2/organizations/:id/members", list_members);
  r.add("POST", "/api/v2/organizations/:id/members",
        [](Ctx& c) { return change_members(c, true); });
  r.add("DELETE", "/api/v2/organizations/:id/members",
        [](Ctx& c) { return change_members(c, false); });
  r.add("GET", "/api/v2/organizations/:id/members/:user_id/roles", member_roles);
  r.add("POST", "/api/v2/organizations/:id/members/:user_id/roles",
        [](Ctx& c) { return change_member_roles(c, true); });
  r.add("DELETE", "/api/v2/organizations/:id/members/:user_id/roles",
        [](Ctx& c) { return change_member_roles(c, false); });
}

}  // namespace ks::mgmt
