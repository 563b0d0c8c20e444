--
-- viewuser: through a view, the API is called with the view owner's user
-- mapping, as postgres_fdw does, for SELECT, INSERT, direct DELETE and
-- DELETE ... RETURNING.  Which user that is comes from where PostgreSQL
-- keeps it, which moved in 16 (compat.h): this runs on every major.
--
\set VERBOSITY default
\! python3 test/opsmig_sim.py ctl reset --orgs 6
-- The view's owner (this superuser) has the right key; the reader a wrong one.
CREATE VIEW links_view AS SELECT org_id, status, link_token FROM org_migration_links;
CREATE ROLE opsmig_viewer;
GRANT USAGE ON FOREIGN SERVER om TO opsmig_viewer;
CREATE USER MAPPING FOR opsmig_viewer SERVER om
  OPTIONS (public_key 'opsmigtest', private_key 'not-the-key');
GRANT SELECT, INSERT, DELETE ON links_view, org_migration_links TO opsmig_viewer;
SET ROLE opsmig_viewer;
-- The table itself: the reader's own mapping, refused.
SELECT count(*) FROM org_migration_links;
\echo :LAST_ERROR_SQLSTATE
-- The view: its owner's mapping, for every statement.
SELECT org_id, status FROM links_view ORDER BY org_id;
INSERT INTO links_view (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok-3');
\echo :ROW_COUNT
EXPLAIN (COSTS OFF) DELETE FROM links_view WHERE org_id = '5e2211c17a3e5a48f5000003';
DELETE FROM links_view WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT
EXPLAIN (COSTS OFF) DELETE FROM links_view WHERE org_id = '5e2211c17a3e5a48f5000001' RETURNING org_id, status;
DELETE FROM links_view WHERE org_id = '5e2211c17a3e5a48f5000001' RETURNING org_id, status;
RESET ROLE;
\! python3 test/opsmig_sim.py ctl counts
DROP VIEW links_view;
DROP USER MAPPING FOR opsmig_viewer SERVER om;
REVOKE ALL ON org_migration_links FROM opsmig_viewer;
REVOKE USAGE ON FOREIGN SERVER om FROM opsmig_viewer;
DROP ROLE opsmig_viewer;
