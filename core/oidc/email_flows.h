#pragma once
// Email flows: forgot-password (/u/reset-password), email verification, and the single-use
// tickets behind their links (also issued by /api/v2/tickets/*).
//
// Tickets are records of kind "ticket" keyed by token_id(token):
//   {type, user_id, email, expires_at, used, result_url, mark_email_as_verified,
//    include_email_in_redirect, csrf, client_id, created_at}
// The token itself appears only in the link; a ticket works once, until expires_at, and only
// while the user's email is still the one it was issued for.
//
// Tenant log events: fcpr (reset asked for an unknown or blocked account), scpr / svr (reset /
// verification email accepted by the provider, written by the delivery queue), fn (email not
// delivered), scp / fcp (password changed / change refused), sv / fv (email verified / link
// refused).
#include <cstdint>
#include <string>
#include <string_view>

#include "core/engine_impl.h"

namespace ks::oidc {

inline constexpr std::string_view kTicketKind = "ticket";
inline constexpr std::string_view kTicketPasswordChange = "password_change";
inline constexpr std::string_view kTicketEmailVerification = "email_verification";
inline constexpr int64_t kDefaultTicketTtl = 432000;      // 5 days, Auth0's default
inline constexpr int64_t kMaxTicketTtl = 30 * 86400;      // 30 days
inline constexpr int64_t kResetLinkLifetime = 24 * 3600;  // the hosted forgot-password link

struct TicketSpec {
  std::string type;  // kTicketPasswordChange | kTicketEmailVerification
  std::string user_id;
  int64_t ttl = kDefaultTicketTtl;
  std::string result_url;  // where the user goes after success; empty: a hosted page
  bool mark_email_as_verified = false;
  bool include_email_in_redirect = false;
  std::string client_id;
};

// Stores a ticket for an existing user and returns its link below ctx.issuer:
// {issuer}u/reset-password/confirm?ticket=… or {issuer}u/email-verification?ticket=….
// Throws HttpError 404 if the user does not exist.
std::string create_ticket(Ctx& ctx, const TicketSpec& spec);

// Queues "Verify your email" (with a fresh verification ticket) to the user, if it has an email.
void queue_verification_email(Ctx& ctx, std::string_view user_id, std::string_view client_id = {});

}  // namespace ks::oidc
