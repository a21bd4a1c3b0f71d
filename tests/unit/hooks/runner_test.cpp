// The hook runtime's script API, limits, cache and threading.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <lua.hpp>
#include <string>
#include <thread>
#include <vector>

#include "hooks/lua_runner.h"
#include "tests/unit/hooks/hooks_test_util.h"

namespace ks::hooks {
namespace {

using test::contains;
using test::post_login;
using test::script;

Json login_event() {
  return Json::parse(R"({
    "user": {"user_id": "auth0|1", "email": "a@example.com", "email_verified": true,
             "name": "Ada", "logins_count": 7, "score": 2.5, "nickname": null,
             "app_metadata": {"plan": "free", "keep": 1}, "user_metadata": {"lang": "en"},
             "identities": [{"provider": "auth0", "user_id": "1"}]},
    "client": {"client_id": "c1", "name": "App", "metadata": {}},
    "tenant": {"id": "t1"},
    "request": {"ip": "127.0.0.1", "user_agent": "ua", "method": "POST"},
    "authorization": {"roles": ["admin", "dev"]},
    "list": [1, null, 3]
  })");
}

TEST(HookApi, ClaimsOfEveryValueType) {
  auto r = make_lua_runner();
  Outcome out = post_login(*r, R"(
    api.accessToken.setCustomClaim("s", "text")
    api.accessToken.setCustomClaim("i", 42)
    api.accessToken.setCustomClaim("big", math.maxinteger)
    api.accessToken.setCustomClaim("f", 1.5)
    api.accessToken.setCustomClaim("b", false)
    api.accessToken.setCustomClaim("arr", {1, "two", true, {x = 1}})
    api.accessToken.setCustomClaim("obj", {k = "v", n = {1, 2}})
    api.accessToken.setCustomClaim("empty", {})
    api.accessToken.setCustomClaim("gone", "x")
    api.accessToken.setCustomClaim("gone", nil)
    api.idToken.setCustomClaim("https://example.com/name", event.user.name)
  )",
                           login_event());
  ASSERT_TRUE(out.ok()) << out.error.value_or("");
  const Json& at = out.access_token_claims;
  EXPECT_EQ(at["s"], "text");
  EXPECT_TRUE(at["i"].is_number_integer());
  EXPECT_EQ(at["i"], 42);
  EXPECT_EQ(at["big"].get<int64_t>(), INT64_MAX);
  EXPECT_TRUE(at["f"].is_number_float());
  EXPECT_EQ(at["f"], 1.5);
  EXPECT_EQ(at["b"], false);
  EXPECT_EQ(at["arr"], Json::parse(R"([1, "two", true, {"x": 1}])"));
  EXPECT_EQ(at["obj"], Json::parse(R"({"k": "v", "n": [1, 2]})"));
  EXPECT_EQ(at["empty"], Json::object());
  EXPECT_FALSE(at.contains("gone"));
  EXPECT_EQ(out.id_token_claims, Json::parse(R"({"https://example.com/name": "Ada"})"));
}

TEST(HookApi, ClaimValuesThatAreNotJsonAreRefused) {
  auto r = make_lua_runner();
  const char* bad[] = {
      R"(api.accessToken.setCustomClaim("x", print))",
      R"(api.accessToken.setCustomClaim("x", {f = print}))",
      R"(local t = {}; t.self = t; api.accessToken.setCustomClaim("x", t))",
      R"(local t = {}; t[1] = {t}; api.accessToken.setCustomClaim("x", t))",
      R"(api.accessToken.setCustomClaim("x", {1, 2, k = 3}))",
      R"(api.accessToken.setCustomClaim("x", {[2] = 1}))",
      R"(api.accessToken.setCustomClaim("x", {[true] = 1}))",
      R"(api.accessToken.setCustomClaim("x", 0/0))",
      R"(api.accessToken.setCustomClaim("x", math.huge))",
      R"(api.accessToken.setCustomClaim("x", "\xff\xfe"))",
      R"(api.accessToken.setCustomClaim("x", {["\xff"] = 1}))",
      R"(api.accessToken.setCustomClaim("", 1))",
      R"(api.accessToken.setCustomClaim(nil, 1))",
      R"(local t = {} for i = 1, 40 do t = {t} end api.accessToken.setCustomClaim("x", t))",
      R"(api.user.setAppMetadata("x", print))",
  };
  for (const char* body : bad) {
    Outcome out = post_login(*r, body);
    EXPECT_TRUE(out.error) << body;
    EXPECT_FALSE(out.access_token_claims.contains("x")) << body;
  }
  // A table shared (not cyclic) is fine.
  Outcome out = post_login(*r, R"(local s = {1}; api.accessToken.setCustomClaim("x", {s, s}))");
  EXPECT_TRUE(out.ok()) << out.error.value_or("");
  EXPECT_EQ(out.access_token_claims["x"], Json::parse("[[1],[1]]"));
}

TEST(HookApi, EveryReservedClaimIsRefusedInBothTokens) {
  auto r = make_lua_runner();
  for (std::string_view claim : kReservedClaims) {
    for (const char* token : {"accessToken", "idToken"}) {
      Outcome out = post_login(
          *r,
          std::string("api.") + token + ".setCustomClaim(\"" + std::string(claim) + "\", \"x\")",
          Json::object(), "My Hook");
      ASSERT_TRUE(out.error) << claim;
      EXPECT_TRUE(out.error->starts_with("My Hook: ")) << *out.error;
      EXPECT_TRUE(contains(out.error, "'" + std::string(claim) + "'")) << *out.error;
      EXPECT_TRUE(contains(out.error, "reserved")) << *out.error;
      EXPECT_TRUE(contains(out.error, "[string \"hook\"]:2:")) << *out.error;  // the line
      EXPECT_TRUE(out.access_token_claims.empty());
      EXPECT_TRUE(out.id_token_claims.empty());
    }
  }
  // Claims are case-sensitive: "SUB" is not "sub".
  EXPECT_TRUE(post_login(*r, R"(api.accessToken.setCustomClaim("SUB", 1))").ok());
}

TEST(HookApi, DenyRecordsTheReasonAndStopsLaterScripts) {
  auto r = make_lua_runner();
  Scripts s = {
      script(R"(function onExecutePostLogin(event, api)
                  api.access.deny("not on weekends")
                  api.access.deny("second reason is ignored")
                  print("still running")  -- deny does not end the script
                end)",
             "first", "t1", "hk_a"),
      script(R"(function onExecutePostLogin(event, api)
                  api.accessToken.setCustomClaim("late", true)
                end)",
             "second", "t1", "hk_b"),
  };
  Outcome out = r->run(Trigger::kPostLogin, s, login_event());
  EXPECT_EQ(out.denied, "not on weekends");
  EXPECT_FALSE(out.error);
  EXPECT_FALSE(out.ok());
  EXPECT_EQ(out.logs, std::vector<std::string>{"still running"});
  EXPECT_FALSE(out.access_token_claims.contains("late"));

