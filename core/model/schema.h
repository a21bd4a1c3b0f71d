#pragma once
// Request-body validation with Auth0's messages:
//   "Payload validation error: 'Expected type string but found type integer' on property name."
// Every violation is an http::HttpError 400 with errorCode "invalid_body".
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"

namespace ks::model {

enum class Type { String, Boolean, Integer, Number, Object, Array, StringArray, Any };

struct Field {
  std::string name;
  Type type;
  bool required = false;
  size_t max_length = 0;  // strings: characters; arrays: items; 0 = no limit
  bool nullable = false;
};

class Schema {
 public:
  Schema(std::initializer_list<Field> fields) : fields_(fields) {}
  // Throws HttpError(400, invalid_body) for a non-object body, a missing required field, a
  // wrong type or an unknown property. `partial` (PATCH) ignores `required`.
  void check(const Json& body, bool partial = false) const;

 private:
  std::vector<Field> fields_;
};

[[noreturn]] void invalid_body(std::string_view message);
std::string_view type_name(const Json& v);

}  // namespace ks::model
