// The `api` tables scripts receive, and the JSON <-> Lua conversions.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>

#include "hooks/sandbox.h"

namespace ks::hooks::detail {
namespace {

constexpr int kMaxEventDepth = 64;  // event JSON nesting pushed into Lua
constexpr int kMaxValueDepth = 32;  // table nesting a claim or metadata value may have

// Length of the valid UTF-8 sequence starting s[0] (n bytes available), 0 if invalid.
size_t utf8_sequence(const unsigned char* s, size_t n) {
  const unsigned c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((s[k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[k] & 0x3F);
  }
  if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
  if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
  return len;
}

// An event's empty JSON array becomes an empty table carrying this locked metatable, so that it
// becomes [] again when a script passes it on (a claim set to event.authorization.roles of a user
// without roles), where any other empty table is {}.
const char kEmptyArrayKey = 0;

void mark_empty_array(lua_State* L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kEmptyArrayKey) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");  // getmetatable() is false; setmetatable() refused
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kEmptyArrayKey);
  }
  lua_setmetatable(L, -2);
}

bool is_empty_array(lua_State* L, int idx) {
  if (!lua_getmetatable(L, idx)) return false;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kEmptyArrayKey);
  const bool marked = lua_rawequal(L, -1, -2) != 0;
  lua_pop(L, 2);
  return marked;
}

// Converts a Lua value to JSON without raising (the caller raises once its C++ objects are
// gone). Tables whose keys are exactly 1..n become arrays, tables with only string keys objects
// (an empty table is {}); functions, userdata, threads, cycles, non-finite numbers and invalid
// UTF-8 are refused. Each node is charged to the instruction budget and its size to the memory
// cap, so converting a huge or exponentially shared structure stops at a limit.
class ToJson {
 public:
  ToJson(lua_State* L, Meter& m, char* err, size_t errsz)
      : L_(L), m_(m), err_(err), errsz_(errsz) {}

  bool convert(int idx, Json& out) {
    idx = lua_absindex(L_, idx);
    if (!try_charge(m_, 1) || !try_hold(m_, sizeof(Json) + 16)) return limit();
    const int type = lua_type(L_, idx);
    switch (type) {
      case LUA_TNONE:
      case LUA_TNIL:
        out = nullptr;
        return true;
      case LUA_TBOOLEAN:
        out = lua_toboolean(L_, idx) != 0;
        return true;
      case LUA_TNUMBER: {
        if (lua_isinteger(L_, idx)) {
          out = static_cast<int64_t>(lua_tointeger(L_, idx));
          return true;
        }
        const double d = lua_tonumber(L_, idx);
        if (!std::isfinite(d)) return fail("numbers must be finite");
        out = d;
        return true;
      }
      case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(L_, idx, &n);
        if (!valid_utf8(std::string_view(s, n))) return fail("strings must be valid UTF-8");
        if (!try_hold(m_, n)) return limit();
        out = std::string(s, n);
        return true;
      }
      case LUA_TTABLE:
        return table(idx, out);
      default:
        std::snprintf(err_, errsz_, "a %s value cannot be stored as JSON", lua_typename(L_, type));
        return false;
    }
  }

 private:
  bool fail(const char* msg) {
    std::snprintf(err_, errsz_, "%s", msg);
    return false;
  }
  bool limit() { return fail(failure_text(m_.failure)); }

  bool table(int idx, Json& out) {
    const void* self = lua_topointer(L_, idx);
    for (int i = 0; i < depth_; ++i) {
      if (path_[i] == self) return fail("a table that contains itself cannot be stored as JSON");
    }
    if (depth_ == kMaxValueDepth || !lua_checkstack(L_, 4)) return fail("tables nested too deeply");
    path_[depth_++] = self;
    // First pass: are the keys exactly 1..n, or all strings?
    size_t count = 0;
    bool all_int = true, all_str = true;
    lua_Integer max = 0;
    lua_pushnil(L_);
    while (lua_next(L_, idx)) {
      lua_pop(L_, 1);
      ++count;
      if (!try_charge(m_, 1)) {
        lua_pop(L_, 1);
        return limit();
      }
      if (lua_type(L_, -1) == LUA_TSTRING) {
        all_int = false;
      } else {
        all_str = false;
        if (lua_isinteger(L_, -1) && lua_tointeger(L_, -1) >= 1) {
          max = std::max(max, lua_tointeger(L_, -1));
        } else {
          all_int = false;
        }
      }
    }
    bool ok = true;
    if (count == 0) {
      out = is_empty_array(L_, idx) ? Json::array() : Json::object();
    } else if (all_int && static_cast<size_t>(max) == count) {
      out = Json::array();
      for (lua_Integer i = 1; ok && i <= max; ++i) {
        lua_rawgeti(L_, idx, i);
        Json v;
        ok = convert(-1, v);
        lua_pop(L_, 1);
        if (ok) out.push_back(std::move(v));
      }
    } else if (all_str) {
      out = Json::object();
      lua_pushnil(L_);
      while (lua_next(L_, idx)) {
        size_t kl = 0;
        const char* k = lua_tolstring(L_, -2, &kl);  // a string key: no conversion
        Json v;
        ok =
            valid_utf8(std::string_view(k, kl)) ? convert(-1, v) : fail("keys must be valid UTF-8");
        lua_pop(L_, 1);
        if (ok && !try_hold(m_, kl)) ok = limit();
        if (!ok) {
          lua_pop(L_, 1);
          break;
        }
        out[std::string(k, kl)] = std::move(v);
      }
    } else {
      ok = fail(
          "a table must have only string keys (an object) or exactly the keys 1..n (an array)");
    }
    --depth_;
    return ok;
  }

  lua_State* L_;
  Meter& m_;
  char* err_;
  size_t errsz_;
  const void* path_[kMaxValueDepth] = {};
  int depth_ = 0;
};