  Outcome dflt = post_login(*r, "api.access.deny()");
  EXPECT_EQ(dflt.denied, "access denied");
}

TEST(HookApi, MetadataChangesAreRecordedAndVisibleToLaterScripts) {
  auto r = make_lua_runner();
  Scripts s = {
      script(R"(function onExecutePostLogin(event, api)
                  api.user.setAppMetadata("plan", "gold")
                  api.user.setAppMetadata("keep", nil)
                  api.user.setUserMetadata("prefs", {theme = "dark"})
                  -- not visible to the same script
                  api.accessToken.setCustomClaim("own", event.user.app_metadata.plan)
                end)",
             "first", "t1", "hk_a"),
      script(R"(function onExecutePostLogin(event, api)
                  local md = event.user.app_metadata
                  api.accessToken.setCustomClaim("plan", md.plan)
                  api.accessToken.setCustomClaim("keep_removed", md.keep == nil)
                  api.accessToken.setCustomClaim("theme", event.user.user_metadata.prefs.theme)
                  api.accessToken.setCustomClaim("lang", event.user.user_metadata.lang)
                end)",
             "second", "t1", "hk_b"),
  };
  Outcome out = r->run(Trigger::kPostLogin, s, login_event());
  ASSERT_TRUE(out.ok()) << out.error.value_or("");
  EXPECT_EQ(out.app_metadata, Json::parse(R"({"plan": "gold", "keep": null})"));
  EXPECT_EQ(out.user_metadata, Json::parse(R"({"prefs": {"theme": "dark"}})"));
  EXPECT_EQ(out.access_token_claims, Json::parse(R"({"own": "free", "plan": "gold",
      "keep_removed": true, "theme": "dark", "lang": "en"})"));
}

