#pragma once
// Management API scopes (Auth0 names, plus Keystead's tenant scopes).
#include <string>
#include <string_view>
#include <vector>

namespace ks::mgmt {

inline constexpr std::string_view kManagementAudience = "urn:keystead:management";
inline constexpr std::string_view kAdminOrganizations = "admin:organizations";

// Every scope a management route can require, admin:organizations excluded.
const std::vector<std::string>& management_scopes();

}  // namespace ks::mgmt
