#include "hooks/sandbox.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace ks::hooks::detail {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kClockEvery = 4096;        // charge(): units of work between two clock reads
constexpr size_t kBigAllocation = 64u << 10;  // the allocator reads the clock for requests this big
constexpr size_t kGcSlack = 1u << 20;         // see begin_call

// The state's allocator: tracks the heap and, while a call runs, refuses growth past the call's
// cap (Lua then raises a memory error, after one emergency collection and retry for most
// requests). Large requests also check the wall clock, so C functions that copy big strings in a
// loop cannot outrun the deadline between two count-hook calls.
void* sandbox_alloc(void* ud, void* ptr, size_t osize, size_t nsize) {
  Meter& m = *static_cast<Meter*>(ud);
  const size_t old = ptr ? osize : 0;  // with ptr == NULL, osize encodes the object type
  if (nsize == 0) {
    std::free(ptr);
    m.heap -= old;
    return nullptr;
  }
  if (nsize > old && m.active) {
    const size_t grow = nsize - old;
    if (m.heap + m.external + grow > m.limit) {
      // Lua retries most failed requests once after an emergency full collection; a refused
      // retry (or a request bigger than the whole allowance) means the call really holds too
      // much. A first refusal may only be garbage not yet collected.
      const bool retry = ptr == m.refused_ptr && nsize == m.refused_size;
      if ((retry || grow > m.max_memory) && m.failure == Failure::kNone) {
        m.failure = Failure::kMemory;
      }
      ++m.refusals;
      m.refused_ptr = ptr;
      m.refused_size = nsize;
      return nullptr;
    }
    if (grow >= kBigAllocation) {
      if (m.failure == Failure::kNone && Clock::now() >= m.deadline) m.failure = Failure::kTime;
      if (m.failure != Failure::kNone) return nullptr;
    }
  }
  void* p = std::realloc(ptr, nsize);
  if (!p) return nsize <= old ? ptr : nullptr;  // Lua relies on shrinking never failing
  m.heap = m.heap - old + nsize;
  m.refused_size = 0;
  return p;
}

void count_hook(lua_State* L, lua_Debug*) {
  Meter& m = sandbox_of(L).meter();
  if (!m.active) return;
  if (m.failure == Failure::kNone) {
    m.used += static_cast<uint64_t>(m.hook_count);
    if (m.used > m.max_instructions) {
      m.failure = Failure::kInstructions;
    } else if (Clock::now() >= m.deadline) {
      m.failure = Failure::kTime;
    }
  }
  if (m.failure != Failure::kNone) raise_failure(L, m);
}

// What call_script needs; trivially destructible (call_script may longjmp).
struct CallArgs {
  int chunk_ref;
  int env_mt_ref;
  int api_ref;
  Trigger trigger;
  const Json* event;
  bool sync = true;
};

void push_field(lua_State* L, const Json& j, const char* key) {
  if (j.is_object()) {
    auto it = j.find(key);
    if (it != j.end()) {
      push_json(L, *it, 1);
      return;
    }
  }
  lua_pushnil(L);
}

// Runs one script in protected mode: a fresh env over the shared base, the chunk's top level
// (which defines the entry point), then the entry point.
int call_script(lua_State* L) {
  auto* a = static_cast<CallArgs*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  lua_createtable(L, 0, 4);  // 1: env
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->env_mt_ref);
  lua_setmetatable(L, 1);
  lua_pushliteral(L, "_G");
  lua_pushvalue(L, 1);
  lua_rawset(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->chunk_ref);  // 2: the cached main chunk
  lua_pushvalue(L, 1);
  lua_setupvalue(L, 2, 1);  // a main chunk's only upvalue is _ENV
  lua_call(L, 0, 0);

  const std::string_view entry = entry_point(a->trigger);
  lua_pushlstring(L, entry.data(), entry.size());
  const int type = lua_rawget(L, 1);
  if (type == LUA_TNIL) return 0;  // the script does not handle this trigger
  if (type != LUA_TFUNCTION) {
    return luaL_error(L, "%s is a %s, not a function", entry.data(), lua_typename(L, type));
  }
  if (a->trigger == Trigger::kSyncFilter) {
    push_field(L, *a->event, "kind");
    push_field(L, *a->event, "entity");
    push_field(L, *a->event, "targetTenant");
    lua_call(L, 3, 1);
    if (!lua_isboolean(L, -1)) {
      return luaL_error(L, "shouldSync must return a boolean, not %s", luaL_typename(L, -1));
    }
    a->sync = lua_toboolean(L, -1);
  } else {
    push_json(L, *a->event);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->api_ref);
    lua_call(L, 2, 0);
  }
  return 0;
}