TEST(HookApi, EventShapeIsPassedThrough) {
  auto r = make_lua_runner();
  Outcome out = post_login(*r, R"(
    local u = event.user
    assert(u.user_id == "auth0|1" and u.email_verified == true)
    assert(math.type(u.logins_count) == "integer" and u.logins_count == 7)
    assert(math.type(u.score) == "float" and u.score == 2.5)
    assert(u.nickname == nil)  -- null is nil
    assert(u.identities[1].provider == "auth0" and #u.identities == 1)
    assert(event.authorization.roles[2] == "dev")
    assert(event.list[1] == 1 and event.list[2] == nil and event.list[3] == 3)
    assert(next(event.client.metadata) == nil)
    assert(event.request.method == "POST")
    api.accessToken.setCustomClaim("user", event.user)
  )",
                           login_event());
  ASSERT_TRUE(out.ok()) << out.error.value_or("");
  Json expected = login_event()["user"];
  expected.erase("nickname");
  EXPECT_EQ(out.access_token_claims["user"], expected);
}

// An empty array of the event stays an array when a script passes it on; a script's own empty
// table is an object.
TEST(HookApi, EmptyEventArraysStayArrays) {
  auto r = make_lua_runner();
  Outcome out = post_login(*r, R"(
    assert(#event.authorization.roles == 0 and getmetatable(event.authorization.roles) == false)
    assert(not pcall(setmetatable, event.authorization.roles, {}))
    api.accessToken.setCustomClaim("roles", event.authorization.roles)
    api.accessToken.setCustomClaim("own", {})
    api.accessToken.setCustomClaim("nested", {list = event.authorization.roles})
  )",
                           {{"authorization", {{"roles", Json::array()}}}});
  ASSERT_TRUE(out.ok()) << out.error.value_or("");
  EXPECT_EQ(out.access_token_claims["roles"], Json::array());
  EXPECT_EQ(out.access_token_claims["own"], Json::object());
  EXPECT_EQ(out.access_token_claims["nested"]["list"], Json::array());
}

TEST(HookApi, ADeeplyNestedEventFailsCleanly) {
  auto r = make_lua_runner();
  Json deep = Json::object();
  for (int i = 0; i < 200; ++i) deep = Json{{"a", deep}, {"b", Json::array({1})}};
  Outcome out = post_login(*r, "api.accessToken.setCustomClaim('x', 1)", deep);
  EXPECT_TRUE(contains(out.error, "event nested too deeply")) << out.error.value_or("");
  EXPECT_TRUE(out.access_token_claims.empty());
  EXPECT_TRUE(post_login(*r, "api.accessToken.setCustomClaim('x', 1)").ok());
}

