// /api/v2/logs: the tenant's auth and audit events, newest first.
#include <charconv>

#include "core/mgmt/common.h"

namespace ks::mgmt {
namespace {

http::Response list_logs(Ctx& ctx) {
  authorize(ctx, "read:logs");
  Page p = page_params(ctx, "date");
  store::ListQuery q;
  q.newest_first = p.descending.value_or(true);
  if (p.checkpoint) {
    // from: the log_id to continue after (Auth0 semantics); newest first.
    q.limit = p.take + 1;
    if (auto from = ctx.query.get("from"); from && !from->empty()) {
      bool found = false;
      ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
        store::ListQuery f;
        f.field = "log_id";
        f.value = *from;
        f.limit = 1;
        auto r = tx.list("log", f);
        if (!r.empty()) {
          q.before_seq = r[0].seq;
          found = true;
        }
      });
      if (!found)
        throw http::HttpError{400, "Query validation error: unknown 'from' log id",
                              "invalid_query_string"};
    }
  } else {
    q.offset = p.page * p.per_page;
    q.limit = p.per_page;
  }
  if (auto search = search_clause(ctx, {"type", "user_id", "client_id", "log_id"})) {
    q.field = search->first;
    q.value = search->second;
  } else if (auto type = ctx.query.get("type")) {
    q.field = "type";
    q.value = *type;
  } else if (auto user = ctx.query.get("user_id")) {
    q.field = "user_id";
    q.value = *user;
  }
  Json items = Json::array();
  size_t total = 0;
  bool more = false;
  std::string last_id;  // of the last item, which `fields` may leave out
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto recs = tx.list("log", q);
    if (p.checkpoint && recs.size() > p.take) {
      more = true;
      recs.pop_back();
    }
    for (auto& r : recs) {
      last_id = r.data.value("log_id", "");
      items.push_back(project_fields(ctx, std::move(r.data)));
    }
    if (p.include_totals && !p.checkpoint) {
      store::ListQuery c;
      c.field = q.field;
      c.value = q.value;
      total = tx.count("log", c);
    }
  });
  if (p.checkpoint) {
    Json body = {{"logs", items}};
    if (more) body["next"] = last_id;
    return http::Response::json(200, body);
  }
  return list_response(p, "logs", std::move(items), total, 0, false);
}

http::Response get_log(Ctx& ctx) {
  authorize(ctx, "read:logs");
  Json out;
  ctx.e.store().read(ctx.tenant, [&](store::Tx& tx) {
    auto r = tx.get("log", ctx.param("id"));
    if (!r) throw http::HttpError{404, "Log event not found", "inexistent_log"};
    out = std::move(r->data);
  });
  return http::Response::json(200, out);
}

}  // namespace

void register_log_routes(Routes& r) {
  r.add("GET", "/api/v2/logs", list_logs);
  r.add("GET", "/api/v2/logs/:id", get_log);
}

}  // namespace ks::mgmt