// A message for a non-string error object; __tostring runs under the call's limits.
int describe_error(lua_State* L) {
  if (luaL_callmeta(L, 1, "__tostring")) {
    if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "'__tostring' must return a string");
    return 1;
  }
  if (lua_type(L, 1) == LUA_TNUMBER) {
    luaL_tolstring(L, 1, nullptr);
    return 1;
  }
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

void apply_metadata(Json& event, const Outcome& out) {
  if (!event.is_object()) return;
  auto user = event.find("user");
  if (user == event.end() || !user->is_object()) return;
  auto apply = [&](const char* field, const Json& changes) {
    if (changes.empty()) return;
    Json& md = (*user)[field];
    if (!md.is_object()) md = Json::object();
    for (auto it = changes.begin(); it != changes.end(); ++it) {
      if (it->is_null()) {
        md.erase(it.key());
      } else {
        md[it.key()] = *it;
      }
    }
  };
  apply("app_metadata", out.app_metadata);
  apply("user_metadata", out.user_metadata);
}

}  // namespace

const char* failure_text(Failure f) {
  switch (f) {
    case Failure::kInstructions:
      return "instruction budget exceeded";
    case Failure::kMemory:
      return "memory limit exceeded";
    case Failure::kTime:
      return "time limit exceeded";
    case Failure::kNone:
      break;
  }
  return "no limit exceeded";
}

bool try_charge(Meter& m, uint64_t n) {
  if (!m.active) return true;
  if (m.failure == Failure::kNone) {
    m.used += n;
    if (m.used > m.max_instructions) {
      m.failure = Failure::kInstructions;
    } else if (m.used >= m.next_clock_check) {
      m.next_clock_check = m.used + kClockEvery;
      if (Clock::now() >= m.deadline) m.failure = Failure::kTime;
    }
  }
  return m.failure == Failure::kNone;
}

bool try_hold(Meter& m, size_t bytes) {
  if (!m.active) return true;
  m.external += bytes;
  if (m.failure == Failure::kNone && m.heap + m.external > m.limit) m.failure = Failure::kMemory;
  return m.failure == Failure::kNone;
}

void charge(lua_State* L, uint64_t n) {
  Meter& m = sandbox_of(L).meter();
  if (!try_charge(m, n)) raise_failure(L, m);
}

int raise_failure(lua_State* L, Meter& m) {
  if (!m.every_instruction) {
    m.every_instruction = true;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  }
  return luaL_error(L, "%s", failure_text(m.failure));
}

Sandbox& sandbox_of(lua_State* L) {
  Sandbox* sb;
  std::memcpy(&sb, lua_getextraspace(L), sizeof sb);
  return *sb;
}

