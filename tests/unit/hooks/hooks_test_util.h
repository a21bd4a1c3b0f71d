#pragma once
// Helpers shared by the hook runtime tests.
#include <memory>
#include <string>
#include <utility>

#include "core/hooks.h"
#include "hooks/lua_runner.h"

namespace ks::hooks::test {

inline std::shared_ptr<const Script> script(std::string code, std::string name = "hook",
                                            std::string tenant = "t1", std::string id = "hk_1") {
  return std::make_shared<const Script>(
      Script{std::move(tenant), std::move(id), std::move(name), std::move(code)});
}

// Runs one post-login script whose entry point has `body` as its body.
inline Outcome post_login(HookRunner& r, const std::string& body,
                          const Json& event = Json::object(), std::string name = "hook") {
  return r.run(
      Trigger::kPostLogin,
      {script("function onExecutePostLogin(event, api)\n" + body + "\nend\n", std::move(name))},
      event);
}

inline bool contains(const std::optional<std::string>& s, std::string_view part) {
  return s && s->find(part) != std::string::npos;
}

}  // namespace ks::hooks::test
