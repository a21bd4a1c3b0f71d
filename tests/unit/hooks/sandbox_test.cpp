// The sandbox: escape attempts, limits a script tries to dodge, isolation between calls and
// tenants, and the metered pattern functions against stock Lua.
#include <gtest/gtest.h>

#include <lua.hpp>
#include <string>
#include <vector>

#include "hooks/lua_runner.h"
#include "tests/unit/hooks/hooks_test_util.h"

namespace ks::hooks {
namespace {

using test::contains;
using test::post_login;
using test::script;

struct Escape {
  const char* name;
  const char* body;    // the body of onExecutePostLogin
  const char* expect;  // a part of the error it must end with
};

// Every attempt must fail the hook; the state must stay usable and unchanged afterwards.
const Escape kEscapes[] = {
    {"io_open", R"(io.open("/etc/passwd"))", "global 'io'"},
    {"os_execute", R"(os.execute("id"))", "field 'execute'"},
    {"os_getenv", R"(return os.getenv("HOME"))", "field 'getenv'"},
    {"os_exit", R"(os.exit(1))", "field 'exit'"},
    {"os_remove", R"(os.remove("/tmp/x"))", "field 'remove'"},
    {"os_tmpname", R"(os.tmpname())", "field 'tmpname'"},
    {"require", R"(require("io"))", "global 'require'"},
    {"package_loaded", R"(return package.loaded.io)", "global 'package'"},
    {"debug_getinfo", R"(debug.getinfo(1))", "global 'debug'"},
    {"debug_sethook", R"(debug.sethook())", "global 'debug'"},
    {"debug_getupvalue", R"(debug.getupvalue(print, 1))", "global 'debug'"},
    {"dofile", R"(dofile("/etc/passwd"))", "global 'dofile'"},
    {"loadfile", R"(loadfile("/etc/passwd"))", "global 'loadfile'"},
    {"load_text", R"(load("return 1"))", "global 'load'"},
    {"load_binary", R"(load("\27Lua"))", "global 'load'"},
    {"string_dump", R"(string.dump(function() end))", "field 'dump'"},
    {"string_dump_method", R"(return ("").dump(print))", "field 'dump'"},
    {"collectgarbage_stop", R"(collectgarbage("stop"))", "only \"count\""},
    {"collectgarbage_collect", R"(collectgarbage())", "only \"count\""},
    {"coroutine", R"(coroutine.wrap(function() end)())", "global 'coroutine'"},
    {"math_randomseed", R"(math.randomseed(42))", "field 'randomseed'"},
    {"setmetatable_env", R"(setmetatable(_ENV, {}))", "protected metatable"},
    {"setmetatable_G", R"(setmetatable(_G, nil))", "protected metatable"},
    {"setmetatable_string", R"(setmetatable(string, {}))", "protected metatable"},
    {"setmetatable_api", R"(setmetatable(api.accessToken, {}))", "protected metatable"},
    {"gc_finalizer", R"(setmetatable({}, {__gc = function() print("later") end}))", "__gc"},
    {"string_metatable_index", R"(getmetatable("").__index.upper = nil)", "boolean value"},
    {"string_metatable_set", R"(setmetatable("", {}))", "table expected"},
    {"env_metatable_index", R"(getmetatable(_ENV).__index.print = nil)", "boolean value"},
    {"assign_string_upper", R"(string.upper = nil)", "read-only"},
    {"assign_string_rep", R"(string.rep = function() return "pwned" end)", "read-only"},
    {"assign_on_string_value", R"(("").rep = nil)", "index a string value"},
    {"assign_table_insert", R"(table.insert = print)", "read-only"},
    {"assign_math_pi", R"(math.pi = 3)", "read-only"},
    {"assign_api", R"(api.accessToken.setCustomClaim = print)", "read-only"},
    {"assign_api_root", R"(api.access = {})", "read-only"},
    {"rawset_string", R"(rawset(string, "upper", nil))", "read-only"},
    {"rawset_table", R"(rawset(table, "insert", print))", "read-only"},
    {"rawset_api", R"(rawset(api.user, "setAppMetadata", print))", "read-only"},
    {"table_insert_into_library", R"(table.insert(string, print))", "read-only"},
    {"table_move_into_library", R"(table.move({print}, 1, 1, 1, math))", "read-only"},
    {"pairs_hands_out_functions_only",
     R"(for k, v in pairs(string) do assert(type(v) == "function", k) end
        for k, v in pairs(api) do rawset(v, "x", 1) end)",
     "read-only"},
    {"infinite_loop", R"(while true do end)", "instruction budget exceeded"},
    {"pcall_swallows_budget", R"(while true do pcall(function() while true do end end) end)",
     "instruction budget exceeded"},
    {"nested_pcall_swallows_budget",
     R"(local function f() while true do pcall(pcall, pcall, function() while true do end end) end end
        while true do pcall(f) end)",
     "instruction budget exceeded"},
    {"xpcall_handler_loops",
     R"(while true do xpcall(function() while true do end end, function() while true do end end) end)",
     "instruction budget exceeded"},
    {"xpcall_handler_after_limit",
     R"(xpcall(function() while true do end end, function(e) print("handled", e) while true do end end))",
     "instruction budget exceeded"},
    {"error_in_close",
     R"(while true do pcall(function()
          local x <close> = setmetatable({}, {__close = function() while true do end end})
          while true do end
        end) end)",
     "instruction budget exceeded"},
    {"huge_table", R"(local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1000) .. i end)",
     "memory limit exceeded"},
    {"huge_table_of_numbers", R"(local t = {} for i = 1, 1e9 do t[i] = i end)", "exceeded"},
    {"huge_string", R"(local s = "x" while true do s = s .. s end)", "memory limit exceeded"},
    {"string_rep_huge", R"(string.rep("x", 1e9))", "memory limit exceeded"},
    {"string_rep_huge_caught", R"(pcall(string.rep, "x", 2^40) return)", "memory limit exceeded"},
    {"memory_error_swallowed",
     R"(while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(999) .. i end end) end)",
     "limit exceeded"},
    {"table_concat_huge",
     R"(local t = {} for i = 1, 5e5 do t[i] = "0123456789" end
        local all = {} for i = 1, 100 do all[i] = table.concat(t) end)",
     "limit exceeded"},
    {"string_rep_empty_forever", R"(string.rep("", math.maxinteger) while true do end)",
     "instruction budget exceeded"},
    {"deep_recursion", R"(local function f(n) return 1 + f(n + 1) end f(1))", "hook: "},
    {"metamethod_recursion",
     R"(local t = setmetatable({}, {}) getmetatable(t).__index = function(t, k) return t[k] end
        return t.x)",
     "hook: "},
    {"tostring_recursion",
     R"(local t = setmetatable({}, {}) getmetatable(t).__tostring = function(t) return tostring(t) end
        print(t))",
     "hook: "},
    {"pattern_too_deep", R"(string.find(string.rep("a", 1000), string.rep("a?", 1000) .. "b"))",
     "pattern too complex"},
    {"pattern_backtracking", R"(string.find(string.rep("a", 100000), ".-.-.-.-b"))",
     "instruction budget exceeded"},
    {"pattern_backtracking_caught",
     R"(pcall(string.match, string.rep("a", 100000), "(.-)(.-)(.-)b") return)",
     "instruction budget exceeded"},
    {"gmatch_backtracking", R"(for x in string.gmatch(string.rep("a", 50000), "a*a*a*b") do end)",
     "instruction budget exceeded"},
    {"gsub_backtracking", R"(string.gsub(string.rep("a", 50000), "a-a-a-b", "x"))",
     "instruction budget exceeded"},
    {"plain_find_quadratic",
     R"(local s = string.rep("a", 1e6) s:find(string.rep("a", 5e5) .. "b", 1, true))",
     "instruction budget exceeded"},
    {"gsub_with_c_callback", R"(string.gsub(string.rep("a", 4e6), ".", pcall))",
     "instruction budget exceeded"},
    {"linear_c_work_in_a_loop",
     R"(local s = string.rep("\u{e9}", 1e6) for i = 1, 1e6 do utf8.len(s) tonumber(s) s:upper() end)",
     "instruction budget exceeded"},
    {"table_move_forever", R"(table.move({}, 1, math.maxinteger - 1, 2))",
     "instruction budget exceeded"},
    {"table_insert_fake_len",
     R"(local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end})
        table.insert(t, 1, "x"))",
     "instruction budget exceeded"},
    {"table_remove_fake_len",
     R"(local t = setmetatable({}, {__len = function() return math.maxinteger - 1 end})
        table.remove(t, 1))",
     "instruction budget exceeded"},
    {"table_concat_fan_out",
     R"(local t = setmetatable({}, {__index = table.concat})
        table.concat(t, "", 1, math.maxinteger))",
     "instruction budget exceeded"},
    {"table_unpack_fan_out",
     R"(local t = setmetatable({}, {})
        getmetatable(t).__index = function(t, k) return pcall(table.unpack, t, 1, 999990) end
        getmetatable(t).__len = function() return 999990 end
        table.unpack(t, 1, 999990))",
     "exceeded"},
    {"table_sort_c_comparator",
     R"(local t = {} for i = 1, 2e5 do t[i] = i % 7 end table.sort(t, rawequal))", "exceeded"},
    {"error_object_tostring_loops",
     R"(error(setmetatable({}, {__tostring = function() while true do end end})))",
     "instruction budget exceeded"},
    {"format_tostring_loops",
     R"(string.format("%s", setmetatable({}, {__tostring = function() while true do end end})))",
     "instruction budget exceeded"},
    {"error_object_tostring_errors",
     R"(error(setmetatable({}, {__tostring = function() error("inner") end})))",
     "(error object is a table value)"},
    {"error_object_table", R"(error({code = 1}))", "(error object is a table value)"},
    {"error_object_nil", R"(error())", "(error object is a nil value)"},
    {"claims_exponential_structure",
     R"(local t = {} for i = 1, 40 do t = {t, t} end api.accessToken.setCustomClaim("x", t))",
     "tables nested too deeply"},
    {"claims_wide_structure",
     R"(local t = {} for i = 1, 2e5 do t[i] = i end
        local u = {} for i = 1, 20 do u[i] = t end
        api.accessToken.setCustomClaim("x", u))",
     "exceeded"},
};

