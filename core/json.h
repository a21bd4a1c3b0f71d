#pragma once
// One JSON type for the whole code base.
#include <nlohmann/json.hpp>

namespace ks {
using Json = nlohmann::json;
}  // namespace ks
