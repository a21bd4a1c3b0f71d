// The sandbox's standard library: a shared, read-only base every call's env reads through.
#include <algorithm>
#include <cstring>
#include <initializer_list>

#include "hooks/sandbox.h"

namespace ks::hooks::detail {
namespace {

char kReadOnlyKey;  // registry[&kReadOnlyKey]: the set of shared read-only tables

int read_only_newindex(lua_State* L) {
  return luaL_error(L, "attempt to modify a read-only table");
}

// __pairs of a proxy iterates the hidden table without handing it out.
int read_only_next(lua_State* L) {
  lua_settop(L, 2);
  if (lua_next(L, lua_upvalueindex(1))) return 2;
  lua_pushnil(L);
  return 1;
}

int read_only_pairs(lua_State* L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

bool is_read_only(lua_State* L, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kReadOnlyKey);
  lua_pushvalue(L, idx);
  const bool ro = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return ro;
}

int sb_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (is_read_only(L, 1)) return luaL_error(L, "rawset: table is read-only");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

// setmetatable for the script's own tables. Shared tables have protected metatables (refused
// below, as in stock Lua). __gc is refused: a finalizer would run later, in another call,
// possibly another tenant's. (Lua marks an object for finalization only if its metatable has
// __gc when set, so checking here is enough.)
int sb_setmetatable(lua_State* L) {
  const int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    const bool gc = lua_rawget(L, 2) != LUA_TNIL;
    lua_pop(L, 1);
    if (gc) return luaL_error(L, "setmetatable: __gc metamethods are not allowed");
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) {
    return luaL_error(L, "cannot change a protected metatable");
  }
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

// collectgarbage("count") only: the KiB this call holds above its baseline. Nothing else about
// the shared state (its collector, other tenants' memory) is visible.
int sb_collectgarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") != 0) {
    return luaL_error(L, "collectgarbage: only \"count\" is available");
  }
  const Meter& m = sandbox_of(L).meter();
  const size_t held = m.heap + m.external > m.baseline ? m.heap + m.external - m.baseline : 0;
  lua_pushnumber(L, static_cast<lua_Number>(held) / 1024.0);
  return 1;
}

// Calls upvalue 1 after charging the instruction budget for the string bytes it was given: for
// stock C functions whose work is linear in their input and allocates nothing that would
// trigger the allocator's clock check (utf8.len over a long string), so a loop of such calls
// stays within the budget rather than running for many seconds between two count-hook calls.
int metered_call(lua_State* L) {
  const int n = lua_gettop(L);
  uint64_t bytes = 0;
  for (int i = 1; i <= n; ++i) {
    if (lua_type(L, i) == LUA_TSTRING) bytes += lua_rawlen(L, i);
  }
  charge(L, 1 + bytes / 64);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

// to[name] = a metered_call of from[name], for each name.
void copy_metered(lua_State* L, int from, int to, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    lua_getfield(L, from, name);
    lua_pushcclosure(L, metered_call, 1);
    lua_setfield(L, to, name);
  }
}

void copy_fields(lua_State* L, int from, int to, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    lua_getfield(L, from, name);
    lua_setfield(L, to, name);
  }
}

// Copies every field of `from` except `skip` into a new table on the stack.
void copy_except(lua_State* L, int from, const char* skip) {
  from = lua_absindex(L, from);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, from)) {
    if (lua_type(L, -2) == LUA_TSTRING && skip && std::strcmp(lua_tostring(L, -2), skip) == 0) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
}

// The table library in Lua, so its loops run under the count hook. Stock table.insert/remove/
// move/concat/unpack/sort loop in C over ranges a script controls (a fake __len, move over
// 1..maxinteger), where no hook fires. The stock C functions are used only on plain tables whose
// size memory already bounds, with comparators wrapped in Lua.
constexpr char kTablePrelude[] = R"lua(
local cconcat, cunpack, csort, getmetatable, tointeger, type, error, select, pcall = ...

local function argerror(n, fname, msg)  -- always called from a checker called by the API function
  error("bad argument #" .. n .. " to '" .. fname .. "' (" .. msg .. ")", 4)
end
local function checktable(t, n, fname)
  if type(t) ~= "table" then argerror(n, fname, "table expected, got " .. type(t)) end
end
local function toint(v, n, fname)
  local i = tointeger(v)
  if i == nil then
    if type(v) == "number" then argerror(n, fname, "number has no integer representation") end
    argerror(n, fname, "number expected, got " .. type(v))
  end
  return i
end
local function checkstring(v, n, fname)
  local tv = type(v)
  if tv ~= "string" and tv ~= "number" then argerror(n, fname, "string expected, got " .. tv) end
end
local function outofbounds(n, fname)
  argerror(n, fname, "position out of bounds")