class SandboxEscape : public ::testing::TestWithParam<Escape> {};

TEST_P(SandboxEscape, IsRefused) {
  static auto runner = make_lua_runner();
  const Escape& e = GetParam();
  Outcome out = post_login(*runner, e.body);
  ASSERT_TRUE(out.error) << e.name << ": the attempt succeeded";
  EXPECT_TRUE(contains(out.error, e.expect)) << e.name << ": " << *out.error;
  EXPECT_TRUE(out.error->starts_with("hook: ")) << *out.error;
  EXPECT_TRUE(out.access_token_claims.empty());
  // The state is intact for the next call.
  Outcome next = post_login(*runner, R"(
    assert(string.upper("a") == "A" and ("x"):rep(3) == "xxx" and string.dump == nil)
    assert(getmetatable("") == false and rawget(string, "upper") == nil)
    local t = {3, 1, 2} table.sort(t) table.insert(t, 4)
    assert(table.concat(t, ",") == "1,2,3,4" and math.pi > 3 and print ~= nil)
    assert(api.accessToken.setCustomClaim ~= print and api.access ~= nil)
    local n = 0 for _ in pairs(_ENV) do n = n + 1 end
    assert(x == nil and n == 2)  -- only _G and this function
    api.accessToken.setCustomClaim("ok", true)
  )");
  EXPECT_TRUE(next.ok()) << e.name << ": " << next.error.value_or("");
  EXPECT_EQ(next.access_token_claims["ok"], true) << e.name;
  EXPECT_TRUE(next.logs.empty()) << e.name;  // no finalizer or leftover ran
}

