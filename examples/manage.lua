-- The management steps of a customer portal, from Lua, without HTTP: a customer tenant, its
-- organization on the control plane with a portal admin as "Tenant Admin", a user inside the
-- tenant, an API with a machine client, and a client_credentials token checked by the engine.
-- Safe to run again on the same data directory: what exists already is found, not recreated.
--
--   LUA_CPATH="build/bindings/lua/?.so;;" lua5.4 examples/manage.lua ./data
local keystead = require "keystead"

local data_dir = arg[1] or "./data"
local TENANT = "acme-lua"
local API = "https://api.acme-lua.example"

-- Runs fn(...); when it raises a keystead error with `code`, returns found() instead.
local function create_or(code, found, fn, ...)
  local ok, result = pcall(fn, ...)
  if ok then return result, true end
  if type(result) == "table" and result.code == code then return found(), false end
  error(result, 0)
end

local engine <close> = keystead.open { data_dir = data_dir, mode = "dev" }
print(("keystead %s (ABI %d)"):format(keystead.version(), keystead.abi_version()))

-- 1. The customer tenant (control plane).
local tenant, created = create_or(keystead.EEXISTS,
  function() return engine.tenants:get(TENANT) end,
  engine.tenants.create, engine.tenants, { id = TENANT, friendly_name = "Acme (Lua)" })
print(("tenant %s: %s"):format(tenant.id, created and "created" or "exists"))

-- 2. The organization that stands for it on the control plane.
local org = engine.organizations:get_by_name(TENANT)
assert(org.metadata.tenant_id == TENANT)
print(("organization %s (%s)"):format(org.id, org.name))

-- 3. A portal admin on the control plane, a "Tenant Admin" member of that organization.
local ADMIN = "portal-admin@acme-lua.example"
local admin = create_or(keystead.EEXISTS,
  function() return engine:manage("GET", "/users-by-email?email=" .. ADMIN)[1] end,
  engine.users.create, engine.users, {
    connection = "Username-Password-Authentication",
    email = ADMIN,
    password = "Correct-Horse-9-battery",
  })
local tenant_admin = engine.roles:list { query = { name_filter = "Tenant Admin" } }[1]
assert(tenant_admin, "the control plane has no Tenant Admin role")
engine.organizations:add_members(org.id, { admin.user_id })
engine.organizations:add_member_roles(org.id, admin.user_id, { tenant_admin.id })
local roles = {}
for _, m in ipairs(engine.organizations:members(org.id)) do
  if m.user_id == admin.user_id then
    for _, r in ipairs(m.roles) do roles[#roles + 1] = r.name end
  end
end
print(("portal admin %s: member of %s as %s"):format(admin.user_id, org.name,
  table.concat(roles, ", ")))

-- 4. A user inside the tenant, and the tenant's users.
local at = { tenant = TENANT }
local USER = "ann@acme-lua.example"
create_or(keystead.EEXISTS, function() return nil end, engine.users.create, engine.users, {
  connection = "Username-Password-Authentication",
  email = USER,
  password = "Correct-Horse-9",
}, at)
local users = engine.users:list { tenant = TENANT, query = { per_page = 50 } }
local emails = {}
for _, u in ipairs(users) do emails[#emails + 1] = u.email end
print(("%s users: %s"):format(TENANT, table.concat(emails, ", ")))
print(("password check for %s: %s"):format(USER,
  engine:check_password(USER, "Correct-Horse-9", at)))

-- 5. An API, a machine client (found by name on a second run: its secret is rotated, since
--    secrets are shown only once) and the client grant between them.
create_or(keystead.EEXISTS, function() return nil end, engine.resource_servers.create,
  engine.resource_servers, { identifier = API, name = "Acme API" }, at)
local client
for _, c in ipairs(engine.clients:list(at)) do
  if c.name == "lua-billing-job" then client = c end
end
local secret
if client then
  secret = engine:manage("POST", "/clients/" .. client.client_id .. "/rotate-secret", nil, at)
      .client_secret
else
  client = engine.clients:create({
    name = "lua-billing-job",
    app_type = "non_interactive",
    grant_types = { "client_credentials" },
  }, at)
  secret = client.client_secret
end
create_or(keystead.EEXISTS, function() return nil end, engine.client_grants.create,
  engine.client_grants,
  { client_id = client.client_id, audience = API, scope = keystead.array() }, at)
print(("client %s may call %s"):format(client.client_id, API))

-- 6. A token, as the client gets it from the tenant's token endpoint, and its verification.
local token = engine.tokens:issue({
  grant_type = "client_credentials",
  client_id = client.client_id,
  client_secret = secret,
  audience = API,
}, at)
local claims = engine.tokens:verify(token.access_token, { tenant = TENANT, audience = API })
assert(claims.tenant_id == TENANT and claims.sub == client.client_id .. "@clients")
print(("token verified: iss=%s sub=%s expires in %ds"):format(claims.iss, claims.sub,
  token.expires_in))
