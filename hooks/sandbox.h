#pragma once
// Internal to hooks/: one sandboxed Lua 5.4 state (owned by one thread), the per-call meter that
// enforces Limits, and the pieces the library files share. Nothing here is visible to core.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <lua.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/hooks.h"

namespace ks::hooks::detail {

// Lua errors are longjmps (Debian builds Lua as C): a lua_CFunction here must hold no object with
// a destructor across a call that can raise. C++ exceptions must never cross into Lua either.

enum class Failure : uint8_t { kNone, kInstructions, kMemory, kTime };

// The short message a script sees (and can catch) when a limit stops it.
const char* failure_text(Failure f);

// Accounting for the call in progress, read by the count hook, the allocator and charge().
struct Meter {
  bool active = false;  // limits apply only while a script runs
  Failure failure = Failure::kNone;
  // After a failure the count hook fires on every instruction, so a script that catches the
  // limit error with pcall cannot run on: the limit always wins.
  bool every_instruction = false;
  int hook_count = 1000;  // instructions between two count-hook calls
  uint64_t used = 0;      // instructions (and charged C work) so far
  uint64_t max_instructions = 0;
  uint64_t next_clock_check = 0;  // charge() reads the clock when `used` passes this
  std::chrono::steady_clock::time_point deadline;
  size_t heap = 0;        // bytes the Lua heap holds, always tracked
  size_t baseline = 0;    // heap when the call began
  size_t limit = 0;       // heap + external may not grow past this while active
  size_t max_memory = 0;  // Limits::max_memory_bytes
  size_t external = 0;    // bytes of JSON the call produced (claims, metadata), counted as held
  size_t refusals = 0;    // allocations refused during the call
  const void* refused_ptr = nullptr;  // the last refused request, to recognise Lua's retry of it
  size_t refused_size = 0;            // after an emergency collection
};

// Adds n units of work done in C (pattern matching steps, JSON nodes) to the call's instruction
// count and checks the clock; raises the limit error (and keeps raising it) once a limit is
// exceeded. No-op outside a call.
void charge(lua_State* L, uint64_t n);
// The same without raising (for code that must clean up first): false once a limit is exceeded.
bool try_charge(Meter& m, uint64_t n);
// Counts `bytes` of JSON produced by the call against its memory cap; false once exceeded.
bool try_hold(Meter& m, size_t bytes);
// Raises the Lua error for m.failure (which must be set).
int raise_failure(lua_State* L, Meter& m);

// The run() in progress on a state: where the api functions write.
struct RunContext {
  Outcome* out = nullptr;
  bool metadata_changed = false;  // by the script now running
};

class Sandbox;
Sandbox& sandbox_of(lua_State* L);

// stdlib.cpp: builds the shared read-only base (safe globals, library proxies, the table
// functions, the locked string metatable) and the env metatable. Leaves the env metatable on the
// stack. Runs in protected mode while the state is set up.
void open_sandbox(lua_State* L);
// Replaces the table at the top of the stack by a read-only proxy of it (registered as shared, so
// rawset refuses it; its metatable is protected, so setmetatable refuses it).
void make_read_only(lua_State* L);
// The captured print.
int sandbox_print(lua_State* L);

// patterns.cpp: string.find/match/gmatch/gsub with a metered matcher, and string.rep without
// the stock implementation's unbounded loop for empty results.
int str_find(lua_State* L);
int str_match(lua_State* L);
int str_gmatch(lua_State* L);
int str_gsub(lua_State* L);
int str_rep(lua_State* L);

// api.cpp: pushes the `api` table for a trigger (built once per state, read-only).
void push_new_api(lua_State* L, Trigger trigger);
// Pushes `j` as Lua values (objects and arrays as tables, null as nil). Raises past 64 levels.
void push_json(lua_State* L, const Json& j, int depth = 0);

// Text helpers (api.cpp).
bool valid_utf8(std::string_view s);
// At most max_bytes bytes of s, cut on a character boundary, invalid bytes replaced by U+FFFD.
std::string clean_text(std::string_view s, size_t max_bytes);

inline constexpr size_t kMaxTextBytes = 1000;  // a log line, a deny reason, an error message
inline constexpr size_t kMaxLogLines = 20;

class Sandbox {
 public:
  explicit Sandbox(const Limits& limits);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  std::optional<std::string> compile_error(std::string_view code);
  Outcome run(Trigger trigger, const Scripts& scripts, const Json& event);

  Meter& meter() { return meter_; }
  RunContext* run_context() { return run_; }

 private:
  struct Compiled {
    // The script it was compiled from (shared and immutable, so holding it costs no copy).
    std::shared_ptr<const Script> source;
    int ref = LUA_NOREF;  // registry reference of the compiled main chunk
    std::string error;    // the compile error when ref is LUA_NOREF
  };
  struct CallResult {
    std::optional<std::string> error;
    bool sync = true;
  };
  friend int init_state(lua_State* L);

  const Compiled& compiled(const std::shared_ptr<const Script>& script);
  CallResult call(int chunk_ref, Trigger trigger, const Json& event);
  std::string error_message(int status);
  void begin_call();
  void end_call();

  lua_State* L_ = nullptr;
  Limits limits_;
  Meter meter_;
  RunContext* run_ = nullptr;
  bool busy_ = false;
  int env_mt_ref_ = LUA_NOREF;
  int api_refs_[std::size(kTriggers)] = {};
  size_t idle_heap_ = 0;  // heap after the last full collection

  // Compiled chunks by (tenant, id), most recently used first.
  std::list<std::pair<std::string, Compiled>> lru_;
  std::unordered_map<std::string, std::list<std::pair<std::string, Compiled>>::iterator> index_;
  std::string key_;  // reused lookup key
};

inline constexpr size_t kCacheEntries = 512;

}  // namespace ks::hooks::detail
