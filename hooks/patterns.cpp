// string.find / match / gmatch / gsub with Lua 5.4 pattern semantics, written for the sandbox:
// the stock matcher bounds its recursion ("pattern too complex") but not its backtracking, and a
// C function is invisible to the count hook, so `("a"):rep(1e5):find(".-.-.-.-b")` would run for
// hours. Here every matcher step is charged to the call's instruction budget (and the clock is
// checked), so such a pattern ends with "instruction budget exceeded" or "time limit exceeded".
//
// Every function below may raise a Lua error (a longjmp): only trivially destructible locals.
#include <cctype>
#include <cstring>

#include "hooks/sandbox.h"

namespace ks::hooks::detail {
namespace {

constexpr int kMaxCaptures = 32;
constexpr ptrdiff_t kCapUnfinished = -1;
constexpr ptrdiff_t kCapPosition = -2;
constexpr int kMaxDepth = 200;          // matcher recursion, as LUAI_MAXCCALLS in stock Lua
constexpr uint32_t kChargeEvery = 256;  // steps between two charges
constexpr char kEsc = '%';

struct Capture {
  const char* init;
  ptrdiff_t len;
};

struct Matcher {
  lua_State* L;
  const char* src;  // the subject
  const char* src_end;
  const char* pat_end;
  int depth;       // recursion left
  int level;       // captures open or closed so far
  uint32_t steps;  // work not yet charged
  Capture capture[kMaxCaptures];