end
local function len(t)
  local n = tointeger(#t)
  if n == nil then error("object length is not an integer", 3) end
  return n
end

local function insert(t, ...)
  checktable(t, 1, "insert")
  local e = len(t) + 1
  local nargs = select("#", ...)
  if nargs == 1 then
    t[e] = (...)
    return
  elseif nargs ~= 2 then
    error("wrong number of arguments to 'insert'", 2)
  end
  local pos, v = ...
  pos = toint(pos, 2, "insert")
  if pos < 1 or pos > e then outofbounds(2, "insert") end
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = v
end

local function remove(t, pos)
  checktable(t, 1, "remove")
  local size = len(t)
  if pos == nil then
    pos = size
  else
    pos = toint(pos, 2, "remove")
    if pos ~= size and (pos < 1 or pos > size + 1) then outofbounds(2, "remove") end
  end
  local v = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return v
end

local function move(a1, f, e, t, a2)
  checktable(a1, 1, "move")
  f = toint(f, 2, "move")
  e = toint(e, 3, "move")
  t = toint(t, 4, "move")
  if a2 == nil then a2 = a1 else checktable(a2, 5, "move") end
  if e >= f then
    if not (f > 0 or e < math_maxinteger + f) then argerror(3, "move", "too many elements to move") end
    if t > math_maxinteger - (e - f) then argerror(4, "move", "destination wrap around") end
    if t > e or t <= f or a1 ~= a2 then
      for i = 0, e - f do a2[t + i] = a1[f + i] end
    else
      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
    end
  end
  return a2
end

local function concat(t, sep, i, j)
  checktable(t, 1, "concat")
  if sep == nil then sep = "" else checkstring(sep, 2, "concat") end
  if i == nil then i = 1 else i = toint(i, 3, "concat") end
  if j == nil then j = len(t) else j = toint(j, 4, "concat") end
  -- A plain table: the C loop stops at the first missing element, so memory bounds it.
  if getmetatable(t) == nil then return cconcat(t, sep, i, j) end
  local buf, n = {}, 0
  for k = i, j do
    local v = t[k]
    local tv = type(v)
    if tv ~= "string" and tv ~= "number" then
      error("invalid value (at index " .. k .. ") in table for 'concat'", 2)
    end
    n = n + 1
    buf[n] = v
  end
  return cconcat(buf, sep)
end

local function unpack(t, i, j)
  if i == nil then i = 1 else i = toint(i, 2, "unpack") end
  if j == nil then j = len(t) else j = toint(j, 3, "unpack") end
  if type(t) ~= "table" or getmetatable(t) == nil then return cunpack(t, i, j) end
  if i > j then return end
  local n = j - i
  if n < 0 or n >= 1000000 then error("too many results to unpack", 2) end
  local buf = {}
  for k = 0, n do buf[k + 1] = t[i + k] end
  return cunpack(buf, 1, n + 1)
end

local function lessthan(a, b) return a < b end

local function sort(t, comp)
  checktable(t, 1, "sort")
  local n = len(t)
  if comp == nil then
    comp = lessthan
  elseif type(comp) ~= "function" then
    argerror(2, "sort", "function expected, got " .. type(comp))
  else
    local f = comp  -- keep every comparison in Lua, so the count hook sees it
    comp = function(a, b) return f(a, b) end
  end
  if getmetatable(t) == nil then
    csort(t, comp)
    return
  end
  local buf = {}
  for k = 1, n do buf[k] = t[k] end
  csort(buf, comp)
  for k = 1, n do t[k] = buf[k] end
end

-- xpcall with the handler run after the error has unwound. Stock xpcall runs it on top of the
-- error; for an error the count hook raises (a limit), that is inside the hook, where Lua
-- disables hooks, so a looping handler would never be stopped.
local function xpcall_done(msgh, ok, ...)
  if ok then return true, ... end
  return false, select(2, pcall(msgh, (...)))
end
local function xpcall(f, msgh, ...)
  if type(msgh) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(msgh) .. ")", 2)
  end
  return xpcall_done(msgh, pcall(f, ...))
end

return { insert = insert, remove = remove, move = move, concat = concat, unpack = unpack,
         sort = sort, xpcall = xpcall }
)lua";

}  // namespace

void make_read_only(lua_State* L) {
  const int real = lua_gettop(L);
  lua_newtable(L);  // the proxy
  lua_createtable(L, 0, 4);
  lua_pushvalue(L, real);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, read_only_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);  // getmetatable(proxy) == false; setmetatable(proxy, ...) is refused
  lua_setfield(L, -2, "__metatable");
  lua_pushvalue(L, real);
  lua_pushcclosure(L, read_only_next, 1);
  lua_pushcclosure(L, read_only_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_setmetatable(L, -2);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kReadOnlyKey);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_replace(L, real);
}

