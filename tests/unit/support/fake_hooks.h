#pragma once
// A HookRunner for core's tests: the test decides each script's outcome in C++, and every call is
// recorded, so flows can be checked without Lua (hooks/ has its own tests).
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/hooks.h"

namespace ks::test {

class FakeHookRunner final : public hooks::HookRunner {
 public:
  struct Call {
    hooks::Trigger trigger;
    std::string script;  // "<tenant>/<name>"
    Json event;
  };
  // Runs one script: updates `out` as the script would (claims, deny, error, sync).
  using Script = std::function<void(hooks::Trigger, const hooks::Script&, const Json& event,
                                    hooks::Outcome& out)>;

  explicit FakeHookRunner(Script script = {}) : script_(std::move(script)) {}

  void set(Script script) {
    std::lock_guard lock(mu_);
    script_ = std::move(script);
  }

  // Code containing "syntax error" does not compile.
  std::optional<std::string> compile_error(std::string_view code) override {
    if (code.find("syntax error") != std::string_view::npos)
      return std::string("[string \"hook\"]:1: syntax error near 'error'");
    return std::nullopt;
  }

  hooks::Outcome run(hooks::Trigger trigger, const hooks::Scripts& scripts,
                     const Json& event) override {
    hooks::Outcome out;
    for (const auto& s : scripts) {
      Script fn;
      {
        std::lock_guard lock(mu_);
        calls_.push_back({trigger, s->tenant + "/" + s->name, event});
        fn = script_;
      }
      if (fn) fn(trigger, *s, event, out);
      if (!out.ok()) break;
    }
    return out;
  }

  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    calls_.clear();
  }

 private:
  mutable std::mutex mu_;
  Script script_;
  std::vector<Call> calls_;
};

}  // namespace ks::test