TEST(HookApi, EachTriggerGetsItsOwnApi) {
  auto r = make_lua_runner();
  auto shape = [&](Trigger t) {
    std::string code = "function " + std::string(entry_point(t)) + R"((event, api)
        print(api.accessToken ~= nil, api.idToken ~= nil, api.access ~= nil, api.user ~= nil)
      end)";
    Outcome out = r->run(t, {script(code)}, Json::object());
    EXPECT_TRUE(out.ok()) << out.error.value_or("");
    return out.logs.empty() ? std::string() : out.logs[0];
  };
  EXPECT_EQ(shape(Trigger::kPostLogin), "true\ttrue\ttrue\ttrue");
  EXPECT_EQ(shape(Trigger::kCredentialsExchange), "true\tfalse\ttrue\tfalse");
  EXPECT_EQ(shape(Trigger::kPreUserRegistration), "false\tfalse\ttrue\ttrue");
  EXPECT_EQ(shape(Trigger::kPostUserRegistration), "false\tfalse\tfalse\tfalse");

  Outcome cc = r->run(Trigger::kCredentialsExchange,
                      {script(R"(function onExecuteCredentialsExchange(event, api)
                                   api.accessToken.setCustomClaim("scope_extra", event.client.id)
                                 end)")},
                      Json::parse(R"({"client": {"id": "m2m"}})"));
  EXPECT_EQ(cc.access_token_claims, Json::parse(R"({"scope_extra": "m2m"})"));

  Outcome pre = r->run(Trigger::kPreUserRegistration,
                       {script(R"(function onExecutePreUserRegistration(event, api)
                                    if event.user.email:match("@blocked%.com$") then
                                      api.access.deny("blocked domain")
                                    end
                                    api.user.setUserMetadata("source", "signup")
                                  end)")},
                       Json::parse(R"({"user": {"email": "x@blocked.com"}})"));
  EXPECT_EQ(pre.denied, "blocked domain");
  EXPECT_EQ(pre.user_metadata, Json::parse(R"({"source": "signup"})"));
}

TEST(HookApi, PrintIsCapturedAndBounded) {
  auto r = make_lua_runner();
  Outcome out = post_login(*r, R"(
    print("a", 1, 2.5, true, nil, {} ~= nil)
    print(setmetatable({}, {__tostring = function() return "custom" end}))
    print(string.rep("x", 5000))
    print("caf\xc3\xa9 \xff")
    for i = 1, 30 do print("line", i) end
  )");
  ASSERT_TRUE(out.ok()) << out.error.value_or("");
  ASSERT_EQ(out.logs.size(), 20u);
  EXPECT_EQ(out.logs[0], "a\t1\t2.5\ttrue\tnil\ttrue");
  EXPECT_EQ(out.logs[1], "custom");
  EXPECT_EQ(out.logs[2], std::string(1000, 'x'));
  EXPECT_EQ(out.logs[3], "caf\xc3\xa9 \xef\xbf\xbd");  // invalid UTF-8 replaced
  EXPECT_EQ(out.logs[4], "line\t1");
  EXPECT_EQ(out.logs[19], "line\t16");

  // The 20 lines are per run, across scripts.
  Scripts two = {
      script("function onExecutePostLogin() for i = 1, 15 do print(i) end end", "a", "t1", "hk_a"),
      script("function onExecutePostLogin() for i = 1, 15 do print(i) end end", "b", "t1", "hk_b")};
  EXPECT_EQ(r->run(Trigger::kPostLogin, two, Json::object()).logs.size(), 20u);
}

TEST(HookApi, ScriptsRunInTheCallersOrder) {
  auto r = make_lua_runner();
  auto make = [](const std::string& v) {
    return script("function onExecutePostLogin(e, api) print('" + v +
                      "') api.accessToken.setCustomClaim('who', '" + v + "') end",
                  v, "t1", "hk_" + v);
  };
  Outcome ab = r->run(Trigger::kPostLogin, {make("a"), make("b")}, Json::object());
  EXPECT_EQ(ab.logs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ab.access_token_claims["who"], "b");  // the later script wins
  Outcome ba = r->run(Trigger::kPostLogin, {make("b"), make("a")}, Json::object());
  EXPECT_EQ(ba.logs, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(ba.access_token_claims["who"], "a");
}

TEST(HookApi, ScriptsWithoutTheEntryPointAreSkipped) {
  auto r = make_lua_runner();
  Scripts s = {script("function onExecuteCredentialsExchange() error('wrong trigger') end", "cc",
                      "t1", "hk_a"),
               script("-- nothing at all", "empty", "t1", "hk_b"), nullptr,
               script("function onExecutePostLogin(e, api) api.idToken.setCustomClaim('x', 1) end",
                      "pl", "t1", "hk_c")};
  Outcome out = r->run(Trigger::kPostLogin, s, Json::object());
  ASSERT_TRUE(out.ok()) << out.error.value_or("");
  EXPECT_EQ(out.id_token_claims["x"], 1);

  Outcome notfn =
      r->run(Trigger::kPostLogin, {script("onExecutePostLogin = 42", "n")}, Json::object());
  EXPECT_TRUE(contains(notfn.error, "n: onExecutePostLogin is a number, not a function"))
      << notfn.error.value_or("");
}

TEST(HookApi, RuntimeErrorsNameTheScriptAndLine) {
  auto r = make_lua_runner();
  Outcome out = r->run(
      Trigger::kPostLogin,
      {script("function onExecutePostLogin(event)\n  local x = nil\n  return x.y\nend", "Broken")},
      Json::object());
  ASSERT_TRUE(out.error);
  EXPECT_TRUE(out.error->starts_with("Broken: [string \"hook\"]:3: attempt to index a nil value"))
      << *out.error;

  Outcome top = r->run(Trigger::kPostLogin, {script("error('at load')", "Top")}, Json::object());
  EXPECT_EQ(top.error, "Top: [string \"hook\"]:1: at load");

  Outcome bad = r->run(Trigger::kPostLogin, {script("function x(", "Syntax")}, Json::object());
  ASSERT_TRUE(bad.error);
  EXPECT_TRUE(bad.error->starts_with("Syntax: [string \"hook\"]:1:")) << *bad.error;
}

TEST(HookApi, SyncFilterIsTheAndOfBooleans) {
  auto r = make_lua_runner();
  Json ev = Json::parse(
      R"({"kind": "role", "entity": {"name": "admin"}, "targetTenant": {"id": "child1"}})");
  auto filter = [](const std::string& body, const std::string& id) {
    return script("function shouldSync(kind, entity, targetTenant)\n" + body + "\nend", id, "cp",
                  id);
  };
  auto yes = filter("return true", "yes");
  auto no_admin = filter(
      "return not (kind == 'role' and entity.name == 'admin' and targetTenant.id == 'child1')",
      "no_admin");
  auto other = filter("return kind == 'user'", "other");
  EXPECT_TRUE(r->run(Trigger::kSyncFilter, {yes, yes}, ev).sync);
  EXPECT_TRUE(r->run(Trigger::kSyncFilter, {}, ev).sync);
  Outcome o = r->run(Trigger::kSyncFilter, {yes, no_admin}, ev);
  EXPECT_FALSE(o.sync);
  EXPECT_TRUE(o.ok());
  EXPECT_FALSE(r->run(Trigger::kSyncFilter, {other, yes}, ev).sync);
  for (const char* ret : {"return 1", "return nil", "return 'true'", "", "return {}"}) {
    Outcome bad = r->run(Trigger::kSyncFilter, {yes, filter(ret, "bad")}, ev);
    EXPECT_FALSE(bad.sync) << ret;
    EXPECT_TRUE(contains(bad.error, "bad: shouldSync must return a boolean")) << ret;
  }
}

TEST(HookApi, CompileErrorReportsTheLineAndRefusesBinaryChunks) {
  auto r = make_lua_runner();
  EXPECT_EQ(r->compile_error("function onExecutePostLogin(event, api) end"), std::nullopt);
  auto err = r->compile_error("local a = 1\nlocal b = 2\nlocal c = = 3\nlocal d = 4\n");
  ASSERT_TRUE(err);
  EXPECT_TRUE(err->starts_with("[string \"hook\"]:3:")) << *err;

  EXPECT_TRUE(contains(r->compile_error("\x1bLua\x54"), "binary"));

  // A genuine binary chunk from a stock Lua state.
  lua_State* L = luaL_newstate();
  ASSERT_EQ(luaL_loadstring(L, "function onExecutePostLogin() print('bytecode') end"), LUA_OK);
  std::string bytecode;
  lua_dump(
      L,
      [](lua_State*, const void* p, size_t n, void* ud) {
        static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
        return 0;
      },
      &bytecode, 0);
  lua_close(L);
  EXPECT_TRUE(contains(r->compile_error(bytecode), "attempt to load a binary chunk"));
  Outcome out = r->run(Trigger::kPostLogin, {script(bytecode, "bin")}, Json::object());
  EXPECT_TRUE(contains(out.error, "bin: attempt to load a binary chunk")) << out.error.value_or("");
  EXPECT_TRUE(out.logs.empty());

  // compile_error runs nothing.
  EXPECT_EQ(r->compile_error("while true do end"), std::nullopt);
}

TEST(HookLimits, InstructionBudget) {
  Limits small;
  small.max_instructions = 20'000;
  auto r = make_lua_runner(small);
  EXPECT_TRUE(post_login(*r, "for i = 1, 1000 do end").ok());
  Outcome out = post_login(*r, "for i = 1, 1e6 do end", Json::object(), "Loop");
  EXPECT_TRUE(contains(out.error, "Loop: instruction budget exceeded")) << out.error.value_or("");
  // The budget is per call: the next call starts afresh.
  EXPECT_TRUE(post_login(*r, "for i = 1, 1000 do end").ok());
}

TEST(HookLimits, MemoryCap) {
  Limits lim;
  lim.max_instructions = 1'000'000'000;
  lim.timeout_ms = 60'000;
  lim.max_memory_bytes = 4u << 20;
  auto r = make_lua_runner(lim);
  EXPECT_TRUE(post_login(*r, "local t = {} for i = 1, 10000 do t[i] = i end").ok());
  Outcome out = post_login(*r, "local t = {} for i = 1, 1e8 do t[i] = i end");
  EXPECT_TRUE(contains(out.error, "memory limit exceeded")) << out.error.value_or("");
  // Garbage is not held: building and dropping much more than the cap is fine.
  Outcome churn =
      post_login(*r, "for i = 1, 200 do local t = {} for j = 1, 5000 do t[j] = j end end");
  EXPECT_TRUE(churn.ok()) << churn.error.value_or("");
  // And the state is still usable.
  EXPECT_TRUE(post_login(*r, "api.accessToken.setCustomClaim('x', 1)").ok());
}

TEST(HookLimits, WallClock) {
  Limits lim;
  lim.max_instructions = uint64_t{1} << 60;
  lim.timeout_ms = 50;
  auto r = make_lua_runner(lim);
  Outcome out = post_login(*r, "while true do end");
  EXPECT_TRUE(contains(out.error, "time limit exceeded")) << out.error.value_or("");
  Outcome swallowed = post_login(*r, "while true do pcall(function() while true do end end) end");
  EXPECT_TRUE(contains(swallowed.error, "time limit exceeded")) << swallowed.error.value_or("");
  Outcome pattern = post_login(*r, "string.find(string.rep('a', 100000), '.-.-.-.-b')");
  EXPECT_TRUE(contains(pattern.error, "time limit exceeded")) << pattern.error.value_or("");
}

TEST(HookState, CompiledCodeIsReplacedWhenTheCodeChanges) {
  auto r = make_lua_runner();
  auto v = [](int n) {
    return script("function onExecutePostLogin(e, api) api.accessToken.setCustomClaim('v', " +
                      std::to_string(n) + ") end",
                  "h", "t1", "hk_same");
  };
  EXPECT_EQ(r->run(Trigger::kPostLogin, {v(1)}, Json::object()).access_token_claims["v"], 1);
  EXPECT_EQ(r->run(Trigger::kPostLogin, {v(2)}, Json::object()).access_token_claims["v"], 2);
  EXPECT_EQ(r->run(Trigger::kPostLogin, {v(1)}, Json::object()).access_token_claims["v"], 1);
  // Same id, other tenant, other code.
  auto other =
      script("function onExecutePostLogin(e, api) api.accessToken.setCustomClaim('v', 9) end", "h",
             "t2", "hk_same");
  EXPECT_EQ(r->run(Trigger::kPostLogin, {other}, Json::object()).access_token_claims["v"], 9);
  EXPECT_EQ(r->run(Trigger::kPostLogin, {v(1)}, Json::object()).access_token_claims["v"], 1);
  // A fixed syntax error.
  auto broken = script("function onExecutePostLogin(", "h", "t1", "hk_fix");
  EXPECT_TRUE(r->run(Trigger::kPostLogin, {broken}, Json::object()).error);
  auto fixed = script("function onExecutePostLogin() end", "h", "t1", "hk_fix");
  EXPECT_TRUE(r->run(Trigger::kPostLogin, {fixed}, Json::object()).ok());
}

TEST(HookState, ManyScriptsOverflowTheCacheSafely) {
  auto r = make_lua_runner();
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 700; ++i) {
      auto s = script("function onExecutePostLogin(e, api) api.accessToken.setCustomClaim('i', " +
                          std::to_string(i) + ") end",
                      "h", "t" + std::to_string(i % 7), "hk_" + std::to_string(i));
      Outcome out = r->run(Trigger::kPostLogin, {s}, Json::object());
      ASSERT_EQ(out.access_token_claims["i"], i);
    }
  }
}