INSTANTIATE_TEST_SUITE_P(All, SandboxEscape, ::testing::ValuesIn(kEscapes),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SandboxIsolation, GlobalsDoNotLeakBetweenCalls) {
  auto r = make_lua_runner();
  const std::string body = R"(
    api.accessToken.setCustomClaim("seen", leaked ~= nil)
    leaked = true
    _G.also = 1
    rawset(_ENV, "raw", 1)
    print = nil
  )";
  for (int i = 0; i < 3; ++i) {
    Outcome out = post_login(*r, body);
    ASSERT_TRUE(out.ok()) << out.error.value_or("");
    EXPECT_EQ(out.access_token_claims["seen"], false);
  }
  Outcome after = post_login(*r, "print(also, raw, leaked)");
  EXPECT_EQ(after.logs, std::vector<std::string>{"nil\tnil\tnil"});
}

TEST(SandboxIsolation, NothingLeaksAcrossTenants) {
  auto r = make_lua_runner();
  auto a = script(R"(secret = "tenant A"
                     function onExecutePostLogin(event, api)
                       event.user.email = "admin@a.com"  -- the event is a fresh copy per script
                       shared_note = "from A"
                       pcall(function() string.secret = "A" end)
                       pcall(rawset, table, "secret", "A")
                     end)",
                  "a", "tenantA", "hk_1");
  auto b = script(R"(function onExecutePostLogin(event, api)
                       api.accessToken.setCustomClaim("view", {secret = secret or "none",
                         note = shared_note or "none", s = string.secret or "none",
                         t = table.secret or "none", email = event.user.email})
                     end)",
                  "b", "tenantB", "hk_1");
  Json ev = {{"user", {{"email", "b@b.com"}}}};
  // In one run (as a child's hooks followed by the control plane's) and in separate runs.
  Outcome both = r->run(Trigger::kPostLogin, {a, b}, ev);
  ASSERT_TRUE(both.ok()) << both.error.value_or("");
  const Json clean = Json::parse(
      R"({"secret": "none", "note": "none", "s": "none", "t": "none", "email": "b@b.com"})");
  EXPECT_EQ(both.access_token_claims["view"], clean);
  r->run(Trigger::kPostLogin, {a}, ev);
  EXPECT_EQ(r->run(Trigger::kPostLogin, {b}, ev).access_token_claims["view"], clean);
}

