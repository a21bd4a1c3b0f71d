// The Lua 5.4 module `keystead`: Keystead's C ABI (keystead.h) for Lua.
//
// Lua errors longjmp. So that no C++ object is skipped by one, every function checks its
// arguments with the luaL_check* helpers first, then does its work inside a C++ scope that
// leaves an error value (or the results) on the stack and reports what to do, and raises only
// once that scope is left. No C++ exception leaves a scope: each ends in catch (...).
#include "keystead.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <lua.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace {

using Json = nlohmann::json;

constexpr const char* kEngineMt = "keystead.Engine";
constexpr const char* kErrorMt = "keystead.Error";
constexpr const char* kArrayMt = "keystead.array";
constexpr const char* kCollectionMt = "keystead.Collection";
constexpr const char* kUsersMt = "keystead.Users";
constexpr const char* kRolesMt = "keystead.Roles";
constexpr const char* kOrganizationsMt = "keystead.Organizations";
constexpr const char* kTokensMt = "keystead.Tokens";
constexpr int kMaxDepth = 200;

struct Engine {
  ks_engine* handle;
};

// A collection of the Management API (or engine.tokens); its uservalue 1 is the engine.
struct Collection {
  const char* path;  // "/users"; nullptr for tokens
};

struct CollectionKind {
  const char* field;
  const char* path;
  const char* mt;
};

const CollectionKind kKinds[] = {
    {"tenants", "/tenants", kCollectionMt},
    {"users", "/users", kUsersMt},
    {"clients", "/clients", kCollectionMt},
    {"connections", "/connections", kCollectionMt},
    {"resource_servers", "/resource-servers", kCollectionMt},
    {"roles", "/roles", kRolesMt},
    {"organizations", "/organizations", kOrganizationsMt},
    {"hooks", "/hooks", kCollectionMt},
    {"client_grants", "/client-grants", kCollectionMt},
    {"tokens", nullptr, kTokensMt},
};

// ---- results of a C++ scope --------------------------------------------------------------------

// What a function does once its C++ scope is left: return `n` results, or raise the value on
// top of the stack (a keystead error), or raise an argument error for `arg` with the message on
// top of the stack.
struct Outcome {
  enum Kind { Return, Raise, ArgError } kind = Return;
  int n = 0;
  int arg = 0;
};

Outcome results(int n) { return {Outcome::Return, n, 0}; }
Outcome raise() { return {Outcome::Raise, 0, 0}; }
Outcome arg_error(lua_State* L, int arg, const std::string& message) {
  lua_pushstring(L, message.c_str());
  return {Outcome::ArgError, 0, arg};
}

int finish(lua_State* L, const Outcome& o) {
  switch (o.kind) {
    case Outcome::Raise:
      return lua_error(L);
    case Outcome::ArgError:
      return luaL_argerror(L, o.arg, lua_tostring(L, -1));
    default:
      return o.n;
  }
}

// ---- errors ------------------------------------------------------------------------------------

const char* code_name(int code) {
  switch (code) {
    case KS_EINVALID:
      return "EINVALID";
    case KS_ENOTFOUND:
      return "ENOTFOUND";
    case KS_EEXISTS:
      return "EEXISTS";
    case KS_EAUTH:
      return "EAUTH";
    case KS_EFORBIDDEN:
      return "EFORBIDDEN";
    case KS_EUSER:
      return "EUSER";
    default:
      return "ERROR";
  }
}

bool push_json(lua_State* L, const Json& j, int depth = 0);

// Pushes the error value for `code` with the detail `text` (ks_last_error(): an Auth0 or OAuth
// error body, or plain text): {code, name, message, status, body} with metatable keystead.Error.
void push_error(lua_State* L, int code, const char* text) {
  if (!text) text = "";
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, code_name(code));
  lua_setfield(L, -2, "name");
  bool have_message = false;
  try {
    const Json body = Json::parse(text, nullptr, false);
    if (!body.is_discarded() && body.is_object()) {
      for (const char* key : {"message", "error_description", "error"}) {
        auto it = body.find(key);
        if (it != body.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
          const auto& m = it->get_ref<const std::string&>();
          lua_pushlstring(L, m.data(), m.size());
          lua_setfield(L, -2, "message");
          have_message = true;
          break;
        }
      }
      auto status = body.find("statusCode");
      if (status != body.end() && status->is_number_integer()) {
        lua_pushinteger(L, status->get<lua_Integer>());
        lua_setfield(L, -2, "status");
      }
      if (push_json(L, body)) lua_setfield(L, -2, "body");
    }
  } catch (...) {
  }
  if (!have_message) {
    lua_pushstring(L, *text ? text : code_name(code));
    lua_setfield(L, -2, "message");
  }
  luaL_setmetatable(L, kErrorMt);
}

