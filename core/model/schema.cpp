#include "core/model/schema.h"

#include "core/http/http.h"

namespace ks::model {
namespace {

std::string_view expected_name(Type t) {
  switch (t) {
    case Type::String:
      return "string";
    case Type::Boolean:
      return "boolean";
    case Type::Integer:
      return "integer";
    case Type::Number:
      return "number";
    case Type::Object:
      return "object";
    case Type::Array:
    case Type::StringArray:
      return "array";
    case Type::Any:
      return "any";
  }
  return "any";
}

bool matches(Type t, const Json& v) {
  switch (t) {
    case Type::String:
      return v.is_string();
    case Type::Boolean:
      return v.is_boolean();
    case Type::Integer:
      return v.is_number_integer();
    case Type::Number:
      return v.is_number();
    case Type::Object:
      return v.is_object();
    case Type::Array:
      return v.is_array();
    case Type::StringArray:
      if (!v.is_array()) return false;
      for (const auto& e : v)
        if (!e.is_string()) return false;
      return true;
    case Type::Any:
      return true;
  }
  return false;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

std::string_view type_name(const Json& v) {
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  return "null";
}

void invalid_body(std::string_view message) {
  throw http::HttpError{400, std::string(message), "invalid_body"};
}

void Schema::check(const Json& body, bool partial) const {
  if (!body.is_object()) invalid_body("Payload validation error: 'Expected type object'.");
  for (auto it = body.begin(); it != body.end(); ++it) {
    const Field* f = nullptr;
    for (const auto& cand : fields_)
      if (cand.name == it.key()) f = &cand;
    if (!f)
      invalid_body("Payload validation error: 'Additional properties not allowed: " + it.key() +
                   "'.");
    const Json& v = it.value();
    if (v.is_null() && f->nullable) continue;
    if (!matches(f->type, v)) {
      std::string found(type_name(v));
      if (f->type == Type::StringArray && v.is_array()) found = "array of non-strings";
      invalid_body("Payload validation error: 'Expected type " +
                   std::string(expected_name(f->type)) + " but found type " + found +
                   "' on property " + f->name + ".");
    }
    if (f->max_length) {
      if (v.is_string() && utf8_length(v.get_ref<const std::string&>()) > f->max_length)
        invalid_body("Payload validation error: 'String is too long (" +
                     std::to_string(utf8_length(v.get_ref<const std::string&>())) +
                     " chars), maximum " + std::to_string(f->max_length) + "' on property " +
                     f->name + ".");
      if (v.is_array() && v.size() > f->max_length)
        invalid_body("Payload validation error: 'Array is too long (" + std::to_string(v.size()) +
                     "), maximum " + std::to_string(f->max_length) + "' on property " + f->name +
                     ".");
    }
  }
  if (partial) return;
  for (const auto& f : fields_) {
    if (f.required && !body.contains(f.name))
      invalid_body("Payload validation error: 'Missing required property: " + f.name + "'.");
  }
}

}  // namespace ks::model
