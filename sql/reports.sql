--
-- reports: the README's ready-made reports, run as written (run-tests.sh
-- checks that every block the README marks as tested appears here verbatim).
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\! python3 test/opsmig_sim.py ctl reset --orgs 6
-- A schema of its own, so the names are the README's.
CREATE SCHEMA reports;
SET search_path = reports, public;
CREATE SERVER opsmanager FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER opsmanager
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
IMPORT FOREIGN SCHEMA opsmig FROM SERVER opsmanager INTO reports;
CREATE TABLE inventory (org_id text PRIMARY KEY, owner text);
INSERT INTO inventory VALUES
  ('5e2211c17a3e5a48f5000001', 'payments'), ('5e2211c17a3e5a48f5000003', 'search'),
  ('5e2211c17a3e5a48f5000004', 'identity'), ('5e2211c17a3e5a48f5000006', 'billing');
ANALYZE inventory;

-- Links by status
SELECT status, count(*) AS links
  FROM org_migration_links
 GROUP BY status
 ORDER BY status;

-- Organizations in your inventory that have no link yet
SELECT i.org_id, i.owner
  FROM inventory AS i
 WHERE NOT EXISTS (SELECT 1 FROM org_migration_links AS l WHERE l.org_id = i.org_id)
 ORDER BY i.org_id;

-- Your inventory, with each organization's link status (one API call per row)
SELECT i.org_id, i.owner, coalesce(l.status, 'NOT LINKED') AS status
  FROM inventory AS i
  LEFT JOIN org_migration_links AS l USING (org_id)
 ORDER BY i.org_id;

-- A snapshot for dashboards, refreshed on a schedule
CREATE MATERIALIZED VIEW migration_link_snapshot AS
  SELECT org_id, org_name, status, now() AS checked_at
    FROM org_migration_links;
REFRESH MATERIALIZED VIEW migration_link_snapshot;
SELECT org_id, status FROM migration_link_snapshot ORDER BY org_id;

-- The README adds \watch 5 after this query; the test runs it once.
-- Poll one link every 5 seconds (psql; Ctrl-C stops it)
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000004';
-- Listings: one per full scan (the status report and the snapshot's two);
-- the joins asked only for their inventory rows.
\! python3 test/opsmig_sim.py ctl counts | cut -d' ' -f1-2

DROP MATERIALIZED VIEW migration_link_snapshot;
DROP TABLE inventory;
DROP SERVER opsmanager CASCADE;
RESET search_path;
DROP SCHEMA reports;