int error_tostring(lua_State* L) {
  lua_getfield(L, 1, "name");
  lua_getfield(L, 1, "code");
  lua_getfield(L, 1, "message");
  lua_pushfstring(L, "keystead: %s (%d): %s", luaL_optstring(L, 2, "ERROR"),
                  static_cast<int>(luaL_optinteger(L, 3, KS_ERROR)), luaL_optstring(L, 4, ""));
  return 1;
}

// ---- JSON <-> Lua ------------------------------------------------------------------------------

bool is_null(lua_State* L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == nullptr;
}

bool has_array_mt(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  luaL_getmetatable(L, kArrayMt);
  const bool same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

bool to_json(lua_State* L, int idx, Json& out, std::string& err, int depth = 0);

// The table at idx as a JSON array of its elements 1..#t (raw length; holes are null).
bool array_to_json(lua_State* L, int idx, Json& out, std::string& err, int depth) {
  out = Json::array();
  const lua_Unsigned n = lua_rawlen(L, idx);
  for (lua_Unsigned i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, static_cast<lua_Integer>(i));
    Json v;
    const bool ok = to_json(L, lua_gettop(L), v, err, depth + 1);
    lua_pop(L, 1);
    if (!ok) return false;
    out.push_back(std::move(v));
  }
  return true;
}

bool table_to_json(lua_State* L, int idx, Json& out, std::string& err, int depth) {
  if (depth > kMaxDepth) {
    err = "nesting too deep (a cycle?)";
    return false;
  }
  if (!lua_checkstack(L, 8)) {
    err = "Lua stack exhausted";
    return false;
  }
  if (has_array_mt(L, idx)) return array_to_json(L, idx, out, err, depth);
  // Decide from the keys: all strings -> object; exactly 1..n -> array; empty -> object.
  lua_Integer count = 0, max = 0;
  bool all_strings = true, all_positive_ints = true;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    ++count;
    if (lua_type(L, -1) == LUA_TSTRING) {
      all_positive_ints = false;
    } else {
      all_strings = false;
      if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0)
        max = std::max(max, lua_tointeger(L, -1));
      else
        all_positive_ints = false;
    }
  }
  if (count > 0 && all_positive_ints) {
    if (max != count) {
      err = "cannot encode a sparse array as JSON (use keystead.null for holes)";
      return false;
    }
    return array_to_json(L, idx, out, err, depth);
  }
  if (!all_strings) {
    err = "cannot encode a table with mixed or non-string keys as JSON";
    return false;
  }
  out = Json::object();
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    size_t len = 0;
    const char* key = lua_tolstring(L, -2, &len);  // a string: no conversion in place
    Json v;
    if (!to_json(L, lua_gettop(L), v, err, depth + 1)) {
      lua_pop(L, 2);
      return false;
    }
    out[std::string(key, len)] = std::move(v);
    lua_pop(L, 1);
  }
  return true;
}

bool to_json(lua_State* L, int idx, Json& out, std::string& err, int depth) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      out = nullptr;
      return true;
    case LUA_TBOOLEAN:
      out = static_cast<bool>(lua_toboolean(L, idx));
      return true;
    case LUA_TNUMBER: {
      if (lua_isinteger(L, idx)) {
        out = static_cast<int64_t>(lua_tointeger(L, idx));
        return true;
      }
      const double d = lua_tonumber(L, idx);
      if (!std::isfinite(d)) {
        err = "cannot encode NaN or infinity as JSON";
        return false;
      }
      // Integral floats (10 / 2) are integers in JSON.
      if (d == std::floor(d) && std::fabs(d) < 9.2e18)
        out = static_cast<int64_t>(d);
      else
        out = d;
      return true;
    }
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      out = std::string(s, len);
      return true;
    }
    case LUA_TLIGHTUSERDATA:
      if (is_null(L, idx)) {
        out = nullptr;
        return true;
      }
      break;
    case LUA_TTABLE:
      return table_to_json(L, idx, out, err, depth);
    default:
      break;
  }
  err = std::string("cannot encode a ") + luaL_typename(L, idx) + " as JSON";
  return false;
}