  void reset() {
    level = 0;
    depth = kMaxDepth;
  }
  void step(uint32_t n = 1) {
    steps += n;
    if (steps >= kChargeEvery) flush();
  }
  void flush() {
    const uint32_t n = steps;
    steps = 0;
    charge(L, n);
  }
};

void setup(Matcher& m, lua_State* L, const char* s, size_t ls, const char* p, size_t lp) {
  m.L = L;
  m.src = s;
  m.src_end = s + ls;
  m.pat_end = p + lp;
  m.steps = 0;
  m.reset();
}

int uc(char c) { return static_cast<unsigned char>(c); }

// One past the end of the single-character class starting at p.
const char* class_end(Matcher& m, const char* p) {
  const char c = *p++;
  if (c == kEsc) {
    if (p >= m.pat_end) luaL_error(m.L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < m.pat_end && *p == '^') ++p;
    // The first character of a set is literal, even ']'.
    do {
      if (p >= m.pat_end) luaL_error(m.L, "malformed pattern (missing ']')");
      const char cc = *p++;
      if (cc == kEsc && p < m.pat_end) ++p;
    } while (p >= m.pat_end || *p != ']');
    return p + 1;
  }
  return p;
}

bool class_matches(int c, int cl) {
  bool r;
  switch (std::tolower(cl)) {
    case 'a':
      r = std::isalpha(c);
      break;
    case 'c':
      r = std::iscntrl(c);
      break;
    case 'd':
      r = std::isdigit(c);
      break;
    case 'g':
      r = std::isgraph(c);
      break;
    case 'l':
      r = std::islower(c);
      break;
    case 'p':
      r = std::ispunct(c);
      break;
    case 's':
      r = std::isspace(c);
      break;
    case 'u':
      r = std::isupper(c);
      break;
    case 'w':
      r = std::isalnum(c);
      break;
    case 'x':
      r = std::isxdigit(c);
      break;
    case 'z':  // deprecated, but stock 5.4 still has it
      r = c == 0;
      break;
    default:
      return cl == c;  // an escaped non-letter stands for itself
  }
  return std::isupper(cl) ? !r : r;
}

// p points at '[', last at the closing ']'.
bool set_matches(int c, const char* p, const char* last) {
  bool in = true;
  if (*(p + 1) == '^') {
    in = false;
    ++p;
  }
  while (++p < last) {
    if (*p == kEsc) {
      ++p;
      if (class_matches(c, uc(*p))) return in;
    } else if (*(p + 1) == '-' && p + 2 < last) {
      if (uc(*p) <= c && c <= uc(*(p + 2))) return in;
      p += 2;
    } else if (uc(*p) == c) {
      return in;
    }
  }
  return !in;
}

bool single_matches(const Matcher& m, const char* s, const char* p, const char* ep) {
  if (s >= m.src_end) return false;
  const int c = uc(*s);
  switch (*p) {
    case '.':
      return true;
    case kEsc:
      return class_matches(c, uc(*(p + 1)));
    case '[':
      return set_matches(c, p, ep - 1);
    default:
      return uc(*p) == c;
  }
}

const char* match(Matcher& m, const char* s, const char* p);

const char* max_expand(Matcher& m, const char* s, const char* p, const char* ep) {
  ptrdiff_t i = 0;
  while (single_matches(m, s + i, p, ep)) {
    ++i;
    m.step();
  }
  for (; i >= 0; --i) {  // try the longest run first
    if (const char* r = match(m, s + i, ep + 1)) return r;
  }
  return nullptr;
}

const char* min_expand(Matcher& m, const char* s, const char* p, const char* ep) {
  for (;;) {
    if (const char* r = match(m, s, ep + 1)) return r;
    if (!single_matches(m, s, p, ep)) return nullptr;
    ++s;
  }
}

const char* start_capture(Matcher& m, const char* s, const char* p, ptrdiff_t what) {
  if (m.level >= kMaxCaptures) luaL_error(m.L, "too many captures");
  m.capture[m.level].init = s;
  m.capture[m.level].len = what;
  ++m.level;
  const char* r = match(m, s, p);
  if (!r) --m.level;
  return r;
}

const char* end_capture(Matcher& m, const char* s, const char* p) {
  int l = m.level - 1;
  while (l >= 0 && m.capture[l].len != kCapUnfinished) --l;
  if (l < 0) luaL_error(m.L, "invalid pattern capture");
  m.capture[l].len = s - m.capture[l].init;
  const char* r = match(m, s, p);
  if (!r) m.capture[l].len = kCapUnfinished;
  return r;
}

// %bxy at s; p points at x.
const char* match_balance(Matcher& m, const char* s, const char* p) {
  if (p + 1 >= m.pat_end) luaL_error(m.L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m.src_end || *s != *p) return nullptr;
  const char open = *p, close = *(p + 1);
  int depth = 1;
  while (++s < m.src_end) {
    m.step();
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      ++depth;
    }
  }
  return nullptr;
}

// %1..%9 at s.
const char* match_back_reference(Matcher& m, const char* s, int digit) {
  const int l = digit - '1';
  if (l < 0 || l >= m.level || m.capture[l].len == kCapUnfinished) {
    luaL_error(m.L, "invalid capture index %%%d", l + 1);
  }
  const ptrdiff_t len = m.capture[l].len;
  if (len < 0) return nullptr;  // a position capture matches no text
  m.step(1 + static_cast<uint32_t>(len / 64));
  if (m.src_end - s >= len && std::memcmp(m.capture[l].init, s, static_cast<size_t>(len)) == 0) {
    return s + len;
  }
  return nullptr;
}

// Matches pattern p at s; the end of the match, or nullptr.
const char* match(Matcher& m, const char* s, const char* p) {
  if (m.depth-- == 0) luaL_error(m.L, "pattern too complex");
  m.step();
  for (;;) {
    if (p == m.pat_end) break;
    if (*p == '(') {
      s = (p + 1 < m.pat_end && *(p + 1) == ')') ? start_capture(m, s, p + 2, kCapPosition)
                                                 : start_capture(m, s, p + 1, kCapUnfinished);
      break;
    }
    if (*p == ')') {
      s = end_capture(m, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == m.pat_end) {
      if (s != m.src_end) s = nullptr;
      break;
    }
    if (*p == kEsc && p + 1 < m.pat_end) {
      const char next = *(p + 1);
      if (next == 'b') {
        s = match_balance(m, s, p + 2);
        if (!s) break;
        p += 4;
        continue;
      }
      if (next == 'f') {
        p += 2;
        if (p >= m.pat_end || *p != '[') luaL_error(m.L, "missing '[' after '%%f' in pattern");
        const char* ep = class_end(m, p);
        const int prev = (s == m.src) ? '\0' : uc(*(s - 1));
        const int cur = (s < m.src_end) ? uc(*s) : '\0';
        if (!set_matches(prev, p, ep - 1) && set_matches(cur, p, ep - 1)) {
          p = ep;
          continue;
        }
        s = nullptr;
        break;
      }
      if (std::isdigit(uc(next))) {
        s = match_back_reference(m, s, uc(next));
        if (!s) break;
        p += 2;
        continue;
      }
    }
    // A single-character class, maybe followed by a repetition.
    const char* ep = class_end(m, p);
    const char rep = ep < m.pat_end ? *ep : '\0';
    if (!single_matches(m, s, p, ep)) {
      if (rep == '*' || rep == '?' || rep == '-') {  // these accept an empty match
        p = ep + 1;
        continue;
      }
      s = nullptr;
      break;
    }
    if (rep == '?') {
      if (const char* r = match(m, s + 1, ep + 1)) {
        s = r;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (rep == '+') {
      s = max_expand(m, s + 1, p, ep);
      break;
    }
    if (rep == '*') {
      s = max_expand(m, s, p, ep);
      break;
    }
    if (rep == '-') {
      s = min_expand(m, s, p, ep);
      break;
    }
    ++s;
    p = ep;
  }
  ++m.depth;
  return s;
}

// Capture i (0-based) of a match s..e: pushes it and returns 1. Capture 0 with no explicit
// captures is the whole match.
void push_capture(Matcher& m, int i, const char* s, const char* e) {
  if (i >= m.level) {
    if (i != 0) luaL_error(m.L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m.L, s, static_cast<size_t>(e - s));
    return;
  }
  const Capture& c = m.capture[i];
  if (c.len == kCapUnfinished) luaL_error(m.L, "unfinished capture");
  if (c.len == kCapPosition) {
    lua_pushinteger(m.L, static_cast<lua_Integer>(c.init - m.src) + 1);
  } else {
    lua_pushlstring(m.L, c.init, static_cast<size_t>(c.len));
  }
}

// Pushes the captures (or the whole match when there are none and s is given).
int push_captures(Matcher& m, const char* s, const char* e) {
  const int n = (m.level == 0 && s) ? 1 : m.level;
  luaL_checkstack(m.L, n, "too many captures");
  for (int i = 0; i < n; ++i) push_capture(m, i, s, e);
  return n;
}

// A start position argument as a 1-based offset clamped to [1, len + 1] from below.
size_t start_position(lua_Integer pos, size_t len) {
  if (pos > 0) return static_cast<size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return len + static_cast<size_t>(pos) + 1;
}

bool has_specials(const char* p, size_t lp) {
  for (size_t i = 0; i < lp; ++i) {
    if (p[i] != '\0' && std::strchr("^$*+?.([%-", p[i])) return true;
  }
  return false;
}

// Plain substring search, charged by the bytes compared.
const char* find_plain(Matcher& m, const char* s, size_t ls, const char* p, size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return nullptr;
  const char* last = s + (ls - lp);
  while (s <= last) {
    const void* hit = std::memchr(s, *p, static_cast<size_t>(last - s) + 1);
    if (!hit) return nullptr;
    const char* c = static_cast<const char*>(hit);
    m.step(1 + static_cast<uint32_t>(lp / 64));
    if (std::memcmp(c + 1, p + 1, lp - 1) == 0) return c;
    s = c + 1;
  }
  return nullptr;
}

int find_aux(lua_State* L, bool find) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const size_t init = start_position(luaL_optinteger(L, 3, 1), ls);
  if (init > ls + 1) {
    lua_pushnil(L);
    return 1;
  }
  Matcher m;
  setup(m, L, s, ls, p, lp);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    const char* hit = find_plain(m, s + init - 1, ls - init + 1, p, lp);
    m.flush();
    if (hit) {
      lua_pushinteger(L, static_cast<lua_Integer>(hit - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>(hit - s + lp));
      return 2;
    }
    lua_pushnil(L);
    return 1;
  }
  const bool anchor = lp > 0 && *p == '^';
  if (anchor) ++p;
  const char* s1 = s + init - 1;
  do {
    m.reset();
    if (const char* e = match(m, s1, p)) {
      m.flush();
      if (find) {
        lua_pushinteger(L, static_cast<lua_Integer>(s1 - s) + 1);
        lua_pushinteger(L, static_cast<lua_Integer>(e - s));
        return push_captures(m, nullptr, nullptr) + 2;
      }
      return push_captures(m, s1, e);
    }
  } while (s1++ < m.src_end && !anchor);
  m.flush();
  lua_pushnil(L);
  return 1;
}

// gmatch's iterator; upvalues: subject, pattern, next offset, offset of the last match end (-1).
int gmatch_step(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  const lua_Integer pos = lua_tointeger(L, lua_upvalueindex(3));
  const lua_Integer last = lua_tointeger(L, lua_upvalueindex(4));
  Matcher m;
  setup(m, L, s, ls, p, lp);
  for (const char* src = s + pos; src <= m.src_end; ++src) {
    m.reset();
    const char* e = match(m, src, p);
    if (e && (last < 0 || e != s + last)) {  // never the same empty match twice
      lua_pushinteger(L, static_cast<lua_Integer>(e - s));
      lua_pushvalue(L, -1);
      lua_replace(L, lua_upvalueindex(3));
      lua_replace(L, lua_upvalueindex(4));
      m.flush();
      return push_captures(m, src, e);
    }
  }
  lua_pushinteger(L, static_cast<lua_Integer>(ls) + 1);  // exhausted
  lua_replace(L, lua_upvalueindex(3));
  m.flush();
  return 0;
}

// Appends the replacement for the match s..e; false when the match is kept as it was.
bool add_replacement(Matcher& m, luaL_Buffer* b, const char* s, const char* e, int repl_type) {
  lua_State* L = m.L;
  m.step();
  if (repl_type == LUA_TSTRING || repl_type == LUA_TNUMBER) {
    size_t l = 0;
    const char* r = lua_tolstring(L, 3, &l);
    const char* end = r + l;
    while (r < end) {
      const char* esc =
          static_cast<const char*>(std::memchr(r, kEsc, static_cast<size_t>(end - r)));
      if (!esc) {
        luaL_addlstring(b, r, static_cast<size_t>(end - r));
        break;
      }
      luaL_addlstring(b, r, static_cast<size_t>(esc - r));
      r = esc + 1;
      if (r >= end) luaL_error(L, "invalid use of '%c' in replacement string", kEsc);
      m.step();
      if (*r == kEsc) {
        luaL_addchar(b, kEsc);
      } else if (*r == '0') {
        luaL_addlstring(b, s, static_cast<size_t>(e - s));
      } else if (std::isdigit(uc(*r))) {
        push_capture(m, *r - '1', s, e);
        luaL_tolstring(L, -1, nullptr);  // a position capture is a number
        lua_remove(L, -2);
        luaL_addvalue(b);
      } else {
        luaL_error(L, "invalid use of '%c' in replacement string", kEsc);
      }
      ++r;
    }
    return true;
  }
  if (repl_type == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    const int n = push_captures(m, s, e);
    lua_call(L, n, 1);
  } else {  // a table, indexed by the first capture
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
  luaL_addvalue(b);
  return true;
}

}  // namespace

int str_find(lua_State* L) { return find_aux(L, true); }
int str_match(lua_State* L) { return find_aux(L, false); }

int str_gmatch(lua_State* L) {
  size_t ls = 0;
  luaL_checklstring(L, 1, &ls);
  luaL_checkstring(L, 2);
  size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) init = ls + 1;  // past the end: nothing to iterate
  lua_settop(L, 2);
  lua_pushinteger(L, static_cast<lua_Integer>(init));
  lua_pushinteger(L, -1);
  lua_pushcclosure(L, gmatch_step, 4);
  return 1;
}

int str_gsub(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* src = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const int tr = lua_type(L, 3);
  const lua_Integer max_n = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
  luaL_argexpected(
      L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
      "string/function/table");
  const bool anchor = lp > 0 && *p == '^';
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Matcher m;
  setup(m, L, src, ls, p, lp);
  if (anchor) ++p;
  const char* last_match = nullptr;
  lua_Integer n = 0;
  bool changed = false;
  while (n < max_n) {
    m.reset();
    const char* e = match(m, src, p);
    if (e && e != last_match) {
      ++n;
      changed = add_replacement(m, &b, src, e, tr) || changed;
      src = last_match = e;
    } else if (src < m.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  m.flush();
  if (!changed) {
    lua_pushvalue(L, 1);  // the subject itself
  } else {
    luaL_addlstring(&b, src, static_cast<size_t>(m.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

// string.rep(s, n [, sep]). The stock version loops n times even when the result is empty
// (`string.rep("", math.maxinteger)` never returns); otherwise the result's size, which the
// memory cap bounds, bounds the loop.
int str_rep(lua_State* L) {
  size_t l = 0, lsep = 0;
  const char* s = luaL_checklstring(L, 1, &l);
  const lua_Integer n = luaL_checkinteger(L, 2);
  const char* sep = luaL_optlstring(L, 3, "", &lsep);
  if (n <= 0 || (l == 0 && (lsep == 0 || n == 1))) {
    lua_pushliteral(L, "");
    return 1;
  }
  constexpr size_t kMax = static_cast<size_t>(LUA_MAXINTEGER);
  if (l + lsep < l || l + lsep > kMax / static_cast<size_t>(n)) {
    return luaL_error(L, "resulting string too large");
  }
  const size_t total = static_cast<size_t>(n) * l + static_cast<size_t>(n - 1) * lsep;
  luaL_Buffer b;
  char* out = luaL_buffinitsize(L, &b, total);
  for (lua_Integer i = 0; i < n; ++i) {
    std::memcpy(out, s, l);
    out += l;
    if (i + 1 < n && lsep > 0) {
      std::memcpy(out, sep, lsep);
      out += lsep;
    }
  }
  luaL_pushresultsize(&b, total);
  return 1;
}

}  // namespace ks::hooks::detail