// Builds the shared base and the api tables (protected mode; arg 1 is the Sandbox).
int init_state(lua_State* L) {
  Sandbox& sb = *static_cast<Sandbox*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  open_sandbox(L);
  sb.env_mt_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  for (Trigger t : kTriggers) {
    push_new_api(L, t);
    sb.api_refs_[static_cast<size_t>(t)] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

Sandbox::Sandbox(const Limits& limits) : limits_(limits) {
  meter_.max_instructions = limits.max_instructions;
  meter_.max_memory = limits.max_memory_bytes;
  meter_.hook_count = static_cast<int>(std::clamp<uint64_t>(limits.max_instructions, 1, 1000));
  L_ = lua_newstate(sandbox_alloc, &meter_);
  if (!L_) throw std::bad_alloc();
  static_assert(LUA_EXTRASPACE >= sizeof(Sandbox*));
  Sandbox* self = this;
  std::memcpy(lua_getextraspace(L_), &self, sizeof self);
  lua_pushcfunction(L_, init_state);
  lua_pushlightuserdata(L_, this);
  if (lua_pcall(L_, 1, 0, 0) != LUA_OK) {
    const char* msg = lua_tostring(L_, -1);
    std::string what = std::string("hooks: cannot set up a Lua state: ") + (msg ? msg : "?");
    lua_close(L_);
    L_ = nullptr;
    throw std::runtime_error(what);
  }
  lua_gc(L_, LUA_GCCOLLECT);
  idle_heap_ = meter_.heap;
}

Sandbox::~Sandbox() {
  if (L_) lua_close(L_);
}

std::optional<std::string> Sandbox::compile_error(std::string_view code) {
  std::optional<std::string> err;
  if (luaL_loadbufferx(L_, code.data(), code.size(), "hook", "t") != LUA_OK) {
    size_t n = 0;
    const char* s = lua_tolstring(L_, -1, &n);
    err = s ? std::string(s, n) : std::string("cannot compile");
  }
  lua_settop(L_, 0);
  return err;
}

const Sandbox::Compiled& Sandbox::compiled(const std::shared_ptr<const Script>& source) {
  const Script& script = *source;
  auto compile = [&](Compiled& c) {
    c.source = source;
    c.ref = LUA_NOREF;
    c.error.clear();
    if (luaL_loadbufferx(L_, script.code.data(), script.code.size(), "hook", "t") == LUA_OK) {
      c.ref = luaL_ref(L_, LUA_REGISTRYINDEX);
    } else {
      size_t n = 0;
      const char* s = lua_tolstring(L_, -1, &n);
      c.error = s ? std::string(s, n) : std::string("cannot compile");
      lua_settop(L_, 0);
    }
  };
  // (tenant, id) with the tenant's length first, so no two pairs share a key.
  const size_t n = script.tenant.size();
  key_.assign(reinterpret_cast<const char*>(&n), sizeof n);
  key_.append(script.tenant);
  key_.append(script.id);
  if (auto it = index_.find(key_); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    Compiled& c = it->second->second;
    // Valid only while the code is byte-for-byte the same (the same immutable Script, or an equal
    // copy of it, which then replaces the one held).
    if (c.source == source) return c;
    if (c.source->code == script.code) {
      c.source = source;
      return c;
    }
    if (c.ref != LUA_NOREF) luaL_unref(L_, LUA_REGISTRYINDEX, c.ref);
    c.ref = LUA_NOREF;
    compile(c);
    return c;
  }
  lru_.emplace_front(key_, Compiled{});
  try {
    index_.emplace(key_, lru_.begin());
  } catch (...) {
    lru_.pop_front();
    throw;
  }
  compile(lru_.front().second);
  while (lru_.size() > kCacheEntries) {
    auto& victim = lru_.back();
    if (victim.second.ref != LUA_NOREF) luaL_unref(L_, LUA_REGISTRYINDEX, victim.second.ref);
    index_.erase(victim.first);
    lru_.pop_back();
  }
  return lru_.front().second;
}

void Sandbox::begin_call() {
  // Garbage earlier calls left counts in the next call's baseline (a call may hold up to
  // max_memory above it, and more if that garbage is collected meanwhile). Lua's own collector
  // keeps it below about the live size; when it is past both that and kGcSlack, collect now.
  if (meter_.heap > idle_heap_ + std::max(kGcSlack, idle_heap_)) {
    lua_gc(L_, LUA_GCCOLLECT);
    idle_heap_ = meter_.heap;
  }
  Meter& m = meter_;
  m.failure = Failure::kNone;
  m.every_instruction = false;
  m.used = 0;
  m.next_clock_check = kClockEvery;
  m.deadline = Clock::now() + std::chrono::milliseconds(limits_.timeout_ms);
  m.baseline = m.heap;
  m.limit = m.max_memory > SIZE_MAX - m.heap ? SIZE_MAX : m.heap + m.max_memory;
  m.external = 0;
  m.refusals = 0;
  m.refused_ptr = nullptr;
  m.refused_size = 0;
  m.active = true;
  lua_sethook(L_, count_hook, LUA_MASKCOUNT, m.hook_count);  // also restarts the count
}

void Sandbox::end_call() { meter_.active = false; }

std::string Sandbox::error_message(int status) {
  if (status == LUA_ERRMEM) return "not enough memory";
  if (lua_type(L_, -1) == LUA_TSTRING) {
    size_t n = 0;
    const char* s = lua_tolstring(L_, -1, &n);
    return std::string(s, n);
  }
  const char* type = luaL_typename(L_, -1);  // static storage
  lua_pushcfunction(L_, describe_error);
  lua_insert(L_, -2);
  if (lua_pcall(L_, 1, 1, 0) == LUA_OK && lua_type(L_, -1) == LUA_TSTRING) {
    size_t n = 0;
    const char* s = lua_tolstring(L_, -1, &n);
    return std::string(s, n);
  }
  return std::string("(error object is a ") + type + " value)";
}

Sandbox::CallResult Sandbox::call(int chunk_ref, Trigger trigger, const Json& event) {
  CallArgs args{chunk_ref, env_mt_ref_, api_refs_[static_cast<size_t>(trigger)], trigger, &event};
  begin_call();
  lua_pushcfunction(L_, call_script);
  lua_pushlightuserdata(L_, &args);
  const int status = lua_pcall(L_, 1, 0, 0);
  CallResult r;
  if (status != LUA_OK) {
    r.error = error_message(status);  // still metered: __tostring is script code
    // A refused allocation surfacing as Lua's plain memory error is the cap, too.
    if (meter_.failure == Failure::kNone && meter_.refusals > 0 &&
        (status == LUA_ERRMEM || r.error->ends_with("not enough memory"))) {
      meter_.failure = Failure::kMemory;
    }
  }
  switch (meter_.failure) {
    case Failure::kInstructions:
      r.error = "instruction budget exceeded (" + std::to_string(limits_.max_instructions) +
                " instructions)";
      break;
    case Failure::kMemory:
      r.error = "memory limit exceeded (" + std::to_string(limits_.max_memory_bytes) + " bytes)";
      break;
    case Failure::kTime:
      r.error = "time limit exceeded (" + std::to_string(limits_.timeout_ms) + " ms)";
      break;
    case Failure::kNone:
      break;
  }
  end_call();
  lua_settop(L_, 0);
  // Drop the env from the cached chunk so the call's tables can be collected.
  lua_rawgeti(L_, LUA_REGISTRYINDEX, chunk_ref);
  lua_pushnil(L_);
  lua_setupvalue(L_, -2, 1);
  lua_settop(L_, 0);
  r.sync = args.sync;
  return r;
}

Outcome Sandbox::run(Trigger trigger, const Scripts& scripts, const Json& event) {
  Outcome out;
  if (busy_) {
    out.error = "hooks: a hook run is already in progress on this thread";
    return out;
  }
  struct Guard {
    Sandbox& sb;
    ~Guard() {
      sb.busy_ = false;
      sb.run_ = nullptr;
    }
  } guard{*this};
  RunContext ctx;
  ctx.out = &out;
  busy_ = true;
  run_ = &ctx;
  std::optional<Json> patched;  // `event` with the metadata changes of the scripts so far
  for (const auto& script : scripts) {
    if (!script) continue;
    const Compiled& c = compiled(script);
    if (c.ref == LUA_NOREF) {
      out.error = script->name + ": " + clean_text(c.error, kMaxTextBytes);
      break;
    }
    ctx.metadata_changed = false;
    CallResult r = call(c.ref, trigger, patched ? *patched : event);
    if (r.error) {
      out.error = script->name + ": " + clean_text(*r.error, kMaxTextBytes);
      break;
    }
    if (out.denied) break;
    if (trigger == Trigger::kSyncFilter && !r.sync) {
      out.sync = false;  // the AND is decided
      break;
    }
    if (ctx.metadata_changed) {
      if (!patched) patched = event;
      apply_metadata(*patched, out);
    }
  }
  if (trigger == Trigger::kSyncFilter && out.error) out.sync = false;
  return out;
}

}  // namespace ks::hooks::detail