// Pushes j; false when the Lua stack cannot grow (deeply nested JSON).
bool push_json(lua_State* L, const Json& j, int depth) {
  if (depth > kMaxDepth || !lua_checkstack(L, 4)) return false;
  switch (j.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      lua_pushlightuserdata(L, nullptr);
      return true;
    case Json::value_t::boolean:
      lua_pushboolean(L, j.get<bool>());
      return true;
    case Json::value_t::number_integer:
      lua_pushinteger(L, j.get<int64_t>());
      return true;
    case Json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX))
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      else
        lua_pushnumber(L, static_cast<lua_Number>(u));
      return true;
    }
    case Json::value_t::number_float:
      lua_pushnumber(L, j.get<double>());
      return true;
    case Json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      return true;
    }
    case Json::value_t::binary:
      lua_pushlightuserdata(L, nullptr);
      return true;
    case Json::value_t::array: {
      lua_createtable(L, static_cast<int>(std::min<size_t>(j.size(), INT32_MAX)), 0);
      luaL_setmetatable(L, kArrayMt);
      lua_Integer i = 0;
      for (const auto& v : j) {
        if (!push_json(L, v, depth + 1)) {
          lua_pop(L, 1);
          return false;
        }
        lua_rawseti(L, -2, ++i);
      }
      return true;
    }
    case Json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(std::min<size_t>(j.size(), INT32_MAX)));
      for (auto it = j.begin(); it != j.end(); ++it) {
        lua_pushlstring(L, it.key().data(), it.key().size());
        if (!push_json(L, it.value(), depth + 1)) {
          lua_pop(L, 2);
          return false;
        }
        lua_rawset(L, -3);
      }
      return true;
    }
  }
  return false;
}

// JSON text of the Lua value at idx; false with err set when it cannot be encoded.
bool encode(lua_State* L, int idx, std::string& text, std::string& err) {
  Json j;
  if (!to_json(L, lua_absindex(L, idx), j, err)) return false;
  try {
    text = j.dump();  // strict: throws on invalid UTF-8
  } catch (const std::exception&) {
    err = "cannot encode a string that is not valid UTF-8 as JSON";
    return false;
  }
  return true;
}

// Pushes the decoded JSON text (nil for ""); false when it is not JSON.
bool push_decoded(lua_State* L, const char* text) {
  if (!text || !*text) {
    lua_pushnil(L);
    return true;
  }
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return false;
  return push_json(L, j);
}

// ---- URLs --------------------------------------------------------------------------------------

void url_encode(std::string& out, const char* s, size_t len) {
  static const char* kHex = "0123456789ABCDEF";
  for (size_t i = 0; i < len; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

void url_encode(std::string& out, lua_State* L, int idx) {
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  url_encode(out, s, len);
}

// A query value (string, number or boolean) as text; false for other types. Does not convert
// the Lua value in place.
bool query_value(lua_State* L, int idx, std::string& out) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
      size_t len = 0;
      const char* s = lua_tolstring(L, idx, &len);
      out.assign(s, len);
      return true;
    }
    case LUA_TNUMBER: {
      if (lua_isinteger(L, idx)) {
        out = std::to_string(lua_tointeger(L, idx));
      } else {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", lua_tonumber(L, idx));
        out = buf;
      }
      return true;
    }
    case LUA_TBOOLEAN:
      out = lua_toboolean(L, idx) ? "true" : "false";
      return true;
    default:
      return false;
  }
}

// The query string for the table or string at idx (0: none); keys sorted. false with err set
// for a value that is not a string, number or boolean.
bool build_query(lua_State* L, int idx, std::string& out, std::string& err) {
  out.clear();
  if (idx == 0) return true;
  if (lua_type(L, idx) == LUA_TSTRING) {
    out = lua_tostring(L, idx);
    if (!out.empty() && out[0] == '?') out.erase(0, 1);
    return true;
  }
  std::vector<std::pair<std::string, std::string>> pairs;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      err = "query keys must be strings";
      return false;
    }
    std::string value;
    if (!query_value(L, -1, value)) {
      err = std::string("query value for '") + lua_tostring(L, -2) +
            "' must be a string, number or boolean";
      lua_pop(L, 2);
      return false;
    }
    size_t len = 0;
    const char* key = lua_tolstring(L, -2, &len);
    pairs.emplace_back(std::string(key, len), std::move(value));
    lua_pop(L, 1);
  }
  std::sort(pairs.begin(), pairs.end());
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out += '&';
    url_encode(out, k.data(), k.size());
    out += '=';
    url_encode(out, v.data(), v.size());
  }
  return true;
}

// ---- options -----------------------------------------------------------------------------------