TEST(HookState, ConcurrentRunsOnOneRunner) {
  auto r = make_lua_runner();
  constexpr int kThreads = 4, kRuns = 300;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string tenant = "tenant" + std::to_string(t);
      for (int i = 0; i < kRuns; ++i) {
        Scripts s = {script(R"(function onExecutePostLogin(event, api)
                        assert(seen == nil) seen = true
                        api.accessToken.setCustomClaim("n", event.n * 2)
                        api.user.setAppMetadata("t", event.tenant)
                      end)",
                            "a", tenant, "hk_a"),
                     script(R"(function onExecutePostLogin(event, api)
                        api.idToken.setCustomClaim("t", event.user.app_metadata.t)
                      end)",
                            "b", tenant, "hk_b" + std::to_string(i % 3))};
        Json ev = {{"n", i}, {"tenant", tenant}, {"user", {{"app_metadata", Json::object()}}}};
        Outcome out = r->run(Trigger::kPostLogin, s, ev);
        if (!out.ok() || out.access_token_claims["n"] != 2 * i ||
            out.id_token_claims["t"] != tenant) {
          ++failures[t];
        }
        if (i % 50 == 0 && r->compile_error("x =") == std::nullopt) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

TEST(HookState, RunnersOnAThreadDoNotShareState) {
  auto a = make_lua_runner();
  auto b = make_lua_runner();
  const std::string body = "api.accessToken.setCustomClaim('seen', seen == true) seen = true";
  EXPECT_EQ(post_login(*a, body).access_token_claims["seen"], false);
  EXPECT_EQ(post_login(*b, body).access_token_claims["seen"], false);
  a.reset();  // its states go away; a new runner never reuses them
  auto c = make_lua_runner();
  EXPECT_EQ(post_login(*c, body).access_token_claims["seen"], false);
}