TEST(SandboxIsolation, ChunkLocalsAndEnvReplacementDoNotPersist) {
  auto r = make_lua_runner();
  auto counter = script(R"(local n = 0
                           function onExecutePostLogin(event, api)
                             n = n + 1
                             api.accessToken.setCustomClaim("n", n)
                           end)");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r->run(Trigger::kPostLogin, {counter}, Json::object()).access_token_claims["n"], 1);
  }
  // A script that replaces _ENV (at top level and inside its entry point).
  auto swap = script(R"(
    if marker then error("leaked") end
    marker = true
    function onExecutePostLogin(event, api)
      _ENV = setmetatable({}, {__index = function() return "evil" end})
    end)",
                     "swap", "t1", "hk_swap");
  auto probe = script(R"(function onExecutePostLogin(event, api)
                           api.accessToken.setCustomClaim("m", tostring(marker))
                           api.accessToken.setCustomClaim("p", type(print))
                         end)",
                      "probe", "t1", "hk_probe");
  for (int i = 0; i < 3; ++i) {
    Outcome out = r->run(Trigger::kPostLogin, {swap, probe}, Json::object());
    ASSERT_TRUE(out.ok()) << out.error.value_or("");
    EXPECT_EQ(out.access_token_claims["m"], "nil");
    EXPECT_EQ(out.access_token_claims["p"], "function");
  }
}