enum OptBits : unsigned { kTenant = 1, kQuery = 2, kAudience = 4, kConnection = 8 };

struct Opts {
  const char* tenant = nullptr;
  const char* audience = nullptr;
  const char* connection = nullptr;
  int query = 0;  // stack index of opts.query, 0 when absent
};

// Reads the options table at `arg` (nil or absent: none). Raises argument errors for unknown
// keys and wrong types (before any C++ object exists). Strings stay referenced by the table.
Opts read_opts(lua_State* L, int arg, unsigned allowed) {
  Opts o;
  if (lua_isnoneornil(L, arg)) return o;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    const char* key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : nullptr;
    const bool nil = lua_isnil(L, -1);
    auto string_opt = [&](const char* name, unsigned bit, const char** dst) {
      if (!key || std::strcmp(key, name) != 0 || !(allowed & bit)) return false;
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "option '%s' must be a string", name));
      *dst = lua_tostring(L, -1);
      return true;
    };
    if (string_opt("tenant", kTenant, &o.tenant) ||
        string_opt("audience", kAudience, &o.audience) ||
        string_opt("connection", kConnection, &o.connection)) {
    } else if (key && std::strcmp(key, "query") == 0 && (allowed & kQuery)) {
      if (!nil && lua_type(L, -1) != LUA_TTABLE && lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, arg, "option 'query' must be a table or a string");
    } else {
      luaL_argerror(L, arg,
                    lua_pushfstring(L, "unknown option '%s'", key ? key : luaL_typename(L, -2)));
    }
    lua_pop(L, 1);
  }
  if (allowed & kQuery) {
    lua_getfield(L, arg, "query");
    if (lua_isnil(L, -1))
      lua_pop(L, 1);
    else
      o.query = lua_gettop(L);
  }
  return o;
}

// ---- the engine --------------------------------------------------------------------------------

Engine* check_engine(lua_State* L, int idx) {
  return static_cast<Engine*>(luaL_checkudata(L, idx, kEngineMt));
}

[[noreturn]] void raise_closed(lua_State* L) {
  push_error(L, KS_EINVALID, "the engine is closed");
  lua_error(L);
  std::abort();  // not reached
}

ks_engine* open_handle(lua_State* L, int idx) {
  Engine* e = check_engine(L, idx);
  if (!e->handle) raise_closed(L);
  return e->handle;
}

// Validates a body argument (nil, keystead.null, table, or JSON text).
void check_body(lua_State* L, int arg) {
  const int t = lua_type(L, arg);
  if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TTABLE && t != LUA_TSTRING && !is_null(L, arg))
    luaL_typeerror(L, arg, "table, string or nil");
}

// Runs a management call and pushes the decoded answer (nil for an empty one). `body_arg` is
// the stack index of the body (0: none); a string body is JSON text.
Outcome run_manage(lua_State* L, ks_engine* h, const char* method, const std::string& path,
                   int body_arg, const Json* body_json, const Opts& o, int query_arg_for_error) {
  std::string query, err, body;
  bool has_body = false;
  if (!build_query(L, o.query, query, err)) return arg_error(L, query_arg_for_error, err);
  if (body_json) {
    body = body_json->dump();
    has_body = true;
  } else if (body_arg && lua_type(L, body_arg) == LUA_TSTRING) {
    body = lua_tostring(L, body_arg);
    has_body = true;
  } else if (body_arg && lua_type(L, body_arg) == LUA_TTABLE) {
    if (!encode(L, body_arg, body, err)) return arg_error(L, body_arg, err);
    has_body = true;
  }
  std::string target = path;
  if (!query.empty()) target += (target.find('?') == std::string::npos ? '?' : '&') + query;
  char* out = nullptr;
  const int rc = ks_engine_manage(&out, h, o.tenant, method, target.c_str(),
                                  has_body ? body.c_str() : nullptr);
  if (rc != KS_OK) {
    push_error(L, rc, ks_last_error());
    return raise();
  }
  const bool ok = push_decoded(L, out);
  ks_free(out);
  if (!ok) {
    push_error(L, KS_ERROR, "the library answered with invalid JSON");
    return raise();
  }
  return results(1);
}

// Runs `fn` (which returns an Outcome) in a C++ scope that no exception leaves.
template <typename F>
Outcome guarded(lua_State* L, F&& fn) {
  char what[512] = "unknown error";
  try {
    return fn();
  } catch (const std::exception& e) {
    std::snprintf(what, sizeof what, "%s", e.what());
  } catch (...) {
  }
  push_error(L, KS_ERROR, what);
  return raise();
}