RunContext& context(lua_State* L) {
  RunContext* rc = sandbox_of(L).run_context();
  if (!rc) luaL_error(L, "no hook run in progress");
  return *rc;
}

// Converts argument 2 and stores it under `key` in `target` (a JSON null for nil when
// keep_null, otherwise nil removes the key); raises on a bad value or a limit.
int store(lua_State* L, const char* fname, Json Outcome::*target, bool keep_null) {
  size_t len = 0;
  const char* key = luaL_checklstring(L, 1, &len);
  if (len == 0 || !valid_utf8(std::string_view(key, len))) {
    return luaL_argerror(L, 1, "must be a non-empty UTF-8 string");
  }
  RunContext& rc = context(L);
  Meter& m = sandbox_of(L).meter();
  char err[200] = {};
  {
    try {
      Json v;
      ToJson conv(L, m, err, sizeof err);
      if (conv.convert(2, v)) {
        Json& obj = rc.out->*target;
        std::string k(key, len);
        if (v.is_null() && !keep_null) {
          obj.erase(k);
        } else {
          obj[std::move(k)] = std::move(v);
        }
      }
    } catch (...) {
      std::snprintf(err, sizeof err, "not enough memory");
    }
  }
  if (m.failure != Failure::kNone) return raise_failure(L, m);
  if (err[0]) return luaL_error(L, "%s: %s", fname, err);
  return 0;
}

int set_claim(lua_State* L, Json Outcome::*claims) {
  size_t len = 0;
  const char* name = luaL_checklstring(L, 1, &len);
  const std::string_view sv(name, len);
  for (std::string_view reserved : kReservedClaims) {
    if (sv == reserved) return luaL_error(L, "claim '%s' is reserved and cannot be set", name);
  }
  return store(L, "setCustomClaim", claims, false);
}

int api_access_claim(lua_State* L) { return set_claim(L, &Outcome::access_token_claims); }
int api_id_claim(lua_State* L) { return set_claim(L, &Outcome::id_token_claims); }

// Records the reason (the first deny of a run wins) and returns: the script runs on to its end,
// as an Auth0 Action does, but no later script runs and the run's outcome is denied.
int api_deny(lua_State* L) {
  size_t len = 0;
  const char* reason = luaL_optlstring(L, 1, "access denied", &len);
  RunContext& rc = context(L);
  bool oom = false;
  try {
    if (!rc.out->denied) rc.out->denied = clean_text(std::string_view(reason, len), kMaxTextBytes);
  } catch (...) {
    oom = true;
  }
  if (oom) return luaL_error(L, "not enough memory");
  return 0;
}

int set_metadata(lua_State* L, Json Outcome::*target, const char* fname) {
  const int r = store(L, fname, target, true);
  context(L).metadata_changed = true;
  return r;
}

