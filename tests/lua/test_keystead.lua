-- Tests of the Lua module `keystead`, with a tiny self-contained runner.
--
--   LUA_CPATH="build/bindings/lua/?.so;;" lua5.4 tests/lua/test_keystead.lua DATA_DIR [JUNIT_XML]
--
-- DATA_DIR must be a fresh directory (it is created by the engine when missing).
local keystead = require "keystead"

local DATA_DIR = assert(arg[1], "usage: test_keystead.lua DATA_DIR [JUNIT_XML]")
local JUNIT = arg[2]
local PUBLIC_URL = "https://id.example.com"
local MASTER_KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
local TENANT = "lua-acme"
local API = "https://api.lua-acme.test"
local PASSWORD = "Correct-Horse-9"

-- ---- runner ------------------------------------------------------------------------------------

local tests = {}
local function test(name, fn) tests[#tests + 1] = { name = name, fn = fn } end

local function fail(msg, level) error(msg, (level or 1) + 1) end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function eq(actual, expected, what)
  if actual ~= expected then
    fail(("%s: expected %s, got %s"):format(what or "value", show(expected), show(actual)), 2)
  end
end

local function truthy(v, what)
  if not v then fail((what or "condition") .. " does not hold", 2) end
  return v
end

-- Calls fn(...), which must raise a keystead error with `code`; returns the error.
local function raises(code, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then fail("expected an error " .. tostring(code) .. ", got success", 2) end
  if type(err) ~= "table" or getmetatable(err) ~= keystead.Error then
    fail("expected a keystead error, got " .. show(tostring(err)), 2)
  end
  if err.code ~= code then fail(("expected code %d, got %s"):format(code, tostring(err)), 2) end
  return err
end

-- Calls fn(...), which must raise a plain Lua error (a string) matching `pattern`.
local function raises_lua(pattern, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then fail("expected a Lua error, got success", 2) end
  if type(err) ~= "string" then fail("expected a string error, got " .. show(tostring(err)), 2) end
  if not err:find(pattern) then fail(("error %q does not match %q"):format(err, pattern), 2) end
  return err
end

local function find(list, pred)
  for _, v in ipairs(list) do
    if pred(v) then return v end
  end
end

-- ---- fixtures ----------------------------------------------------------------------------------

local engine = keystead.open {
  data_dir = DATA_DIR,
  mode = "dev",
  public_url = PUBLIC_URL,
  master_key = MASTER_KEY,
}
local at = { tenant = TENANT }
local state = {}

-- A machine client of TENANT with a grant for API (made once).
local function machine_client()
  if state.client then return state.client end
  pcall(engine.resource_servers.create, engine.resource_servers, {
    identifier = API,
    name = "Lua API",
    scopes = { { value = "read:things", description = "Read things" } },
  }, at)
  local client = engine.clients:create({
    name = "lua-svc",
    app_type = "non_interactive",
    grant_types = { "client_credentials" },
  }, at)
  engine.client_grants:create({ client_id = client.client_id, audience = API,
    scope = { "read:things" } }, at)
  state.client = client
  return client
end

local function issue()
  local client = machine_client()
  return engine.tokens:issue({
    grant_type = "client_credentials",
    client_id = client.client_id,
    client_secret = client.client_secret,
    audience = API,
  }, at)
end

-- ---- module ------------------------------------------------------------------------------------

test("version and abi_version", function()
  truthy(keystead.version():match("^%d+%.%d+%.%d+"), "version looks like x.y.z")
  eq(math.type(keystead.abi_version()), "integer", "abi_version type")
  truthy(keystead.abi_version() >= 2, "abi_version >= 2")
end)

test("error code constants", function()
  eq(keystead.OK, 0, "OK")
  eq(keystead.ERROR, -1, "ERROR")
  eq(keystead.EINVALID, -2, "EINVALID")
  eq(keystead.ENOTFOUND, -3, "ENOTFOUND")
  eq(keystead.EEXISTS, -4, "EEXISTS")
  eq(keystead.EAUTH, -5, "EAUTH")
  eq(keystead.EFORBIDDEN, -6, "EFORBIDDEN")
  eq(keystead.EUSER, -7, "EUSER")
end)

test("open rejects bad configuration", function()
  local err = raises(keystead.EINVALID, keystead.open, "{not json")
  eq(err.name, "EINVALID", "name")
  err = raises(keystead.EINVALID, keystead.open, { no_such_setting = 1 })
  truthy(err.message:find("no_such_setting", 1, true), "message names the setting")
  raises_lua("bad argument #1 to 'keystead.open'", keystead.open, 42)
end)

test("engine tostring and collections", function()
  truthy(tostring(engine):find("open"), "open engine")
  eq(engine.users, engine.users, "collections are cached")
  eq(engine.no_such_collection, nil, "unknown field")
  truthy(tostring(engine.resource_servers):find("/resource-servers", 1, true), "collection path")
end)

-- ---- handle ------------------------------------------------------------------------------------

test("handle serves the discovery document", function()
  local res = engine:handle {
    method = "GET",
    path = "/.well-known/openid-configuration",
    query = "",
    headers = { host = "id.example.com" },
    body = "",
    remote_addr = "127.0.0.1",
    secure = true,
  }
  eq(res.status, 200, "status")
  local ct = find(res.headers, function(h) return h[1] == "content-type" end)
  truthy(ct and ct[2]:find("application/json", 1, true), "content-type header")
  truthy(res.body:find(PUBLIC_URL .. "/oauth/token", 1, true), "token endpoint in body")
end)

test("handle takes headers as pairs and answers 404", function()
  local res = engine:handle { method = "GET", path = "/t/nope/x",
    headers = { { "host", "id.example.com" } } }
  eq(res.status, 404, "status")
  raises(keystead.EINVALID, engine.handle, engine, "[1,2]")
  raises_lua("bad argument #1 to 'handle' %(table or string expected, got number%)",
    function() engine:handle(5) end)
end)

-- ---- management --------------------------------------------------------------------------------

test("tenants: create, get, and the tenant's organization", function()
  local t = engine.tenants:create { id = TENANT, friendly_name = "Lua Acme" }
  eq(t.id, TENANT, "created id")
  eq(engine.tenants:get(TENANT).id, TENANT, "get")
  local org = engine.organizations:get_by_name(TENANT)
  eq(org.name, TENANT, "org name")
  eq(org.metadata.tenant_id, TENANT, "org metadata.tenant_id")
  state.tenant_org = org
end)

test("duplicate tenant is EEXISTS with the Auth0 error body", function()
  local err = raises(keystead.EEXISTS, engine.tenants.create, engine.tenants, { id = TENANT })
  eq(err.name, "EEXISTS", "name")
  eq(err.status, 409, "status")
  eq(type(err.body), "table", "body")
  eq(err.body.statusCode, 409, "body.statusCode")
  truthy(err.message:find(TENANT, 1, true), "message names the tenant")
  eq(tostring(err), "keystead: EEXISTS (-4): " .. err.message, "tostring")
end)

test("missing entities are ENOTFOUND", function()
  local err = raises(keystead.ENOTFOUND, engine.roles.get, engine.roles, "rol_nope", at)
  eq(err.status, 404, "status")
  truthy(#err.message > 0, "message")
  raises(keystead.ENOTFOUND, engine.users.list, engine.users, { tenant = "no-such-tenant" })
  raises(keystead.ENOTFOUND, engine.organizations.get_by_name, engine.organizations, "nope-org")
  -- The Tenants API lives on the control plane only.
  raises(keystead.ENOTFOUND, engine.tenants.delete, engine.tenants, TENANT, at)
end)

test("invalid bodies are EINVALID", function()
  local err = raises(keystead.EINVALID, engine.users.create, engine.users, { email = 5 }, at)
  eq(err.status, 400, "status")
  eq(err.body.errorCode, "invalid_body", "errorCode")
  raises(keystead.EINVALID, engine.roles.create, engine.roles, { name = "x", bogus = true }, at)
  raises(keystead.EINVALID, engine.manage, engine, "POST", "/users", "{oops", at)
end)

test("users: create, get by an id with '|', update, delete", function()
  local u = engine.users:create({ connection = "Username-Password-Authentication",
    email = "ann@example.com", password = PASSWORD, name = "Ann" }, at)
  truthy(u.user_id:match("^auth0|"), "user id")
  state.ann = u
  eq(engine.users:get(u.user_id, at).email, "ann@example.com", "get")
  local patched = engine.users:update(u.user_id, { name = "Ann B.",
    user_metadata = { team = "red", drop = "me" } }, at)
  eq(patched.name, "Ann B.", "updated name")
  -- keystead.null encodes as JSON null: Auth0 removes the metadata key.
  patched = engine.users:update(u.user_id, { user_metadata = { drop = keystead.null } }, at)
  eq(patched.user_metadata.team, "red", "kept key")
  eq(patched.user_metadata.drop, nil, "removed key")
  local tmp = engine.users:create({ connection = "Username-Password-Authentication",
    email = "tmp@example.com", password = PASSWORD }, at)
  eq(engine.users:delete(tmp.user_id, at), nil, "delete returns nil")
  raises(keystead.ENOTFOUND, engine.users.get, engine.users, tmp.user_id, at)
end)

test("list query strings are url-encoded", function()
  engine.users:create({ connection = "Username-Password-Authentication",
    email = "a+b&c@example.com", password = PASSWORD }, at)
  local found = engine.users:list { tenant = TENANT, query = { email = "a+b&c@example.com" } }
  eq(#found, 1, "one match")
  eq(found[1].email, "a+b&c@example.com", "email")
  local page = engine.users:list { tenant = TENANT,
    query = { include_totals = true, per_page = 1, page = 0 } }
  eq(#page.users, 1, "per_page")
  truthy(page.total >= 2, "total")
  -- an integral float is an integer in queries too
  eq(#engine.users:list { tenant = TENANT, query = { per_page = 4 / 4 } }, 1, "per_page=1.0")
end)

test("manage: raw calls, JSON text bodies and 204", function()
  local r = engine:manage("POST", "/roles", '{"name":"raw-role"}', at)
  eq(r.name, "raw-role", "created from JSON text")
  local got = engine:manage("GET", "/roles/" .. r.id, nil, at)
  eq(got.id, r.id, "GET")
  local listed = engine:manage("GET", "/roles", nil, { tenant = TENANT,
    query = { name_filter = "raw-role" } })
  eq(#listed, 1, "query option")
  eq(engine:manage("DELETE", "/roles/" .. r.id, nil, at), nil, "204 is nil")
  raises_lua("bad argument #1 to 'manage'", function() engine:manage({}, "/roles") end)
  raises_lua("bad argument #3 to 'manage'", function() engine:manage("POST", "/roles", 5) end)
end)

test("roles: assign to users and add permissions", function()
  machine_client()
  local role = engine.roles:create({ name = "reader", description = "Reads" }, at)
  eq(engine.users:assign_roles(state.ann.user_id, { role.id }, at), nil, "assign returns nil")
  local roles = engine.users:roles(state.ann.user_id, at)
  eq(#roles, 1, "one role")
  eq(roles[1].id, role.id, "role id")
  engine.roles:add_permissions(role.id,
    { { resource_server_identifier = API, permission_name = "read:things" } }, at)
  local perms = engine:manage("GET", "/roles/" .. role.id .. "/permissions", nil, at)
  eq(#perms, 1, "one permission")
  eq(perms[1].permission_name, "read:things", "permission")
  raises(keystead.EINVALID, engine.users.assign_roles, engine.users, state.ann.user_id, {}, at)
  raises(keystead.ENOTFOUND, engine.users.assign_roles, engine.users, state.ann.user_id,
    { "rol_missing" }, at)
end)

test("organizations: members and member roles", function()
  local org = engine.organizations:create({ name = "lua-team", display_name = "Lua Team" }, at)
  local role = engine.roles:create({ name = "org-admin" }, at)
  local uid = state.ann.user_id
  eq(engine.organizations:add_members(org.id, { uid }, at), nil, "add_members")
  engine.organizations:add_member_roles(org.id, uid, { role.id }, at)
  local members = engine.organizations:members(org.id, at)
  eq(#members, 1, "one member")
  eq(members[1].user_id, uid, "member")
  eq(members[1].roles[1].name, "org-admin", "member role")
  eq(engine.organizations:get_by_name("lua-team", at).id, org.id, "get_by_name")
  engine.organizations:remove_members(org.id, { uid }, at)
  eq(#engine.organizations:members(org.id, at), 0, "removed")
  raises(keystead.ENOTFOUND, engine.organizations.add_member_roles, engine.organizations,
    org.id, uid, { role.id }, at)
end)

test("the tenant's organization cannot be deleted (EFORBIDDEN)", function()
  local err = raises(keystead.EFORBIDDEN, engine.organizations.delete, engine.organizations,
    state.tenant_org.id)
  eq(err.status, 403, "status")
end)

test("connections, hooks and client grants collections", function()
  local cons = engine.connections:list(at)
  truthy(find(cons, function(c) return c.name == "Username-Password-Authentication" end),
    "database connection")
  local err = raises(keystead.EINVALID, engine.hooks.create, engine.hooks,
    { trigger_id = "post-login", code = "x = = 1" }, at)
  truthy(err.message:find(":1:", 1, true), "Lua syntax error line")
  local client = machine_client()
  local grants = engine.client_grants:list { tenant = TENANT,
    query = { client_id = client.client_id } }
  eq(#grants, 1, "one grant")
  eq(grants[1].audience, API, "grant audience")
  raises(keystead.EEXISTS, engine.client_grants.create, engine.client_grants,
    { client_id = client.client_id, audience = API, scope = keystead.array() }, at)
end)

-- ---- JSON mapping ------------------------------------------------------------------------------

test("empty arrays: keystead.array and decoded arrays encode as []", function()
  local c = engine.clients:create({ name = "arrays", app_type = "spa",
    callbacks = keystead.array() }, at)
  eq(type(c.callbacks), "table", "callbacks decoded")
  eq(#c.callbacks, 0, "empty")
  -- a decoded [] stays an array when sent back; a plain {} is an object and is refused
  local again = engine.clients:update(c.client_id, { callbacks = c.callbacks }, at)
  eq(#again.callbacks, 0, "still empty")
  raises(keystead.EINVALID, engine.clients.update, engine.clients, c.client_id,
    { callbacks = {} }, at)
  local t = { "https://a.example/cb" }
  eq(keystead.array(t), t, "array returns its table")
  eq(engine.clients:update(c.client_id, { callbacks = t }, at).callbacks[1], t[1], "one callback")
  raises_lua("already has a metatable", keystead.array, setmetatable({}, {}))
end)

test("JSON values: null, integers, floats, UTF-8", function()
  eq(type(keystead.null), "userdata", "null is a light userdata")
  local rs = engine.resource_servers:create({ identifier = "https://num.test", name = "Zürich ✓",
    token_lifetime = 7200 / 2 }, at)
  eq(rs.token_lifetime, 3600, "integral float sent as integer")
  eq(math.type(rs.token_lifetime), "integer", "decoded integer")
  eq(rs.name, "Zürich ✓", "UTF-8 round trip")
  local org = engine.organizations:create({ name = "nulls",
    metadata = { keep = "1", gone = keystead.null } }, at)
  eq(org.metadata.keep, "1", "kept")
  eq(org.metadata.gone, nil, "null value dropped by the server")
  -- branding is stored as given: a null comes back as keystead.null, and the key is kept
  local branded = engine.organizations:create({ name = "branded",
    branding = { logo_url = keystead.null, colors = { primary = "#000000" } } }, at)
  eq(branded.branding.logo_url, keystead.null, "decoded null")
  eq(branded.branding.colors.primary, "#000000", "nested object")
end)

test("values that cannot be JSON are argument errors", function()
  local users = engine.users
  raises_lua("bad argument #1 to 'create' %(cannot encode a function",
    function() users:create({ name = print }, at) end)
  raises_lua("mixed or non%-string keys", users.create, users, { 1, x = 2 }, at)
  raises_lua("sparse array", users.create, users, { [1] = "a", [3] = "b" }, at)
  raises_lua("NaN", users.create, users, { n = 0 / 0 }, at)
  raises_lua("UTF%-8", users.create, users, { name = "\xff\xfe" }, at)
  local cycle = {}
  cycle.self = cycle
  raises_lua("nesting too deep", users.create, users, cycle, at)
end)

test("wrong argument types and options are Lua errors", function()
  local users = engine.users
  raises_lua("bad argument #1 to 'get' %(string expected, got nil%)",
    function() users:get(nil, at) end)
  raises_lua("bad argument #2 to 'get' %(table expected, got string%)",
    function() users:get("x", "acme") end)
  raises_lua("unknown option 'tenent'", users.list, users, { tenent = TENANT })
  raises_lua("option 'tenant' must be a string", users.list, users, { tenant = 5 })
  raises_lua("option 'query' must be a table or a string", users.list, users, { query = 5 })
  raises_lua("query value for 'x' must be", users.list, users, { query = { x = {} } })
  raises_lua("keystead collection expected", users.get, 42, "x")
  raises_lua("keystead.Engine expected", engine.manage, {}, "GET", "/users")
  raises_lua("bad argument #2 to 'assign_roles' %(table expected",
    function() users:assign_roles("auth0|x", "rol") end)
  raises_lua("bad argument #2 to 'update'", function() users:update("x", 5) end)
end)

-- ---- tokens and passwords ----------------------------------------------------------------------

test("tokens: client_credentials issue and verify", function()
  local client = machine_client()
  local token = issue()
  eq(type(token.access_token), "string", "access_token")
  truthy(token.expires_in > 0, "expires_in")
  local claims = engine.tokens:verify(token.access_token, { tenant = TENANT, audience = API })
  eq(claims.sub, client.client_id .. "@clients", "sub")
  eq(claims.iss, PUBLIC_URL .. "/t/" .. TENANT .. "/", "iss")
  eq(claims.tenant_id, TENANT, "tenant_id")
  truthy(engine.tokens:verify(token.access_token), "verify without options")
end)

test("tokens: invalid tokens are EAUTH", function()
  local token = issue().access_token
  local err = raises(keystead.EAUTH, engine.tokens.verify, engine.tokens, token,
    { audience = "https://other.test" })
  truthy(err.message:find("audience"), "audience message")
  eq(err.body, nil, "plain-text detail has no body")
  raises(keystead.EAUTH, engine.tokens.verify, engine.tokens, token, { tenant = "control_plane" })
  local i = #token - 2
  local tampered = token:sub(1, i - 1) .. (token:sub(i, i) == "A" and "B" or "A") .. token:sub(i + 1)
  err = raises(keystead.EAUTH, engine.tokens.verify, engine.tokens, tampered)
  truthy(err.message:find("signature"), "signature message")
  raises(keystead.EAUTH, engine.tokens.verify, engine.tokens, "not.a.token")
end)

test("tokens: issue errors carry the OAuth error body", function()
  local client = machine_client()
  local err = raises(keystead.EAUTH, engine.tokens.issue, engine.tokens, {
    grant_type = "client_credentials", client_id = client.client_id,
    client_secret = "wrong", audience = API }, at)
  eq(err.body.error, "invalid_client", "error")
  eq(err.message, err.body.error_description, "message is error_description")
  raises(keystead.EINVALID, engine.tokens.issue, engine.tokens, { grant_type = "nope" }, at)
  raises(keystead.EINVALID, engine.tokens.issue, engine.tokens, { grant_type = 5 }, at)
  raises_lua("unknown option 'audience'", engine.tokens.issue, engine.tokens,
    { grant_type = "x" }, { audience = API })
end)

test("check_password", function()
  local uid = engine:check_password("Ann@Example.com", PASSWORD, at)
  eq(uid, state.ann.user_id, "user id")
  eq(engine:check_password("ann@example.com", PASSWORD,
    { tenant = TENANT, connection = "Username-Password-Authentication" }), uid, "connection")
  local err = raises(keystead.EAUTH, engine.check_password, engine, "ann@example.com", "wrong", at)
  eq(err.message, "Wrong email or password.", "message")
  err = raises(keystead.EAUTH, engine.check_password, engine, "bob@example.com", PASSWORD, at)
  eq(err.message, "Wrong email or password.", "same message for unknown users")
  -- another tenant's user
  raises(keystead.EAUTH, engine.check_password, engine, "ann@example.com", PASSWORD)
end)

test("blocked users are EFORBIDDEN in check_password", function()
  local u = engine.users:create({ connection = "Username-Password-Authentication",
    email = "blocked@example.com", password = PASSWORD }, at)
  engine.users:update(u.user_id, { blocked = true }, at)
  raises(keystead.EFORBIDDEN, engine.check_password, engine, "blocked@example.com", PASSWORD, at)
end)

-- ---- lifetime ----------------------------------------------------------------------------------

test("a closed engine raises cleanly", function()
  local dir = DATA_DIR .. "/second"
  local e = keystead.open { data_dir = dir, mode = "dev", master_key = MASTER_KEY }
  local users = e.users
  local tokens = e.tokens
  eq(#e.tenants:list(), 1, "only the control plane")
  e:close()
  e:close() -- idempotent
  truthy(tostring(e):find("closed"), "tostring")
  local err = raises(keystead.EINVALID, e.manage, e, "GET", "/users")
  truthy(err.message:find("closed"), "message")
  raises(keystead.EINVALID, users.list, users)
  raises(keystead.EINVALID, tokens.verify, tokens, "x")
  raises(keystead.EINVALID, e.check_password, e, "a@b.c", "x")
  raises(keystead.EINVALID, e.handle, e, { path = "/" })
  raises(keystead.EINVALID, e.users.get, e.users, "x")
end)

test("<close> closes the engine at the end of the scope", function()
  local captured
  do
    local e <close> = keystead.open { data_dir = DATA_DIR .. "/third", mode = "dev",
      master_key = MASTER_KEY }
    captured = e
    eq(e.tenants:get("control_plane").id, "control_plane", "usable inside the scope")
  end
  truthy(tostring(captured):find("closed"), "closed after the scope")
  raises(keystead.EINVALID, captured.manage, captured, "GET", "/tenants")
end)

test("__gc closes an unreachable engine", function()
  local weak = setmetatable({}, { __mode = "v" })
  weak[1] = keystead.open { data_dir = DATA_DIR .. "/fourth", mode = "dev",
    master_key = MASTER_KEY }
  weak[1].tenants:list()
  collectgarbage()
  collectgarbage()
  eq(weak[1], nil, "collected")
  -- the same data directory opens again after the collected engine let go of it
  local e <close> = keystead.open { data_dir = DATA_DIR .. "/fourth", mode = "dev",
    master_key = MASTER_KEY }
  eq(#e.tenants:list(), 1, "reopened")
end)

test("engines on one data directory see each other's writes", function()
  local e <close> = keystead.open { data_dir = DATA_DIR, mode = "dev", master_key = MASTER_KEY,
    public_url = PUBLIC_URL }
  eq(e.tenants:get(TENANT).id, TENANT, "tenant written by the first engine")
end)

test("deleting the tenant removes its organization", function()
  engine.tenants:create { id = "lua-gone" }
  truthy(engine.organizations:get_by_name("lua-gone"), "org exists")
  eq(engine.tenants:delete("lua-gone"), nil, "delete")
  raises(keystead.ENOTFOUND, engine.organizations.get_by_name, engine.organizations, "lua-gone")
  raises(keystead.ENOTFOUND, engine.tenants.get, engine.tenants, "lua-gone")
end)

-- ---- run ---------------------------------------------------------------------------------------

local results, failures = {}, 0
for _, t in ipairs(tests) do
  local ok, err = xpcall(t.fn, function(e)
    local msg = type(e) == "table" and tostring(e) or tostring(e)
    return debug.traceback(msg, 2)
  end)
  results[#results + 1] = { name = t.name, ok = ok, err = err }
  if ok then
    print("PASS  " .. t.name)
  else
    failures = failures + 1
    print("FAIL  " .. t.name .. "\n      " .. tostring(err):gsub("\n", "\n      "))
  end
end
engine:close()
print(("%d tests, %d passed, %d failed"):format(#tests, #tests - failures, failures))

local function xml(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;" }):gsub("[%z\1-\8\11\12\14-\31]", ""))
end

if JUNIT then
  local f = assert(io.open(JUNIT, "w"))
  f:write('<?xml version="1.0" encoding="UTF-8"?>\n')
  f:write(('<testsuite name="lua" tests="%d" failures="%d">\n'):format(#tests, failures))
  for _, r in ipairs(results) do
    f:write(('  <testcase classname="lua" name="%s"'):format(xml(r.name)))
    if r.ok then
      f:write("/>\n")
    else
      local first = tostring(r.err):match("[^\n]*")
      f:write(('>\n    <failure message="%s">%s</failure>\n  </testcase>\n'):format(xml(first),
        xml(r.err)))
    end
  end
  f:write("</testsuite>\n")
  f:close()
end

os.exit(failures == 0 and 0 or 1)