int l_version(lua_State* L) {
  lua_pushstring(L, ks_version());
  return 1;
}

int l_abi_version(lua_State* L) {
  lua_pushinteger(L, ks_abi_version());
  return 1;
}

int l_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
      luaL_getmetatable(L, kArrayMt);
      if (!lua_rawequal(L, -1, -2)) luaL_argerror(L, 1, "the table already has a metatable");
      lua_pop(L, 2);
    }
  }
  luaL_setmetatable(L, kArrayMt);
  return 1;
}

int l_open(lua_State* L) {
  const int t = lua_type(L, 1);
  if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TTABLE && t != LUA_TSTRING)
    luaL_typeerror(L, 1, "table, string or nil");
  lua_settop(L, 1);
  Engine* e = static_cast<Engine*>(lua_newuserdatauv(L, sizeof(Engine), 1));
  e->handle = nullptr;
  luaL_setmetatable(L, kEngineMt);
  lua_newtable(L);  // the collections, made on first use
  lua_setiuservalue(L, -2, 1);
  Outcome o = guarded(L, [&] {
    std::string config, err;
    if (t == LUA_TSTRING)
      config = lua_tostring(L, 1);
    else if (t == LUA_TTABLE && !encode(L, 1, config, err))
      return arg_error(L, 1, err);
    ks_engine* h = nullptr;
    const int rc = ks_engine_open(&h, config.empty() ? nullptr : config.c_str());
    if (rc != KS_OK) {
      push_error(L, rc, ks_last_error());
      return raise();
    }
    e->handle = h;
    return results(1);
  });
  return finish(L, o);
}

int l_engine_close(lua_State* L) {
  Engine* e = check_engine(L, 1);
  if (e->handle) {
    ks_engine* h = e->handle;
    e->handle = nullptr;
    ks_engine_close(h);
  }
  return 0;
}

int l_engine_tostring(lua_State* L) {
  Engine* e = check_engine(L, 1);
  lua_pushfstring(L, "keystead.Engine (%s)", e->handle ? "open" : "closed");
  return 1;
}

int l_engine_handle(lua_State* L) {
  ks_engine* h = open_handle(L, 1);
  const int t = lua_type(L, 2);
  if (t != LUA_TTABLE && t != LUA_TSTRING) luaL_typeerror(L, 2, "table or string");
  lua_settop(L, 2);
  Outcome o = guarded(L, [&] {
    std::string request, err;
    if (t == LUA_TSTRING)
      request = lua_tostring(L, 2);
    else if (!encode(L, 2, request, err))
      return arg_error(L, 2, err);
    char* out = nullptr;
    const int rc = ks_engine_handle(&out, h, request.c_str());
    if (rc != KS_OK) {
      push_error(L, rc, ks_last_error());
      return raise();
    }
    const bool ok = push_decoded(L, out);
    ks_free(out);
    if (!ok) {
      push_error(L, KS_ERROR, "the library answered with invalid JSON");
      return raise();
    }
    return results(1);
  });
  return finish(L, o);
}

// engine:manage(method, path, body, opts)
int l_engine_manage(lua_State* L) {
  ks_engine* h = open_handle(L, 1);
  const char* method = luaL_checkstring(L, 2);
  const char* path = luaL_checkstring(L, 3);
  check_body(L, 4);
  lua_settop(L, 5);
  const Opts opts = read_opts(L, 5, kTenant | kQuery);
  Outcome o = guarded(L, [&] { return run_manage(L, h, method, path, 4, nullptr, opts, 5); });
  return finish(L, o);
}

// engine:check_password(email, password, opts) -> user id
int l_engine_check_password(lua_State* L) {
  ks_engine* h = open_handle(L, 1);
  const char* email = luaL_checkstring(L, 2);
  const char* password = luaL_checkstring(L, 3);
  lua_settop(L, 4);
  const Opts opts = read_opts(L, 4, kTenant | kConnection);
  char* user_id = nullptr;
  const int rc = ks_password_check(&user_id, h, opts.tenant, opts.connection, email, password);
  if (rc != KS_OK) {
    push_error(L, rc, ks_last_error());
    return lua_error(L);
  }
  lua_pushstring(L, user_id ? user_id : "");
  ks_free(user_id);
  return 1;
}

