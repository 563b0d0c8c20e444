--
-- modify: INSERT creates links, DELETE removes them, UPDATE is refused; bad
-- rows are refused before any request; remote changes survive ROLLBACK.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 6
-- Org 3 and org 6 have no link.
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000003', 'tok-3') RETURNING org_id, status, link_token;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl token 5e2211c17a3e5a48f5000003
-- Any token text reaches the API exactly (JSON-escaped by json-c).
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000003', E'a"b\\c\n{"x":1} \u00e9');
\! python3 test/opsmig_sim.py ctl token 5e2211c17a3e5a48f5000003

-- Already linked: 23505, and nothing else happens.
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 'tok');
\echo :LAST_ERROR_SQLSTATE
-- An invalid token: the API's own detail.
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000006', 'invalid-token');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts

-- Refused before any request: malformed id, NULL or empty token, NULL id, status given.
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5E2211C17A3E5A48F5000006', 'tok');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000006', NULL);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000006', '');
INSERT INTO org_migration_links (org_id, link_token) VALUES (NULL, 'tok');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO org_migration_links (org_id, link_token, status) VALUES ('5e2211c17a3e5a48f5000006', 'tok', 'SYNCED');
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000006', 'tok') ON CONFLICT DO NOTHING;
\! python3 test/opsmig_sim.py ctl counts

-- UPDATE has no API.
UPDATE org_migration_links SET link_token = 'new' WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE

-- DELETE with org_id = const: one DELETE call, no scan first.
\! python3 test/opsmig_sim.py ctl reset-counters
EXPLAIN (COSTS OFF, VERBOSE) DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\! python3 test/opsmig_sim.py ctl counts
-- No link: DELETE 0, not an error.
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\! python3 test/opsmig_sim.py ctl counts
-- A malformed id names no organization: DELETE 0, nothing sent.
DELETE FROM org_migration_links WHERE org_id = 'nope';
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
-- With RETURNING or another condition: scan, then delete row by row.
\! python3 test/opsmig_sim.py ctl reset-counters
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000002' RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl counts
DELETE FROM org_migration_links WHERE status = 'NOT_SYNCED';
\! python3 test/opsmig_sim.py ctl links

-- Multi-row INSERT and INSERT ... SELECT: one POST per row.
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000001', 't1'), ('5e2211c17a3e5a48f5000002', 't2');
CREATE TABLE to_link (org_id text, token text);
INSERT INTO to_link VALUES ('5e2211c17a3e5a48f5000004', 't4'), ('5e2211c17a3e5a48f5000006', 't6');
INSERT INTO org_migration_links (org_id, link_token) SELECT org_id, token FROM to_link RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl links

-- An unqualified DELETE removes every link the scan finds.
\! python3 test/opsmig_sim.py ctl reset-counters
EXPLAIN (COSTS OFF) DELETE FROM org_migration_links;
DELETE FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
SELECT count(*) FROM org_migration_links;

-- Remote changes cannot be rolled back: ROLLBACK says which were made.
BEGIN;
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 't1');
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000002', 't2');
ROLLBACK;
\! python3 test/opsmig_sim.py ctl links
-- A failing multi-row INSERT reports the rows it had already linked.  (The
-- DO block catches the error so that the warning and the error come out in
-- one order; at the psql prompt the warning simply follows the ERROR.)
DO $$
BEGIN
  INSERT INTO org_migration_links (org_id, link_token)
    VALUES ('5e2211c17a3e5a48f5000003', 't3'), ('5e2211c17a3e5a48f5000002', 'again');
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;
-- A subtransaction rolled back warns for its own changes only.
BEGIN;
SAVEPOINT s1;
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
ROLLBACK TO SAVEPOINT s1;
COMMIT;
-- Committed changes need no warning; PREPARE TRANSACTION is refused after one
-- (its rollback warning, tested above, is hidden here: it races the error).
SET client_min_messages = error;
BEGIN;
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 't3');
PREPARE TRANSACTION 'opsmig';
\echo :LAST_ERROR_SQLSTATE
RESET client_min_messages;
\! python3 test/opsmig_sim.py ctl links
