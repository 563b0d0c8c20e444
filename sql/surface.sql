--
-- surface: every statement PostgreSQL can send to the foreign table either
-- works (rows and request counts checked) or is refused before any request
-- with a SQLSTATE of its own.  README "What each statement does" is this.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 6
-- Orgs 1, 2, 4 and 5 are linked; 3 and 6 are not.
CREATE TABLE inventory (org_id text, owner text);
INSERT INTO inventory VALUES
  ('5e2211c17a3e5a48f5000001', 'ana'), ('5e2211c17a3e5a48f5000003', 'bo'),
  ('5e2211c17a3e5a48f5000006', 'cy'), ('NOT-AN-ORG', 'dee');
ANALYZE inventory;

-- SELECT with LIMIT: rows come as status calls complete; the scan stops.
SELECT count(*) FROM (SELECT org_id FROM org_migration_links LIMIT 2) AS s;
-- LATERAL: one status call per outer row, none for the malformed id.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT i.owner, l.status
  FROM inventory AS i
  CROSS JOIN LATERAL (SELECT status FROM org_migration_links AS m WHERE m.org_id = i.org_id) AS l
 ORDER BY i.owner;
\! python3 test/opsmig_sim.py ctl counts

-- A malformed id matches no row, whatever the plan: the README's report
-- gives the same rows under a nested loop (the inner scan asks for each
-- outer id) and a merge join (one full scan), and the id is never sent
-- (malformed=0).
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF)
SELECT i.org_id, i.owner
  FROM inventory AS i
 WHERE NOT EXISTS (SELECT 1 FROM org_migration_links AS l WHERE l.org_id = i.org_id)
 ORDER BY i.org_id;
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT i.org_id, i.owner
  FROM inventory AS i
 WHERE NOT EXISTS (SELECT 1 FROM org_migration_links AS l WHERE l.org_id = i.org_id)
 ORDER BY i.org_id;
\! python3 test/opsmig_sim.py ctl counts
RESET enable_hashjoin;
RESET enable_mergejoin;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF)
SELECT i.org_id, i.owner
  FROM inventory AS i
 WHERE NOT EXISTS (SELECT 1 FROM org_migration_links AS l WHERE l.org_id = i.org_id)
 ORDER BY i.org_id;
SELECT i.org_id, i.owner
  FROM inventory AS i
 WHERE NOT EXISTS (SELECT 1 FROM org_migration_links AS l WHERE l.org_id = i.org_id)
 ORDER BY i.org_id;
RESET enable_nestloop;

-- Prepared statements with generic plans: the id is a parameter.
SET plan_cache_mode = force_generic_plan;
PREPARE one_link(text) AS SELECT org_id, status FROM org_migration_links WHERE org_id = $1;
\! python3 test/opsmig_sim.py ctl reset-counters
EXECUTE one_link('5e2211c17a3e5a48f5000002');
EXECUTE one_link('5e2211c17a3e5a48f5000003');
EXECUTE one_link('not-an-org');
EXECUTE one_link(NULL);
\! python3 test/opsmig_sim.py ctl counts
-- A constant is treated the same way.
SELECT org_id, status FROM org_migration_links WHERE org_id = 'not-an-org';
SELECT org_id FROM org_migration_links WHERE org_id IN ('5E2211C17A3E5A48F5000001', '5e2211c17a3e5a48f5000001');
\! python3 test/opsmig_sim.py ctl counts
PREPARE drop_link(text) AS DELETE FROM org_migration_links WHERE org_id = $1;
EXECUTE drop_link('not-an-org');
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
DEALLOCATE one_link;
DEALLOCATE drop_link;
RESET plan_cache_mode;

-- Parallel query: the foreign scan is not parallel safe, so it runs in
-- the leader, once, above the Gather; the answer is the same.
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF)
SELECT i.owner, l.status
  FROM inventory AS i JOIN org_migration_links AS l USING (org_id)
 ORDER BY i.owner;
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT i.owner, l.status
  FROM inventory AS i JOIN org_migration_links AS l USING (org_id)
 ORDER BY i.owner;
\! python3 test/opsmig_sim.py ctl counts
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- Cursors: NO SCROLL refuses to go back (55000); SCROLL works (a Material
-- node keeps the rows, the scan runs once); WITH HOLD outlives COMMIT.
\! python3 test/opsmig_sim.py ctl reset-counters
BEGIN;
DECLARE fwd NO SCROLL CURSOR FOR SELECT org_id FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
FETCH 1 FROM fwd;
FETCH PRIOR FROM fwd;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
DECLARE back SCROLL CURSOR FOR SELECT org_id, status FROM org_migration_links ORDER BY org_id;
FETCH 2 FROM back;
FETCH PRIOR FROM back;
FETCH LAST FROM back;
FETCH ABSOLUTE 1 FROM back;
COMMIT;
\! python3 test/opsmig_sim.py ctl counts
DECLARE held CURSOR WITH HOLD FOR SELECT org_id, status FROM org_migration_links ORDER BY org_id;
FETCH 1 FROM held;
FETCH ALL FROM held;
CLOSE held;
-- Savepoints with a cursor open on the table: ROLLBACK TO leaves a cursor
-- declared before the savepoint working; one declared after it is gone.
\! python3 test/opsmig_sim.py ctl reset-counters
BEGIN;
DECLARE outer_c CURSOR FOR SELECT org_id, status FROM org_migration_links ORDER BY org_id;
FETCH 1 FROM outer_c;
SAVEPOINT s1;
FETCH 1 FROM outer_c;
DECLARE inner_c CURSOR FOR SELECT org_id FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000002';
FETCH 1 FROM inner_c;
ROLLBACK TO SAVEPOINT s1;
FETCH 1 FROM outer_c;
FETCH 1 FROM inner_c;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\! python3 test/opsmig_sim.py ctl counts