TEST(SandboxIsolation, SharedLibrariesSurviveCaughtAttempts) {
  auto r = make_lua_runner();
  Outcome attack = post_login(*r, R"(
    pcall(function() string.rep = function() return "pwned" end end)
    pcall(function() getmetatable("").__index.rep = nil end)
    pcall(rawset, string, "rep", print)
    pcall(function() table.insert = nil end)
    pcall(setmetatable, string, {__index = function() return print end})
    local s = string  -- a local alias changes nothing shared either
    pcall(function() s.upper = nil end)
    string = {rep = function() return "pwned" end}  -- only this call's global
    assert(string.rep() == "pwned")
  )");
  ASSERT_TRUE(attack.ok()) << attack.error.value_or("");
  Outcome next = post_login(*r, R"(
    api.accessToken.setCustomClaim("rep", ("ab"):rep(2))
    api.accessToken.setCustomClaim("rep2", string.rep("c", 2))
    api.accessToken.setCustomClaim("upper", string.upper("x"))
    local t = {} table.insert(t, 1)
    api.accessToken.setCustomClaim("n", #t)
  )");
  ASSERT_TRUE(next.ok()) << next.error.value_or("");
  EXPECT_EQ(next.access_token_claims, Json::parse(R"({"rep": "abab", "rep2": "cc",
      "upper": "X", "n": 1})"));
}

TEST(SandboxLibrary, WhatIsOffered) {
  auto r = make_lua_runner();
  Outcome out = post_login(*r, R"(
    local names = {}
    for k in pairs(_ENV) do names[#names + 1] = k end
    assert(#names == 2)  -- _G and onExecutePostLogin
    for _, f in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "select",
        "tonumber", "tostring", "type", "xpcall", "rawequal", "rawlen", "rawget", "rawset",
        "getmetatable", "setmetatable", "print", "collectgarbage"}) do
      assert(type(_ENV[f]) == "function", f)
    end
    for _, f in ipairs({"load", "loadstring", "dofile", "loadfile", "require", "module",
        "io", "debug", "package", "coroutine", "newproxy", "setfenv", "getfenv"}) do
      assert(_ENV[f] == nil, f)
    end
    assert(_VERSION == "Lua 5.4" and _G == _ENV)
    assert(type(os.time()) == "number" and type(os.clock()) == "number")
    assert(os.date("!%Y", 0) == "1970" and os.difftime(2, 1) == 1)
    assert(math.type(math.random(1, 6)) == "integer" and math.tointeger(3.0) == 3)
    assert(utf8.len("café") == 4 and utf8.char(233) == "é")
    assert(("%d-%s"):format(1, "a") == "1-a" and ("abc"):byte(2) == 98)
    assert(table.unpack({1, 2, 3}, 2) == 2 and select("#", table.unpack({1, 2, 3})) == 3)
    assert(table.pack(1, 2).n == 2)
    local t = {5, 2, 8} table.sort(t, function(a, b) return a > b end)
    assert(table.concat(t, " ") == "8 5 2")
    assert(table.remove(t) == 2 and table.remove(t, 1) == 8 and #t == 1)
    local m = table.move({1, 2, 3}, 1, 3, 2) assert(table.concat(m, ",") == "1,1,2,3")
    local p = setmetatable({}, {__index = function(_, i) if i <= 3 then return i * 10 end end,
                                __len = function() return 3 end})
    assert(table.concat(p, ",") == "10,20,30" and select(3, table.unpack(p)) == 30)
    local ok, err = pcall(table.insert, {}, 5, 1)
    assert(not ok and err:find("position out of bounds"), err)
    ok, err = pcall(table.concat, {1, {}, 3})
    assert(not ok and err:find("invalid value"), err)
    assert(type(collectgarbage("count")) == "number")
    local mt = {} local obj = setmetatable({}, mt)
    assert(getmetatable(obj) == mt)  -- a script's own metatables work
    assert(string.rep("", math.maxinteger) == "")
    assert(string.rep("ab", 3, ",") == "ab,ab,ab" and string.rep("", 3, "-") == "--")
  )");
  EXPECT_TRUE(out.ok()) << out.error.value_or("");
}

// The metered pattern functions give the results of stock Lua's.
TEST(SandboxPatterns, MatchStockLua) {
  const std::vector<std::string> exprs = {
      R"~(string.find("hello world", "o w"))~",
      R"~(string.find("hello world", "o", 6))~",
      R"~(string.find("hello world", "l+"))~",
      R"~(string.find("hello", "l", -2))~",
      R"~(string.find("hello", "", 10))~",
      R"~(string.find("hello", "", 6))~",
      R"~(string.find("a.b", ".", 1, true))~",
      R"~(string.find("a+b", "+", 1, true))~",
      R"~(string.find("abc", "b", -100))~",
      R"~(string.find("a\0b", "\0b"))~",
      R"~(string.find("a\0b", "%z"))~",
      R"~(string.find("key = value", "(%w+)%s*=%s*(%w+)"))~",
      R"~(string.find("[[x]]", "[[]"))~",
      R"~(string.find("x]y", "[]]"))~",
      R"~(string.find("x^y", "[%^]"))~",
      R"~(string.find("x-y", "[a%-]"))~",
      R"~(string.find("abc", "[^a]"))~",
      R"~(string.find("abc", "[a-b]+"))~",
      R"~(string.find("  abc", "^%s*"))~",
      R"~(string.find("abc", "^b"))~",
      R"~(string.find("abc", "c$"))~",
      R"~(string.find("a$c", "$c"))~",
      R"~(string.find("THE (quick) fox", "%((%a+)%)"))~",
      R"~(string.find("f(a(b)c)d", "%b()"))~",
      R"~(string.find("THE (quick) fox", "%f[%a]%a+", 5))~",
      R"~(string.find("hello hello", "(l+)o %w-%1"))~",
      R"~(string.find("abab", "()ab()"))~",
      R"~(string.match("2024-01-31", "(%d+)-(%d+)-(%d+)"))~",
      R"~(string.match("  trim  ", "^%s*(.-)%s*$"))~",
      R"~(string.match("x=1, y=2", "y=(%d)"))~",
      R"~(string.match("hello", "()ll()"))~",
      R"~(string.match("hello", ".-"))~",
      R"~(string.match("hello", "l*"))~",
      R"~(string.match("aaa", "a-b"))~",
      R"~(string.match("aaab", "a-b"))~",
      R"~(string.match("ab12", "%a+%d?"))~",
      R"~(string.match("ab", "a?b?c?"))~",
      R"~(string.match("hello", "h", 2))~",
      R"~(string.match("%d", "%%d"))~",
      R"~(string.match("ÀB", "%u"))~",
      R"~(string.match("a.b", "%.(.)"))~",
      R"~(string.match("ab", "[%a][%A]?"))~",
      R"~(string.match("a1_!", "[%w_]+"))~",
      R"~(string.match("\t x", "%S"))~",
      R"~(string.match("0x1F", "0x(%x+)"))~",
      R"~(string.match("hello", "(h)(e)(l)(l)(o)"))~",
      R"~(string.match("THE END", "%f[%w]%w+$"))~",
      R"~(string.match("abc", "((a)(b))"))~",
      R"~(string.gsub("hello world", "o", "0"))~",
      R"~(string.gsub("hello world", "(%w+)", "<%1>"))~",
      R"~(string.gsub("hello world", "%w+", "%0 %0", 1))~",
      R"~(string.gsub("abc", "", "-"))~",
      R"~(string.gsub("abc", ".-", "-"))~",
      R"~(string.gsub("abc", "b*", "X"))~",
      R"~(string.gsub("hello", "l", {l = "L"}))~",
      R"~(string.gsub("hello", "(h)(e)", {h = 1}))~",
      R"~(string.gsub("hello", "l", function(x) return nil end))~",
      R"~(string.gsub("hello", "(l)(l)", function(a, b) return b .. a .. "!" end))~",
      R"~(string.gsub("abc", "^a", "X"))~",
      R"~(string.gsub("aaa", "^a", "X"))~",
      R"~(string.gsub("abc", "()", "%1"))~",
      R"~(string.gsub("100%", "%%", "%%%%"))~",
      R"~(string.gsub("x", "x", 5))~",
      R"~(string.gsub("x y z", "%s", "", 0))~",
      R"~(string.gsub("x y z", "%s", "", -1))~",
      R"~(string.gsub("abc", "b", "%%"))~",
      R"~(string.gsub("THE (quick) fox", "%f[%a]%a+", "W"))~",
      R"~(string.gsub("hello world from Lua", "(%w+) (%w+)", "%2 %1"))~",
      R"~(string.gsub("", "", "x"))~",
      R"~((function() local r = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do r[#r+1] = k .. v end return table.concat(r, ";") end)())~",
      R"~((function() local r = {} for w in string.gmatch("one two  three", "%a+") do r[#r+1] = w end return table.concat(r, ";") end)())~",
      R"~((function() local r = {} for w in string.gmatch("abc", "") do r[#r+1] = "[" .. w .. "]" end return table.concat(r, ";") end)())~",
      R"~((function() local r = {} for w in string.gmatch("abc", "b*") do r[#r+1] = "[" .. w .. "]" end return table.concat(r, ";") end)())~",
      R"~((function() local r = {} for p in string.gmatch("abc", "()") do r[#r+1] = p end return table.concat(r, ";") end)())~",
      R"~((function() local r = {} for w in string.gmatch("hello world", "%a+", 3) do r[#r+1] = w end return table.concat(r, ";") end)())~",
      R"~((function() local r = {} for w in string.gmatch("hello", ".", 10) do r[#r+1] = w end return #r end)())~",
      R"~((function() local r = {} for w in string.gmatch("^a^a", "^a") do r[#r+1] = w end return #r end)())~",
      R"~(string.find(123456, 34))~",
      R"~(string.gsub(12321, 2, 0))~",
      // Errors (the message is compared too).
      R"~(string.find("a", "%"))~",
      R"~(string.find("a", "[a"))~",
      R"~(string.find("a", "[^"))~",
      R"~(string.find("a", "(a"))~",
      R"~(string.find("a", "a)"))~",
      R"~(string.find("a", "%1"))~",
      R"~(string.find("a", "(a)%2"))~",
      R"~(string.find("a", "%b"))~",
      R"~(string.find("a", "%f"))~",
      R"~(string.find("a", "%fa"))~",
      R"~(string.gsub("a", "a", "%2"))~",
      R"~(string.gsub("a", "(a)", "%2"))~",
      R"~(string.gsub("a", "a", "%x"))~",
      R"~(string.gsub("a", "a", "%"))~",
      R"~(string.gsub("a", "a", true))~",
      R"~(string.gsub("a", "a", function() return {} end))~",
      R"~(string.match("a", string.rep("(", 40) .. "a" .. string.rep(")", 40)))~",
      R"~(string.rep("x", -1))~",
      R"~(string.rep("x", 3, 4))~",
  };
  auto code_for = [](const std::string& expr) {
    return "local function ser(ok, ...) if not ok then return 'error: ' .. tostring((...)) end "
           "local t = {} for i = 1, select('#', ...) do local v = select(i, ...) "
           "t[i] = type(v) .. ':' .. tostring(v) end return table.concat(t, ',') end "
           "return ser(pcall(function() return " +
           expr + " end))";
  };
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  auto r = make_lua_runner();
  for (const std::string& expr : exprs) {
    ASSERT_EQ(luaL_dostring(L, code_for(expr).c_str()), LUA_OK) << expr;
    std::string stock = lua_tostring(L, -1);
    lua_settop(L, 0);
    Outcome out = post_login(*r, "local v = (function() " + code_for(expr) +
                                     " end)() api.accessToken.setCustomClaim('v', v)");
    ASSERT_TRUE(out.ok()) << expr << ": " << out.error.value_or("");
    // Error positions differ (the stock state's chunk vs the hook's); compare after them.
    auto strip = [](std::string s) {
      if (s.starts_with("error: ")) {
        auto colon = s.find("]:");
        if (colon != std::string::npos) s = "error: " + s.substr(s.find(' ', colon) + 1);
      }
      return s;
    };
    EXPECT_EQ(strip(out.access_token_claims["v"].get<std::string>()), strip(stock)) << expr;
  }
  lua_close(L);
}

}  // namespace
}  // namespace ks::hooks
