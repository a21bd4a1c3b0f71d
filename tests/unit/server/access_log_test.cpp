#include "server/access_log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ks::server {
namespace {

TEST(AccessLog, OneJsonLineWithTheDocumentedFields) {
  AccessLogEntry e;
  e.method = "GET";
  e.path = "/a\"b\\c\n\xff";
  e.status = 200;
  e.bytes = 15;
  e.dur_ms = 1.5;
  e.remote = "127.0.0.1";
  e.request_id = "abc";
  e.tls = true;
  std::string line;
  format_access_log(e, line);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j.size(), 9u);
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/a\"b\\c\n\u00ff");
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["bytes"], 15);
  EXPECT_DOUBLE_EQ(j["dur_ms"].get<double>(), 1.5);
  EXPECT_EQ(j["remote"], "127.0.0.1");
  EXPECT_EQ(j["rid"], "abc");
  EXPECT_EQ(j["tls"], true);
  EXPECT_EQ(j["ts"].get<std::string>().size(), 24u);  // 2024-01-01T00:00:00.000Z
}

TEST(AccessLog, EmptyMethodAndPathAreDashes) {
  AccessLogEntry e;
  std::string line;
  format_access_log(e, line);
  nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["method"], "-");
  EXPECT_EQ(j["path"], "-");
}

}  // namespace
}  // namespace ks::server
