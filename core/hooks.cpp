#include "core/hooks.h"

namespace ks::hooks {
namespace {

struct TriggerInfo {
  Trigger trigger;
  std::string_view name;
  std::string_view entry;
};

constexpr TriggerInfo kInfo[] = {
    {Trigger::kPostLogin, "post-login", "onExecutePostLogin"},
    {Trigger::kCredentialsExchange, "credentials-exchange", "onExecuteCredentialsExchange"},
    {Trigger::kPreUserRegistration, "pre-user-registration", "onExecutePreUserRegistration"},
    {Trigger::kPostUserRegistration, "post-user-registration", "onExecutePostUserRegistration"},
    {Trigger::kSyncFilter, "sync-filter", "shouldSync"},
};

const TriggerInfo& info(Trigger t) {
  for (const auto& i : kInfo)
    if (i.trigger == t) return i;
  return kInfo[0];
}

}  // namespace

std::string_view trigger_name(Trigger t) { return info(t).name; }
std::string_view entry_point(Trigger t) { return info(t).entry; }

std::optional<Trigger> trigger_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.trigger;
  return std::nullopt;
}

}  // namespace ks::hooks