-- INSERT: VALUES, SELECT and RETURNING work; ON CONFLICT is refused (0A000).
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'a')
  RETURNING org_id, org_name, status, link_token;
INSERT INTO org_migration_links (org_id, link_token)
  SELECT org_id, 'tok-' || owner FROM inventory WHERE owner = 'cy';
\echo :ROW_COUNT
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 'a')
  ON CONFLICT DO NOTHING;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts

-- UPDATE, TRUNCATE and MERGE are refused before any request.
\! python3 test/opsmig_sim.py ctl reset-counters
UPDATE org_migration_links SET link_token = 'x' WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
TRUNCATE org_migration_links;
\echo :LAST_ERROR_SQLSTATE
MERGE INTO org_migration_links AS l USING inventory AS i ON l.org_id = i.org_id
  WHEN NOT MATCHED THEN INSERT (org_id, link_token) VALUES (i.org_id, 'tok');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts

-- DELETE: direct (no status call), row by row, RETURNING (what the scan
-- saw, org_name included) and USING a local table.
\! python3 test/opsmig_sim.py ctl reset-counters
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000006' AND status = 'SYNCED';
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000002'
  RETURNING org_id, org_name, status, link_token;
\! python3 test/opsmig_sim.py ctl counts
DELETE FROM org_migration_links AS l USING inventory AS i
 WHERE l.org_id = i.org_id AND i.owner = 'ana'
 RETURNING i.owner, l.org_id, l.status;
\! python3 test/opsmig_sim.py ctl links

-- Data-modifying CTEs.
\! python3 test/opsmig_sim.py ctl reset --orgs 6
WITH gone AS (DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000004' RETURNING org_id, status)
SELECT * FROM gone;
WITH made AS (INSERT INTO org_migration_links (org_id, link_token)
              VALUES ('5e2211c17a3e5a48f5000004', 'again') RETURNING org_id, status)
SELECT * FROM made;
\! python3 test/opsmig_sim.py ctl counts

-- Row triggers on the foreign table, for INSERT and DELETE: each row is
-- created or deleted when its BEFORE trigger has run, before its AFTER one.
CREATE TABLE trigger_log (op text, org_id text, linked bigint);
CREATE FUNCTION note_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  INSERT INTO trigger_log
    SELECT TG_WHEN || ' ' || TG_OP, r.org_id,
           (SELECT count(*) FROM org_migration_links AS l WHERE l.org_id = r.org_id);
  RETURN r;
END $$;
CREATE TRIGGER note_before BEFORE INSERT OR DELETE ON org_migration_links
  FOR EACH ROW EXECUTE FUNCTION note_link();
CREATE TRIGGER note_after AFTER INSERT OR DELETE ON org_migration_links
  FOR EACH ROW EXECUTE FUNCTION note_link();
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000003', 'a'), ('5e2211c17a3e5a48f5000006', 'b');
\echo :ROW_COUNT
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT
SELECT op, org_id, linked FROM trigger_log ORDER BY org_id, op DESC;
DROP TRIGGER note_before ON org_migration_links;
DROP TRIGGER note_after ON org_migration_links;
DROP TABLE trigger_log;
DROP FUNCTION note_link();

-- Tables declared with varchar and varchar(n): DELETE row by row and
-- RETURNING work; a value longer than varchar(n) allows is an error
-- (22001), never a longer value.
\! python3 test/opsmig_sim.py ctl reset --orgs 6
CREATE FOREIGN TABLE links_varchar (org_id varchar NOT NULL, org_name varchar(20),
                                    status varchar(10), link_token varchar) SERVER om;
SELECT org_id, org_name, status FROM links_varchar ORDER BY org_id;
DELETE FROM links_varchar WHERE org_id = '5e2211c17a3e5a48f5000001' AND status = 'SYNCED';
\echo :ROW_COUNT
DELETE FROM links_varchar WHERE org_id = '5e2211c17a3e5a48f5000002' RETURNING org_id, org_name, status;
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000004 --status WAITING_FOR_TARGET
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM links_varchar ORDER BY org_id;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
SELECT org_id, status::text FROM links_varchar WHERE org_id = '5e2211c17a3e5a48f5000005';
DROP FOREIGN TABLE links_varchar;

-- IMPORT FOREIGN SCHEMA takes no options: one would be silently ignored.
CREATE SCHEMA import_opts;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om INTO import_opts OPTIONS (cache_ttl '60');
\echo :LAST_ERROR_SQLSTATE
DROP SCHEMA import_opts;
DROP TABLE inventory;

-- A LATIN1 database: names are converted from UTF-8, a link token to
-- UTF-8; a name with no LATIN1 form is an error of its own (22P05).
\! python3 test/opsmig_sim.py ctl reset --orgs 3
\! python3 test/opsmig_sim.py ctl rename 5e2211c17a3e5a48f5000001 Société
\set regress_db :DBNAME
CREATE DATABASE opsmig_surface_latin1 ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c opsmig_surface_latin1
\encoding UTF8
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
CREATE EXTENSION opsmig_fdw;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om INTO public;
SELECT org_id, org_name, length(org_name), status FROM org_migration_links ORDER BY org_id;
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'jeton-é')
  RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl token 5e2211c17a3e5a48f5000003
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001' RETURNING org_name;
\! python3 test/opsmig_sim.py ctl rename 5e2211c17a3e5a48f5000002 東京
SELECT org_id, org_name FROM org_migration_links ORDER BY org_id;
\echo :LAST_ERROR_SQLSTATE
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\c :regress_db
DROP DATABASE opsmig_surface_latin1;
\! python3 test/opsmig_sim.py ctl reset --orgs 5