// engine.<collection>: the collections are made on first use and kept in the uservalue.
int l_engine_index(lua_State* L) {
  check_engine(L, 1);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;  // a method
  if (lua_type(L, 2) != LUA_TSTRING) return 1;
  const char* key = lua_tostring(L, 2);
  for (const auto& kind : kKinds) {
    if (std::strcmp(key, kind.field) != 0) continue;
    lua_getiuservalue(L, 1, 1);
    if (lua_getfield(L, -1, key) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    Collection* c = static_cast<Collection*>(lua_newuserdatauv(L, sizeof(Collection), 1));
    c->path = kind.path;
    luaL_setmetatable(L, kind.mt);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, key);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

int l_engine_gc(lua_State* L) { return l_engine_close(L); }

// ---- collections -------------------------------------------------------------------------------

// The collection at idx and its engine's open handle (raises when the engine is closed).
// `mt` restricts it to one kind; nullptr accepts every Management API collection.
Collection* check_collection(lua_State* L, int idx, const char* mt, ks_engine** handle) {
  Collection* c = nullptr;
  if (mt) {
    c = static_cast<Collection*>(luaL_checkudata(L, idx, mt));
  } else {
    for (const char* name : {kCollectionMt, kUsersMt, kRolesMt, kOrganizationsMt})
      if ((c = static_cast<Collection*>(luaL_testudata(L, idx, name)))) break;
    if (!c) luaL_typeerror(L, idx, "keystead collection");
  }
  lua_getiuservalue(L, idx, 1);
  Engine* e = static_cast<Engine*>(luaL_checkudata(L, -1, kEngineMt));
  lua_pop(L, 1);
  if (!e->handle) raise_closed(L);
  *handle = e->handle;
  return c;
}

// path + "/" + url-encoded string argument `arg`
std::string item_path(lua_State* L, const char* base, int arg) {
  std::string p = base;
  p += '/';
  url_encode(p, L, arg);
  return p;
}

int l_coll_list(lua_State* L) {
  ks_engine* h;
  Collection* c = check_collection(L, 1, nullptr, &h);
  lua_settop(L, 2);
  const Opts opts = read_opts(L, 2, kTenant | kQuery);
  return finish(L,
                guarded(L, [&] { return run_manage(L, h, "GET", c->path, 0, nullptr, opts, 2); }));
}

int l_coll_get(lua_State* L) {
  ks_engine* h;
  Collection* c = check_collection(L, 1, nullptr, &h);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kQuery);
  return finish(L, guarded(L, [&] {
                  return run_manage(L, h, "GET", item_path(L, c->path, 2), 0, nullptr, opts, 3);
                }));
}

int l_coll_create(lua_State* L) {
  ks_engine* h;
  Collection* c = check_collection(L, 1, nullptr, &h);
  check_body(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kQuery);
  return finish(L,
                guarded(L, [&] { return run_manage(L, h, "POST", c->path, 2, nullptr, opts, 3); }));
}

int l_coll_update(lua_State* L) {
  ks_engine* h;
  Collection* c = check_collection(L, 1, nullptr, &h);
  luaL_checkstring(L, 2);
  check_body(L, 3);
  lua_settop(L, 4);
  const Opts opts = read_opts(L, 4, kTenant | kQuery);
  return finish(L, guarded(L, [&] {
                  return run_manage(L, h, "PATCH", item_path(L, c->path, 2), 3, nullptr, opts, 4);
                }));
}

int l_coll_delete(lua_State* L) {
  ks_engine* h;
  Collection* c = check_collection(L, 1, nullptr, &h);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kQuery);
  return finish(L, guarded(L, [&] {
                  return run_manage(L, h, "DELETE", item_path(L, c->path, 2), 0, nullptr, opts, 3);
                }));
}

int l_coll_tostring(lua_State* L) {
  Collection* c = static_cast<Collection*>(lua_touserdata(L, 1));
  lua_pushfstring(L, "keystead collection %s", c && c->path ? c->path : "tokens");
  return 1;
}

// The table at `arg` as a JSON array of strings (ids), wrapped as {member: [...]}; false with
// err set otherwise.
bool id_list_body(lua_State* L, int arg, const char* member, Json& out, std::string& err) {
  Json list;
  if (!to_json(L, arg, list, err)) return false;
  if (list.is_object() && list.empty()) list = Json::array();
  if (!list.is_array()) {
    err = "expected a list of ids";
    return false;
  }
  for (const auto& v : list)
    if (!v.is_string()) {
      err = "expected a list of string ids";
      return false;
    }
  out = Json{{member, std::move(list)}};
  return true;
}

