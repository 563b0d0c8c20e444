--
-- claims: README promises that no other test proves (docs/TESTING.md maps
-- every promise to its test).  Uses opsmig_try() from errors.sql to show an
-- error whose detail holds a port or a time.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\getenv weak_key SIM_WEAK_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\set org1 '5e2211c17a3e5a48f5000001'
\set org3 '5e2211c17a3e5a48f5000003'
\! python3 test/opsmig_sim.py ctl reset --orgs 5
SELECT current_database() AS regress_db \gset
\setenv REGRESS_DB :regress_db

-- ca_file, proxy and ssl_verify: only a superuser may set them, on ALTER too.
CREATE ROLE opsmig_srv_owner;
GRANT USAGE ON FOREIGN DATA WRAPPER opsmig_fdw TO opsmig_srv_owner;
SET ROLE opsmig_srv_owner;
CREATE SERVER owned FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0');
ALTER SERVER owned OPTIONS (ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (ADD proxy 'http://127.0.0.1:3128');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (ADD ssl_verify 'false');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (ADD request_cost '5');
RESET ROLE;
DROP SERVER owned;
REVOKE USAGE ON FOREIGN DATA WRAPPER opsmig_fdw FROM opsmig_srv_owner;
DROP ROLE opsmig_srv_owner;

-- No proxy from the environment: test/lib.sh starts the postmaster with
-- http_proxy, https_proxy and ALL_PROXY at a port that refuses connections
-- (so every test that reaches the API proves it); this backend has them.
CREATE TEMP TABLE backend_env (line text);
COPY backend_env FROM PROGRAM 'env | grep -i -e "^http_proxy=" -e "^https_proxy=" -e "^all_proxy=" | sort';
SELECT line FROM backend_env ORDER BY line;
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\! python3 test/opsmig_sim.py ctl counts

-- connect_timeout: a loopback port whose accept queue is full never accepts;
-- 08001 with a hint naming the option.
\set blackhole `python3 test/opsmig_sim.py ctl blackhole`
\set blackhole_url 'http://127.0.0.1:' :blackhole '/api/public/v1.0'
CREATE SERVER om_slowconnect FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'blackhole_url', connect_timeout '0.3', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_slowconnect
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_slowconnect (org_id text, status text) SERVER om_slowconnect;
SELECT opsmig_try($$SELECT * FROM links_slowconnect WHERE org_id = '5e2211c17a3e5a48f5000001'$$);
DROP SERVER om_slowconnect CASCADE;

-- request_cost is the planner's price of one API request.
EXPLAIN SELECT status FROM org_migration_links WHERE org_id = :'org1';
ALTER SERVER om OPTIONS (ADD request_cost '1000');
EXPLAIN SELECT status FROM org_migration_links WHERE org_id = :'org1';
ALTER SERVER om OPTIONS (DROP request_cost);

-- Redirects are not followed: the 302 is an error, and nothing arrived where
-- it pointed (the credentials were not sent elsewhere).
ALTER SERVER om OPTIONS (ADD max_retries '0');
\! python3 test/opsmig_sim.py ctl fault redirect --on status --code 302
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl stats | grep -o '"redirected": [0-9]*'

-- POST and DELETE are not retried after a connection reset (the API may
-- have acted), even with retries allowed: not by us, and not by libcurl,
-- which would resend them on a new connection when the first change of a
-- session (here: after ALTER SERVER) answered the digest challenge on the
-- connection that then died.  Each reaches the API once and fails with
-- 08006, and the rollback warning says it may have acted.  (In a DO block,
-- so the warning comes in a fixed place: before the error is caught.)
ALTER SERVER om OPTIONS (SET max_retries '3');
\! python3 test/opsmig_sim.py ctl reset-counters
\! python3 test/opsmig_sim.py ctl fault reset --on create
DO $$
DECLARE
  detail text;
BEGIN
  INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM USING DETAIL = detail;
END $$;
\! python3 test/opsmig_sim.py ctl counts
ALTER SERVER om OPTIONS (SET max_retries '3');
\! python3 test/opsmig_sim.py ctl fault reset --on delete
DO $$
DECLARE
  detail text;
BEGIN
  DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM USING DETAIL = detail;
END $$;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000001
-- A GET after a reset is retried.
\! python3 test/opsmig_sim.py ctl fault reset --on status
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\! python3 test/opsmig_sim.py ctl attempts --on status
ALTER SERVER om OPTIONS (DROP max_retries);

-- A scan returns every row or an error: one status call of 30 refused (and
-- not retried), and the statement fails as a whole: the snapshot it was to
-- fill does not exist.  (A cursor or a loop may have been handed the rows
-- that completed before the failure: the statement's result is what is whole.)
\! python3 test/opsmig_sim.py ctl reset --orgs 30
\! python3 test/opsmig_sim.py ctl fault http --on status --org 5e2211c17a3e5a48f5000017 --code 403
CREATE TABLE scan_snapshot AS SELECT org_id, status FROM org_migration_links;
\echo :LAST_ERROR_SQLSTATE
SELECT to_regclass('scan_snapshot') AS snapshot;
SELECT count(*) FROM org_migration_links;

-- ALTER USER MAPPING drops the cache (and the connection).
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (ADD cache_ttl '60');
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
ALTER USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (SET public_key 'opsmigtest');
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
-- A DELETE never acts on a cached answer: org 3 is cached as "no link", is
-- linked outside PostgreSQL, and a DELETE that scans first still finds it.
SELECT org_id, status FROM org_migration_links WHERE org_id = :'org3';
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000003
SELECT org_id, status FROM org_migration_links WHERE org_id = :'org3';
DELETE FROM org_migration_links WHERE org_id = :'org3' AND status IS NOT NULL;
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl links | grep -c 5e2211c17a3e5a48f5000003
ALTER SERVER om OPTIONS (DROP cache_ttl);

-- DROP USER MAPPING drops the connection that held the key: the next query
-- finds no mapping and sends nothing.  (That the memory is also zeroed is not
-- visible from SQL; connection.c does it where the entry is dropped.)
CREATE SERVER om_dropkey FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_dropkey
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_dropkey (org_id text, status text) SERVER om_dropkey;
SELECT status FROM links_dropkey WHERE org_id = :'org1';
DROP USER MAPPING FOR CURRENT_USER SERVER om_dropkey;
\! python3 test/opsmig_sim.py ctl reset-counters
-- (The message names the server from PostgreSQL 17 on: only the SQLSTATE here.)
DO $$
BEGIN
  PERFORM status FROM links_dropkey WHERE org_id = '5e2211c17a3e5a48f5000001';
  RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'no user mapping: %', SQLSTATE;
END $$;
\! python3 test/opsmig_sim.py ctl counts
DROP SERVER om_dropkey CASCADE;

-- pg_cancel_backend() from another session ends a stalled request (57014),
-- and the session goes on.  The other session waits (bounded) until the
-- stalled request has reached the simulator, then cancels.
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\! python3 test/opsmig_sim.py ctl fault stall --on status --seconds 20
\! (for i in $(seq 1 200); do [ -z "$(python3 test/opsmig_sim.py ctl faults)" ] && break; sleep 0.05; done; psql -X -At -d "$REGRESS_DB" -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%stalled-by-claims%' AND pid <> pg_backend_pid()") >/dev/null 2>&1 &
SELECT /* stalled-by-claims */ status FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
SELECT status FROM org_migration_links WHERE org_id = :'org1';

-- POST and DELETE are retried when the connection is refused: the request
-- provably never reached the API.
CREATE SERVER om_refused FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'http://127.0.0.1:9/api/public/v1.0', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_refused
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_refused (org_id text, link_token text) SERVER om_refused;
SELECT opsmig_try($$INSERT INTO links_refused VALUES ('5e2211c17a3e5a48f5000001', 'tok')$$);
SELECT opsmig_try($$DELETE FROM links_refused WHERE org_id = '5e2211c17a3e5a48f5000001'$$);
SELECT create_requests, delete_requests, retries, errors_transport
  FROM opsmig_fdw_stats WHERE server_name = 'om_refused';
DROP SERVER om_refused CASCADE;

-- No TRUNCATE.  (COPY ... FROM creates links as INSERT does: sql/copy.)
TRUNCATE org_migration_links;
\echo :LAST_ERROR_SQLSTATE

-- The extension is neither trusted nor relocatable.
SELECT DISTINCT trusted, relocatable FROM pg_available_extension_versions WHERE name = 'opsmig_fdw';

-- Statuses other than SYNCED and NOT_SYNCED pass through.
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000003 --status SYNCING
SELECT org_id, status FROM org_migration_links WHERE org_id = :'org3';

-- The API's other documented answers (test/opsmig_sim.py `ctl quirks`):
-- a create answered 200 with the OpenAPI's extra fields,
\! python3 test/opsmig_sim.py ctl unlink 5e2211c17a3e5a48f5000003
\! python3 test/opsmig_sim.py ctl quirks --create-code 200 --create-fields true
INSERT INTO org_migration_links (org_id, link_token) VALUES (:'org3', 'tok-3') RETURNING org_id, status;
-- "already linked" as 400 instead of 409,
\! python3 test/opsmig_sim.py ctl quirks --already-linked 400
INSERT INTO org_migration_links (org_id, link_token) VALUES (:'org3', 'tok-3');
\echo :LAST_ERROR_SQLSTATE
-- and a key without the Organization Owner role refused with 403.
\! python3 test/opsmig_sim.py ctl quirks --non-owner 403
CREATE SERVER om_weak2 FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_weak2
  OPTIONS (public_key 'opsmigweak', private_key :'weak_key');
CREATE FOREIGN TABLE links_weak2 (org_id text, status text) SERVER om_weak2;
SELECT * FROM links_weak2 WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
DROP SERVER om_weak2 CASCADE;
\! python3 test/opsmig_sim.py ctl reset
