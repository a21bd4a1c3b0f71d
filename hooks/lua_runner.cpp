#include "hooks/lua_runner.h"

#include <atomic>
#include <exception>
#include <unordered_map>

#include "hooks/sandbox.h"

namespace ks::hooks {
namespace {

using detail::Sandbox;

std::atomic<uint64_t> g_next_runner_id{1};

// One thread's states, by runner id (never reused, so a new runner can't inherit a dead one's
// state). `alive` expires with the runner; such entries are dropped when the thread next
// creates a state.
struct PoolEntry {
  std::weak_ptr<const void> alive;
  std::unique_ptr<Sandbox> sandbox;
};
thread_local std::unordered_map<uint64_t, PoolEntry> t_pool;

class LuaRunner final : public HookRunner {
 public:
  explicit LuaRunner(const Limits& limits)
      : limits_(limits), id_(g_next_runner_id.fetch_add(1)), alive_(std::make_shared<char>()) {}

  std::optional<std::string> compile_error(std::string_view code) override {
    try {
      return sandbox().compile_error(code);
    } catch (const std::exception& e) {
      return std::string("hooks: ") + e.what();
    }
  }

  Outcome run(Trigger trigger, const Scripts& scripts, const Json& event) override {
    try {
      return sandbox().run(trigger, scripts, event);
    } catch (const std::exception& e) {
      Outcome out;
      out.error = std::string("hooks: internal error: ") + e.what();
      if (trigger == Trigger::kSyncFilter) out.sync = false;
      return out;
    }
  }

 private:
  Sandbox& sandbox() {
    if (auto it = t_pool.find(id_); it != t_pool.end()) return *it->second.sandbox;
    std::erase_if(t_pool, [](const auto& e) { return e.second.alive.expired(); });
    auto sb = std::make_unique<Sandbox>(limits_);
    Sandbox& ref = *sb;
    t_pool.emplace(id_, PoolEntry{alive_, std::move(sb)});
    return ref;
  }

  const Limits limits_;
  const uint64_t id_;
  const std::shared_ptr<const void> alive_;
};

}  // namespace

std::shared_ptr<HookRunner> make_lua_runner(const Limits& limits) {
  return std::make_shared<LuaRunner>(limits);
}

}  // namespace ks::hooks
