#!/usr/bin/env bash
# Shows the main job of opsmig_fdw on the bundled API simulator: installs
# what is missing (apt), builds and installs the extension, starts a
# throwaway cluster and the simulator, then runs the README's tutorial in
# psql -- SELECT, INSERT ... RETURNING, DELETE -- and cleans up.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

build_and_install
start_services --orgs 5

log "psql session (the simulator has 5 organizations; 4 of them are linked)"
psql -X -v ON_ERROR_STOP=1 -v base_url="$SIM_URL/api/public/v1.0" \
	-v private_key="$SIM_PRIVATE_KEY" --echo-all <<'SQL'
CREATE EXTENSION opsmig_fdw;
CREATE SERVER opsmanager FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER opsmanager
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
IMPORT FOREIGN SCHEMA opsmig FROM SERVER opsmanager INTO public;
SELECT * FROM org_migration_links ORDER BY org_id;
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000003', 'token-from-atlas') RETURNING org_id, status;
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
SELECT org_id, status FROM org_migration_links ORDER BY org_id;
SQL
log "done; the cluster and the simulator are stopped and removed"
