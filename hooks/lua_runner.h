#pragma once
// The Lua 5.4 HookRunner (DESIGN.md "Hooks in Lua"). Each thread that calls a runner gets its own
// Lua state for it, created on first use and kept until the thread exits (or, once the runner is
// gone, until that thread next needs a new state); compiled scripts are cached per state by
// (tenant, id) while their code is unchanged.
#include <memory>

#include "core/hooks.h"

namespace ks::hooks {

std::shared_ptr<HookRunner> make_lua_runner(const Limits& limits = {});

}  // namespace ks::hooks
