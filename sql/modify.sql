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
\echo :ROW_COUNT
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000003', E'a"b\\c\n{"x":1} \u00e9');
\echo :ROW_COUNT
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
\echo :LAST_ERROR_SQLSTATE
INSERT INTO org_migration_links (org_id, link_token) VALUES (NULL, 'tok');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO org_migration_links (org_id, link_token, status) VALUES ('5e2211c17a3e5a48f5000006', 'tok', 'SYNCED');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000006', 'tok') ON CONFLICT DO NOTHING;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts

-- UPDATE has no API.
UPDATE org_migration_links SET link_token = 'new' WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE

-- DELETE with org_id = const: one DELETE call, no scan first.
\! python3 test/opsmig_sim.py ctl reset-counters
EXPLAIN (COSTS OFF, VERBOSE) DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
-- No link: DELETE 0, not an error.
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :ROW_COUNT
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
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl links

-- Multi-row INSERT and INSERT ... SELECT: one POST per row.
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000001', 't1'), ('5e2211c17a3e5a48f5000002', 't2');
\echo :ROW_COUNT
CREATE TABLE to_link (org_id text, token text);
INSERT INTO to_link VALUES ('5e2211c17a3e5a48f5000004', 't4'), ('5e2211c17a3e5a48f5000006', 't6');
INSERT INTO org_migration_links (org_id, link_token) SELECT org_id, token FROM to_link RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl links

-- An unqualified DELETE removes every link the scan finds.
\! python3 test/opsmig_sim.py ctl reset-counters
EXPLAIN (COSTS OFF) DELETE FROM org_migration_links;
DELETE FROM org_migration_links;
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
SELECT count(*) FROM org_migration_links;

-- Remote changes cannot be rolled back: ROLLBACK says which were made.
BEGIN;
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 't1');
\echo :ROW_COUNT
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :ROW_COUNT
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000002', 't2');
\echo :ROW_COUNT
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
\echo :ROW_COUNT
ROLLBACK TO SAVEPOINT s1;
COMMIT;
-- Committed changes need no warning; PREPARE TRANSACTION is refused after one,
-- and the rollback that follows warns for the change.  The ERROR and the
-- WARNING reach psql together and it prints them in either order, so another
-- psql runs the transaction and its ERROR is shown first, then its WARNING.
SELECT current_database() AS regress_db \gset
\setenv REGRESS_DB :regress_db
\! out=$(psql -X -q -d "$REGRESS_DB" -c 'BEGIN' -c "INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 't3')" -c "PREPARE TRANSACTION 'opsmig'" -c '\echo sqlstate=:LAST_ERROR_SQLSTATE' 2>&1); { echo "$out" | grep -A1 '^ERROR'; echo "$out" | grep '^sqlstate'; echo "$out" | grep -A2 '^WARNING'; } | sed 's/^/  | /'
\! python3 test/opsmig_sim.py ctl links