int api_app_metadata(lua_State* L) {
  return set_metadata(L, &Outcome::app_metadata, "setAppMetadata");
}
int api_user_metadata(lua_State* L) {
  return set_metadata(L, &Outcome::user_metadata, "setUserMetadata");
}

// Pushes a read-only table holding one function.
void push_namespace(lua_State* L, const char* fname, lua_CFunction fn, const char* fname2 = nullptr,
                    lua_CFunction fn2 = nullptr) {
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, fname);
  if (fname2) {
    lua_pushcfunction(L, fn2);
    lua_setfield(L, -2, fname2);
  }
  make_read_only(L);
}

}  // namespace

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    const size_t l = utf8_sequence(p + i, s.size() - i);
    if (l == 0) return false;
    i += l;
  }
  return true;
}

std::string clean_text(std::string_view s, size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  size_t i = 0;
  while (i < s.size()) {
    const size_t l = utf8_sequence(p + i, s.size() - i);
    const std::string_view piece = l ? s.substr(i, l) : kReplacement;
    if (out.size() + piece.size() > max_bytes) break;
    out.append(piece);
    i += l ? l : 1;
  }
  return out;
}

void push_new_api(lua_State* L, Trigger t) {
  const bool post_login = t == Trigger::kPostLogin;
  const bool exchange = t == Trigger::kCredentialsExchange;
  const bool pre_registration = t == Trigger::kPreUserRegistration;
  lua_createtable(L, 0, 4);
  if (post_login || exchange) {
    push_namespace(L, "setCustomClaim", api_access_claim);
    lua_setfield(L, -2, "accessToken");
  }
  if (post_login) {
    push_namespace(L, "setCustomClaim", api_id_claim);
    lua_setfield(L, -2, "idToken");
  }
  if (post_login || exchange || pre_registration) {
    push_namespace(L, "deny", api_deny);
    lua_setfield(L, -2, "access");
  }
  if (post_login || pre_registration) {
    push_namespace(L, "setAppMetadata", api_app_metadata, "setUserMetadata", api_user_metadata);
    lua_setfield(L, -2, "user");
  }
  make_read_only(L);
}

void push_json(lua_State* L, const Json& j, int depth) {
  switch (j.type()) {
    case Json::value_t::boolean:
      lua_pushboolean(L, *j.get_ptr<const Json::boolean_t*>());
      return;
    case Json::value_t::number_integer:
      lua_pushinteger(L, *j.get_ptr<const Json::number_integer_t*>());
      return;
    case Json::value_t::number_unsigned: {
      const auto u = *j.get_ptr<const Json::number_unsigned_t*>();
      if (u <= static_cast<Json::number_unsigned_t>(LUA_MAXINTEGER)) {
        lua_pushinteger(L, static_cast<lua_Integer>(u));
      } else {
        lua_pushnumber(L, static_cast<lua_Number>(u));
      }
      return;
    }
    case Json::value_t::number_float:
      lua_pushnumber(L, *j.get_ptr<const Json::number_float_t*>());
      return;
    case Json::value_t::string: {
      const auto* s = j.get_ptr<const Json::string_t*>();
      lua_pushlstring(L, s->data(), s->size());
      return;
    }
    case Json::value_t::array: {
      if (depth >= kMaxEventDepth) luaL_error(L, "event nested too deeply");
      luaL_checkstack(L, 3, "event nested too deeply");
      const auto* a = j.get_ptr<const Json::array_t*>();
      lua_createtable(L, static_cast<int>(std::min<size_t>(a->size(), INT_MAX)), 0);
      if (a->empty()) mark_empty_array(L);
      lua_Integer i = 0;
      for (const Json& e : *a) {
        push_json(L, e, depth + 1);  // null leaves a hole
        lua_rawseti(L, -2, ++i);
      }
      return;
    }
    case Json::value_t::object: {
      if (depth >= kMaxEventDepth) luaL_error(L, "event nested too deeply");
      luaL_checkstack(L, 3, "event nested too deeply");
      const auto* o = j.get_ptr<const Json::object_t*>();
      lua_createtable(L, 0, static_cast<int>(std::min<size_t>(o->size(), INT_MAX)));
      for (const auto& [k, v] : *o) {
        if (v.is_null()) continue;
        lua_pushlstring(L, k.data(), k.size());
        push_json(L, v, depth + 1);
        lua_rawset(L, -3);
      }
      return;
    }
    default:
      lua_pushnil(L);
      return;
  }
}

}  // namespace ks::hooks::detail