int sandbox_print(lua_State* L) {
  RunContext* rc = sandbox_of(L).run_context();
  if (!rc || rc->out->logs.size() >= kMaxLogLines) return 0;
  char line[kMaxTextBytes + 4];  // a little over, so clean_text cuts on a character boundary
  size_t len = 0;
  const int n = lua_gettop(L);
  for (int i = 1; i <= n; ++i) {
    size_t l = 0;
    const char* s = luaL_tolstring(L, i, &l);  // __tostring runs under the call's limits
    if (i > 1 && len < sizeof line) line[len++] = '\t';
    const size_t take = std::min(l, sizeof line - len);
    std::memcpy(line + len, s, take);
    len += take;
    lua_pop(L, 1);
  }
  bool oom = false;
  try {
    if (rc->out->logs.size() < kMaxLogLines) {
      rc->out->logs.push_back(clean_text(std::string_view(line, len), kMaxTextBytes));
    }
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  return 0;
}

void open_sandbox(lua_State* L) {
  lua_settop(L, 0);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kReadOnlyKey);

  // The stock libraries, only to take functions from; scripts never see these tables. io,
  // package, debug and coroutine are not even opened.
  luaL_requiref(L, LUA_GNAME, luaopen_base, 0);         // 1
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);  // 2
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);   // 3
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);   // 4
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);   // 5
  luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);       // 6
  constexpr int G = 1, STR = 2, TAB = 3, MATH = 4, UTF8 = 5, OS = 6;

  lua_createtable(L, 0, 32);  // 7: the base
  constexpr int BASE = 7;
  copy_metered(L, G, BASE, {"tonumber"});
  copy_fields(L, G, BASE,
              {"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tostring", "type",
               "rawequal", "rawlen", "rawget", "getmetatable", "_VERSION"});
  lua_pushcfunction(L, sb_rawset);
  lua_setfield(L, BASE, "rawset");
  lua_pushcfunction(L, sb_setmetatable);
  lua_setfield(L, BASE, "setmetatable");
  lua_pushcfunction(L, sb_collectgarbage);
  lua_setfield(L, BASE, "collectgarbage");
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, BASE, "print");

  // string: no dump; metered pattern functions; rep without the empty-result spin.
  lua_createtable(L, 0, 20);                               // 8
  copy_fields(L, STR, 8, {"byte", "char", "len", "sub"});  // work bounded by their result
  copy_metered(L, STR, 8, {"format", "lower", "pack", "packsize", "reverse", "unpack", "upper"});
  const luaL_Reg metered[] = {{"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch},
                              {"gsub", str_gsub}, {"rep", str_rep},     {nullptr, nullptr}};
  luaL_setfuncs(L, metered, 0);
  // The string metatable (methods on string values) reads the same table and is locked:
  // getmetatable("") is false, so its __index cannot be reached or changed.
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, 8);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  make_read_only(L);
  lua_setfield(L, BASE, "string");

  // table: the Lua versions above plus the stock pack (and xpcall, for the base).
  if (luaL_loadbufferx(L, kTablePrelude, sizeof kTablePrelude - 1, "=table", "t") != LUA_OK) {
    lua_error(L);
  }
  // Its globals: only math_maxinteger (everything else arrives as arguments).
  lua_newtable(L);
  lua_pushinteger(L, LUA_MAXINTEGER);
  lua_setfield(L, -2, "math_maxinteger");
  lua_setupvalue(L, -2, 1);
  lua_getfield(L, TAB, "concat");
  lua_getfield(L, TAB, "unpack");
  lua_getfield(L, TAB, "sort");
  lua_getfield(L, G, "getmetatable");
  lua_getfield(L, MATH, "tointeger");
  lua_getfield(L, G, "type");
  lua_getfield(L, G, "error");
  lua_getfield(L, G, "select");
  lua_getfield(L, G, "pcall");
  lua_call(L, 9, 1);
  lua_getfield(L, -1, "xpcall");
  lua_setfield(L, BASE, "xpcall");
  lua_pushnil(L);
  lua_setfield(L, -2, "xpcall");
  lua_getfield(L, TAB, "pack");
  lua_setfield(L, -2, "pack");
  make_read_only(L);
  lua_setfield(L, BASE, "table");

  copy_except(L, MATH, "randomseed");  // the generator is shared by every call on the state
  make_read_only(L);
  lua_setfield(L, BASE, "math");

  copy_except(L, UTF8, nullptr);
  copy_metered(L, UTF8, lua_gettop(L), {"len", "offset"});
  make_read_only(L);
  lua_setfield(L, BASE, "utf8");

  lua_createtable(L, 0, 4);
  copy_fields(L, OS, lua_gettop(L), {"clock", "date", "difftime", "time"});
  make_read_only(L);
  lua_setfield(L, BASE, "os");

  // Every call's env: a fresh table reading through to the base; its metatable is locked.
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, BASE);
  lua_setfield(L, -2, "__index");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_replace(L, 1);
  lua_settop(L, 1);
}

}  // namespace ks::hooks::detail