// Shared by the association writes: POST/DELETE `path` with {member: [ids at arg]}.
int association(lua_State* L, const char* method, ks_engine* h, int list_arg, const char* member,
                int opts_arg, std::string (*make_path)(lua_State*)) {
  luaL_checktype(L, list_arg, LUA_TTABLE);
  lua_settop(L, opts_arg);
  const Opts opts = read_opts(L, opts_arg, kTenant);
  return finish(L, guarded(L, [&] {
                  Json body;
                  std::string err;
                  if (!id_list_body(L, list_arg, member, body, err))
                    return arg_error(L, list_arg, err);
                  return run_manage(L, h, method, make_path(L), 0, &body, opts, opts_arg);
                }));
}

// users:roles(user_id, opts)
int l_users_roles(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kUsersMt, &h);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kQuery);
  return finish(L, guarded(L, [&] {
                  return run_manage(L, h, "GET", item_path(L, "/users", 2) + "/roles", 0, nullptr,
                                    opts, 3);
                }));
}

// users:assign_roles(user_id, {role ids}, opts)
int l_users_assign_roles(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kUsersMt, &h);
  luaL_checkstring(L, 2);
  return association(L, "POST", h, 3, "roles", 4,
                     [](lua_State* L) { return item_path(L, "/users", 2) + "/roles"; });
}

// roles:add_permissions(role_id, {{resource_server_identifier=, permission_name=}, ...}, opts)
int l_roles_add_permissions(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kRolesMt, &h);
  luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  const Opts opts = read_opts(L, 4, kTenant);
  return finish(L, guarded(L, [&] {
                  Json list;
                  std::string err;
                  if (!to_json(L, 3, list, err)) return arg_error(L, 3, err);
                  if (list.is_object() && list.empty()) list = Json::array();
                  if (!list.is_array()) return arg_error(L, 3, "expected a list of permissions");
                  Json body = {{"permissions", std::move(list)}};
                  return run_manage(L, h, "POST", item_path(L, "/roles", 2) + "/permissions", 0,
                                    &body, opts, 4);
                }));
}

// organizations:get_by_name(name, opts)
int l_orgs_get_by_name(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kOrganizationsMt, &h);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kQuery);
  return finish(L, guarded(L, [&] {
                  return run_manage(L, h, "GET", item_path(L, "/organizations/name", 2), 0, nullptr,
                                    opts, 3);
                }));
}

// organizations:members(org_id, opts)
int l_orgs_members(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kOrganizationsMt, &h);
  luaL_checkstring(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kQuery);
  return finish(L, guarded(L, [&] {
                  return run_manage(L, h, "GET", item_path(L, "/organizations", 2) + "/members", 0,
                                    nullptr, opts, 3);
                }));
}

std::string org_members_path(lua_State* L) {
  return item_path(L, "/organizations", 2) + "/members";
}

// organizations:add_members(org_id, {user ids}, opts)
int l_orgs_add_members(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kOrganizationsMt, &h);
  luaL_checkstring(L, 2);
  return association(L, "POST", h, 3, "members", 4, org_members_path);
}

// organizations:remove_members(org_id, {user ids}, opts)
int l_orgs_remove_members(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kOrganizationsMt, &h);
  luaL_checkstring(L, 2);
  return association(L, "DELETE", h, 3, "members", 4, org_members_path);
}

// organizations:add_member_roles(org_id, user_id, {role ids}, opts)
int l_orgs_add_member_roles(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kOrganizationsMt, &h);
  luaL_checkstring(L, 2);
  luaL_checkstring(L, 3);
  return association(L, "POST", h, 4, "roles", 5, [](lua_State* L) {
    std::string p = item_path(L, "/organizations", 2) + "/members/";
    url_encode(p, L, 3);
    return p + "/roles";
  });
}

// tokens:issue(params, opts) -> token response
int l_tokens_issue(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kTokensMt, &h);
  const int t = lua_type(L, 2);
  if (t != LUA_TTABLE && t != LUA_TSTRING) luaL_typeerror(L, 2, "table or string");
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant);
  return finish(L, guarded(L, [&] {
                  std::string params, err;
                  if (t == LUA_TSTRING)
                    params = lua_tostring(L, 2);
                  else if (!encode(L, 2, params, err))
                    return arg_error(L, 2, err);
                  char* out = nullptr;
                  const int rc = ks_token_issue(&out, h, opts.tenant, params.c_str());
                  if (rc != KS_OK) {
                    push_error(L, rc, ks_last_error());
                    return raise();
                  }
                  const bool ok = push_decoded(L, out);
                  ks_free(out);
                  if (!ok) {
                    push_error(L, KS_ERROR, "the library answered with invalid JSON");
                    return raise();
                  }
                  return results(1);
                }));
}

