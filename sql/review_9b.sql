--
-- review_9b: what a review of the issue 9 fixes found.
-- With cache_ttl, no scan of a DELETE reads the cache (also the side that
-- picks the rows); EXPLAIN ANALYZE shows a row-by-row DELETE's requests on
-- the Delete node; a change made through one user mapping is forgotten by
-- every cache of the backend; an organization name the database encoding
-- cannot hold fails only the queries that show it.
--
\getenv private_key SIM_PRIVATE_KEY
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (ADD cache_ttl '60');

-- Cached: org 2 NOT_SYNCED.  Then it becomes SYNCED outside PostgreSQL.
SELECT org_id, status FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000002 --status SYNCED
-- The rows are picked by a subquery on the same table: it asks the API
-- too, so org 2 (live SYNCED) stays and only org 4 goes.
DELETE FROM org_migration_links
 WHERE org_id IN (SELECT org_id FROM org_migration_links WHERE status = 'NOT_SYNCED')
 RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl links
-- The same through USING, with the condition on the other side: cached,
-- orgs 1 and 5 are SYNCED; live, only org 1 (ALTER SERVER empties the cache).
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (SET cache_ttl '60');
SELECT org_id, status FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000005 --status NOT_SYNCED
DELETE FROM org_migration_links d USING org_migration_links s
 WHERE d.org_id = s.org_id AND s.status = 'SYNCED'
 RETURNING d.org_id;
\! python3 test/opsmig_sim.py ctl links
-- And in a WITH under a SELECT: cached, orgs 2 and 4 are NOT_SYNCED;
-- live, only org 2.
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (SET cache_ttl '60');
SELECT org_id, status FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000004 --status SYNCED
WITH d AS (DELETE FROM org_migration_links
            WHERE org_id IN (SELECT org_id FROM org_migration_links WHERE status = 'NOT_SYNCED')
            RETURNING org_id)
SELECT org_id FROM d ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl links
-- A SELECT still reads the cache: the second one asks nothing.
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts

-- EXPLAIN ANALYZE of a row-by-row DELETE and of an INSERT: the DELETE and
-- POST requests show on the Delete / Insert node, the scan's on the scan.
ALTER SERVER om OPTIONS (DROP cache_ttl);
\! python3 test/opsmig_sim.py ctl reset --orgs 5
CREATE FUNCTION review_9b_requests(q text) RETURNS TABLE (node text, list bigint, status bigint, created bigint, deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
  j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
  RETURN QUERY
  SELECT p->>'Node Type', (p->>'API List Requests')::bigint, (p->>'API Status Requests')::bigint,
         (p->>'API Create Requests')::bigint, (p->>'API Delete Requests')::bigint
    FROM (SELECT j->0->'Plan' AS p
          UNION ALL SELECT json_array_elements(j->0->'Plan'->'Plans')) AS n;
END $$;
SELECT * FROM review_9b_requests(
  'DELETE FROM org_migration_links WHERE status = ''NOT_SYNCED'' RETURNING org_id');
SELECT * FROM review_9b_requests(
  'INSERT INTO org_migration_links (org_id, link_token) VALUES (''5e2211c17a3e5a48f5000002'', ''t2''), (''5e2211c17a3e5a48f5000004'', ''t4'')');
DROP FUNCTION review_9b_requests(text);

-- A DELETE through another role's user mapping, in the same backend: the
-- first role's cache forgets the organization as well.
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (ADD cache_ttl '60');
CREATE ROLE opsmig_review_9b;
GRANT USAGE ON FOREIGN SERVER om TO opsmig_review_9b;
GRANT SELECT, DELETE ON org_migration_links TO opsmig_review_9b;
CREATE USER MAPPING FOR opsmig_review_9b SERVER om
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
SELECT org_id, status FROM org_migration_links ORDER BY org_id;
SET ROLE opsmig_review_9b;
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :ROW_COUNT
RESET ROLE;
SELECT org_id, status FROM org_migration_links ORDER BY org_id;

DROP USER MAPPING FOR opsmig_review_9b SERVER om;
REVOKE ALL ON org_migration_links FROM opsmig_review_9b;
REVOKE USAGE ON FOREIGN SERVER om FROM opsmig_review_9b;
DROP ROLE opsmig_review_9b;
ALTER SERVER om OPTIONS (DROP cache_ttl);
\! python3 test/opsmig_sim.py ctl reset --orgs 5

-- In a LATIN1 database, an organization whose name LATIN1 cannot hold
-- fails only the queries that show that name; the others, DELETE included,
-- work, from the API and from the cache alike.
\! python3 test/opsmig_sim.py ctl reset --orgs 3
\! python3 test/opsmig_sim.py ctl rename 5e2211c17a3e5a48f5000001 東京
\! python3 test/opsmig_sim.py ctl rename 5e2211c17a3e5a48f5000002 Société
\getenv sim_url SIM_URL
\set base_url :sim_url/api/public/v1.0
SELECT current_database() AS regress_db \gset
CREATE DATABASE opsmig_review_9b_latin1 ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c opsmig_review_9b_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION opsmig_fdw;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', cache_ttl '60');
CREATE USER MAPPING FOR CURRENT_USER SERVER om
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links (org_id text, org_name text, status text) SERVER om;
CREATE FOREIGN TABLE links_ids (org_id text, status text) SERVER om;
SELECT org_id, status FROM links ORDER BY org_id;
SELECT org_id, status FROM links_ids ORDER BY org_id;
SELECT org_id, org_name FROM links WHERE org_id = '5e2211c17a3e5a48f5000002';
-- Again, from the cached listing.
SELECT org_id, org_name FROM links WHERE org_id = '5e2211c17a3e5a48f5000002';
SELECT org_id, org_name FROM links ORDER BY org_id;
\echo :LAST_ERROR_SQLSTATE
DELETE FROM links_ids WHERE status = 'NOT_SYNCED' RETURNING org_id;
\c :regress_db
DROP DATABASE opsmig_review_9b_latin1;
\! python3 test/opsmig_sim.py ctl reset --orgs 5
