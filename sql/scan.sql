--
-- scan: what is asked of the API for each kind of query, checked with the
-- simulator's request counters (list = GET /orgs pages, status = status calls).
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
-- A full scan: one listing page, then one status call per organization.
-- Org 3 has no link (404): no row for it.
SELECT org_id, org_name, status FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
-- link_token is write-only.
SELECT count(*) AS rows, count(link_token) AS tokens FROM org_migration_links;

-- org_id = const: one status call, no listing.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000002';
\! python3 test/opsmig_sim.py ctl counts
-- An organization without a link: no row, one call.
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\! python3 test/opsmig_sim.py ctl counts

-- IN and = ANY: one call per distinct id, duplicates and NULLs asked nothing.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links
 WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000004', '5e2211c17a3e5a48f5000001', NULL)
 ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links
 WHERE org_id = ANY (ARRAY['5e2211c17a3e5a48f5000005', '5e2211c17a3e5a48f5000003'])
 ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts

-- Prepared statements: the parameter is sent, not a listing.
PREPARE one(text) AS SELECT org_id, status FROM org_migration_links WHERE org_id = $1;
PREPARE many(text[]) AS SELECT org_id, status FROM org_migration_links WHERE org_id = ANY ($1) ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl reset-counters
EXECUTE one('5e2211c17a3e5a48f5000004');
EXECUTE many('{5e2211c17a3e5a48f5000001,5e2211c17a3e5a48f5000002}');
\! python3 test/opsmig_sim.py ctl counts

-- Other conditions are applied locally, after the calls.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links WHERE status = 'SYNCED' ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
SELECT org_id FROM org_migration_links
 WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002') AND status <> 'SYNCED';

-- org_name with an org_id condition: the listing is read for the name.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, org_name, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000005';
\! python3 test/opsmig_sim.py ctl counts

-- A malformed id names no organization: no row, and no request.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT * FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f500000Z';
SELECT * FROM org_migration_links WHERE org_id = '../../orgs';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts

-- A table by hand, with a subset of the columns in another order and names.
CREATE FOREIGN TABLE links_by_hand (state text OPTIONS (column_name 'status'), id varchar OPTIONS (column_name 'org_id'))
  SERVER om;
SELECT state, id FROM links_by_hand ORDER BY id;

-- Joins: a small local teams drives one status call per row, no listing.
CREATE TABLE teams (org_id text PRIMARY KEY, team text);
INSERT INTO teams VALUES ('5e2211c17a3e5a48f5000001', 'red'), ('5e2211c17a3e5a48f5000003', 'blue'),
  ('5e2211c17a3e5a48f5000004', 'green');
ANALYZE teams;
EXPLAIN (COSTS OFF, VERBOSE)
SELECT i.team, l.status FROM teams i JOIN org_migration_links l USING (org_id);
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT i.org_id, i.team, l.status FROM teams i JOIN org_migration_links l USING (org_id) ORDER BY i.org_id;
\! python3 test/opsmig_sim.py ctl counts
-- For a large list, an array of ids is asked concurrently in one scan.
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links
 WHERE org_id = ANY (ARRAY(SELECT org_id FROM teams)) ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
-- A LEFT JOIN keeps the organizations without a link.
SELECT i.org_id, i.team, coalesce(l.status, '(no link)') AS status
  FROM teams i LEFT JOIN org_migration_links l USING (org_id) ORDER BY i.org_id;

-- EXPLAIN VERBOSE says what will be asked; EXPLAIN ANALYZE what was.
EXPLAIN (COSTS OFF, VERBOSE) SELECT * FROM org_migration_links;
EXPLAIN (COSTS OFF, VERBOSE) SELECT status FROM org_migration_links WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT status FROM org_migration_links WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) SELECT * FROM org_migration_links;
