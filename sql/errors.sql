--
-- errors: each way the API (or the network) can fail becomes one clear
-- error, with the SQLSTATE a program can test, the API's own detail, and a
-- hint; never XX000, never the private key.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\getenv weak_key SIM_WEAK_PRIVATE_KEY
\getenv wrong_key SIM_WRONG_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\! python3 test/opsmig_sim.py ctl reset --orgs 5
\set org1 '5e2211c17a3e5a48f5000001'
\set org3 '5e2211c17a3e5a48f5000003'
-- Retries are tested in faults; here every failure is reported at once.
ALTER SERVER om OPTIONS (ADD max_retries '0');

-- 401: a wrong private key.
CREATE SERVER om_wrongkey FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_wrongkey
  OPTIONS (public_key 'opsmigtest', private_key :'wrong_key');
CREATE FOREIGN TABLE links_wrongkey (org_id text, status text) SERVER om_wrongkey;
SELECT * FROM links_wrongkey WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
-- 401 NOT_ORG_ADMIN: a key without the Organization Owner role.
CREATE SERVER om_weak FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_weak
  OPTIONS (public_key 'opsmigweak', private_key :'weak_key');
CREATE FOREIGN TABLE links_weak (org_id text, status text) SERVER om_weak;
SELECT * FROM links_weak WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
-- No user mapping at all.
CREATE SERVER om_nomap FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE FOREIGN TABLE links_nomap (org_id text, status text) SERVER om_nomap;
SELECT * FROM links_nomap;
\echo :LAST_ERROR_SQLSTATE

-- 403: an IP access list.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 403
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
-- 404 on POST: an organization the key cannot see.
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5ffffff', 'tok');
\echo :LAST_ERROR_SQLSTATE
-- 409 on DELETE: a live migration is running.
\! python3 test/opsmig_sim.py ctl running 5e2211c17a3e5a48f5000001
DELETE FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl running 5e2211c17a3e5a48f5000001 --off
-- 429 with no retries left: sent again when the API allows, unless that
-- cannot be within statement_timeout.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --retry-after 5
SET statement_timeout = '2s';
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
-- 500 with the API's JSON error; 502 HTML from a proxy; 503 with no body.
\! python3 test/opsmig_sim.py ctl fault http --on list --code 500
SELECT count(*) FROM org_migration_links;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault http --on status --code 502 --body html
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault http --on delete --code 503 --body empty
DELETE FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE

-- Replies that are not what the API documents: HV00M with an excerpt.
\! python3 test/opsmig_sim.py ctl fault garbage --on status
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault wrong_shape --on status
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault wrong_shape --on list
SELECT count(*) FROM org_migration_links;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault wrong_content_type --on status
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault long_status --on status
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault control_status --on status
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault empty_ok --on status
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault oversized --on status --bytes 2000000
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
-- A create answered 200 with garbage: an error, and since the API said yes,
-- the rollback warning lists the link as created.
\! python3 test/opsmig_sim.py ctl fault garbage --on create
DO $$
BEGIN
  INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;

-- Transport failures: nothing listening (08001), a connection reset (08006).
CREATE SERVER om_down FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'http://127.0.0.1:9/api/public/v1.0', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_down
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_down (org_id text, status text) SERVER om_down;
-- libcurl's detail says how many ms the attempt took: opsmig_try shows the
-- error's SQLSTATE, message, detail (times and ports masked) and hint.
CREATE FUNCTION opsmig_try(q text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; det text; hnt text;
BEGIN
  EXECUTE q;
  RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
    det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
  det := regexp_replace(det, 'after [0-9]+ ms', 'after N ms', 'g');
  det := regexp_replace(det, '127\.0\.0\.1( port |:)[0-9]+', '127.0.0.1\1PORT', 'g');
  -- libcurl's words differ between versions (the 8.x of the other majors' roots)
  det := regexp_replace(det, 'to 127\.0\.0\.1:PORT after', 'to 127.0.0.1 port PORT after');
  det := replace(det, 'Could not connect to server', 'Couldn''t connect to server');
  RAISE NOTICE E'SQLSTATE %: %\nDETAIL: %\nHINT: %', st, msg, det, hnt;
END $$;
SELECT opsmig_try('SELECT * FROM links_down');
-- (libcurl resends a GET by itself when a reused connection is reset: the
-- fault must outlast every pooled connection)
\! python3 test/opsmig_sim.py ctl fault reset --on status --times 8
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
-- After all that, the same session still works.
\! python3 test/opsmig_sim.py ctl clear-faults
SELECT org_id, status FROM org_migration_links WHERE org_id = :'org1';
-- Not one malformed id was sent in all this.
\! python3 test/opsmig_sim.py ctl counts | grep -o 'malformed=[0-9]*'
ALTER SERVER om OPTIONS (DROP max_retries);
DROP SERVER om_wrongkey, om_weak, om_nomap, om_down CASCADE;