// Prints the cost of a trivial hook; never asserts on time.
TEST(HookPerformance, TrivialHookCost) {
  auto r = make_lua_runner();
  Scripts one = {script(R"(function onExecutePostLogin(event, api)
                             api.accessToken.setCustomClaim("https://example.com/role", "admin")
                           end)")};
  Json small = {{"user", {{"user_id", "auth0|1"}, {"email", "a@example.com"}}}};
  Json full = login_event();
  auto measure = [&](const Json& ev, const Scripts& s) {
    for (int i = 0; i < 1000; ++i) r->run(Trigger::kPostLogin, s, ev);
    constexpr int kN = 50'000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) r->run(Trigger::kPostLogin, s, ev);
    auto t1 = std::chrono::steady_clock::now();
    return std::chrono::duration<double, std::micro>(t1 - t0).count() / kN;
  };
  {
    auto t0 = std::chrono::steady_clock::now();
    auto fresh = make_lua_runner();
    fresh->run(Trigger::kPostLogin, one, small);  // creates this thread's state, compiles
    auto t1 = std::chrono::steady_clock::now();
    std::printf("[ cost     ] first run on a thread (new state): %.0f us\n",
                std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::printf("[ cost     ] no scripts: %.2f us per run\n", measure(small, {}));
  std::printf("[ cost     ] one trivial hook, small event: %.2f us per run\n", measure(small, one));
  std::printf("[ cost     ] one trivial hook, full login event: %.2f us per run\n",
              measure(full, one));
}

}  // namespace
}  // namespace ks::hooks