// tokens:verify(token, opts) -> claims
int l_tokens_verify(lua_State* L) {
  ks_engine* h;
  check_collection(L, 1, kTokensMt, &h);
  const char* token = luaL_checkstring(L, 2);
  lua_settop(L, 3);
  const Opts opts = read_opts(L, 3, kTenant | kAudience);
  char* out = nullptr;
  const int rc = ks_token_verify(&out, h, token, opts.tenant, opts.audience);
  if (rc != KS_OK) {
    push_error(L, rc, ks_last_error());
    return lua_error(L);
  }
  return finish(L, guarded(L, [&] {
                  const bool ok = push_decoded(L, out);
                  ks_free(out);
                  if (!ok) {
                    push_error(L, KS_ERROR, "the library answered with invalid JSON");
                    return raise();
                  }
                  return results(1);
                }));
}

// ---- registration ------------------------------------------------------------------------------

const luaL_Reg kCollectionMethods[] = {
    {"list", l_coll_list},     {"get", l_coll_get},       {"create", l_coll_create},
    {"update", l_coll_update}, {"delete", l_coll_delete}, {nullptr, nullptr},
};
const luaL_Reg kUsersMethods[] = {
    {"roles", l_users_roles}, {"assign_roles", l_users_assign_roles}, {nullptr, nullptr}};
const luaL_Reg kRolesMethods[] = {{"add_permissions", l_roles_add_permissions}, {nullptr, nullptr}};
const luaL_Reg kOrganizationsMethods[] = {
    {"get_by_name", l_orgs_get_by_name},           {"members", l_orgs_members},
    {"add_members", l_orgs_add_members},           {"remove_members", l_orgs_remove_members},
    {"add_member_roles", l_orgs_add_member_roles}, {nullptr, nullptr},
};
const luaL_Reg kTokensMethods[] = {
    {"issue", l_tokens_issue}, {"verify", l_tokens_verify}, {nullptr, nullptr}};

// A collection metatable: __index holds the generic methods (unless `generic` is false) and
// `extra`.
void new_collection_mt(lua_State* L, const char* name, bool generic, const luaL_Reg* extra) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  if (generic) luaL_setfuncs(L, kCollectionMethods, 0);
  if (extra) luaL_setfuncs(L, extra, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_coll_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "keystead collection");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int luaopen_keystead(lua_State* L) {
  luaL_checkversion(L);
  // keystead.array: the marker of JSON arrays.
  luaL_newmetatable(L, kArrayMt);
  lua_pop(L, 1);
  // keystead.Error
  luaL_newmetatable(L, kErrorMt);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  // keystead.Engine
  luaL_newmetatable(L, kEngineMt);
  static const luaL_Reg engine_methods[] = {
      {"close", l_engine_close},   {"handle", l_engine_handle},
      {"manage", l_engine_manage}, {"check_password", l_engine_check_password},
      {nullptr, nullptr},
  };
  luaL_newlib(L, engine_methods);
  lua_pushcclosure(L, l_engine_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_engine_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_engine_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, l_engine_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  new_collection_mt(L, kCollectionMt, true, nullptr);
  new_collection_mt(L, kUsersMt, true, kUsersMethods);
  new_collection_mt(L, kRolesMt, true, kRolesMethods);
  new_collection_mt(L, kOrganizationsMt, true, kOrganizationsMethods);
  new_collection_mt(L, kTokensMt, false, kTokensMethods);

  static const luaL_Reg functions[] = {
      {"version", l_version}, {"abi_version", l_abi_version}, {"array", l_array}, {"open", l_open},
      {nullptr, nullptr},
  };
  luaL_newlib(L, functions);
  lua_pushlightuserdata(L, nullptr);
  lua_setfield(L, -2, "null");
  static const std::pair<const char*, int> codes[] = {
      {"OK", KS_OK},
      {"ERROR", KS_ERROR},
      {"EINVALID", KS_EINVALID},
      {"ENOTFOUND", KS_ENOTFOUND},
      {"EEXISTS", KS_EEXISTS},
      {"EAUTH", KS_EAUTH},
      {"EFORBIDDEN", KS_EFORBIDDEN},
      {"EUSER", KS_EUSER},
  };
  for (const auto& [name, code] : codes) {
    lua_pushinteger(L, code);
    lua_setfield(L, -2, name);
  }
  luaL_getmetatable(L, kErrorMt);
  lua_setfield(L, -2, "Error");
  return 1;
}
