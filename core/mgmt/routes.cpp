#include "core/engine_impl.h"

namespace ks {
namespace mgmt {
void register_tenant_routes(Routes& r);
void register_tenant_move_routes(Routes& r);
void register_tenant_export_routes(Routes& r);
void register_user_routes(Routes& r);
void register_client_routes(Routes& r);
void register_client_grant_routes(Routes& r);
void register_connection_routes(Routes& r);
void register_resource_server_routes(Routes& r);
void register_role_routes(Routes& r);
void register_organization_routes(Routes& r);
void register_log_routes(Routes& r);
void register_key_routes(Routes& r);
void register_branding_routes(Routes& r);
void register_email_routes(Routes& r);
void register_hook_routes(Routes& r);
}  // namespace mgmt

void register_mgmt_routes(Routes& r) {
  mgmt::register_tenant_routes(r);
  mgmt::register_tenant_move_routes(r);
  mgmt::register_tenant_export_routes(r);
  mgmt::register_user_routes(r);
  mgmt::register_client_routes(r);
  mgmt::register_client_grant_routes(r);
  mgmt::register_connection_routes(r);
  mgmt::register_resource_server_routes(r);
  mgmt::register_role_routes(r);
  mgmt::register_organization_routes(r);
  mgmt::register_log_routes(r);
  mgmt::register_key_routes(r);
  mgmt::register_branding_routes(r);
  mgmt::register_email_routes(r);
  mgmt::register_hook_routes(r);
}

}  // namespace ks
