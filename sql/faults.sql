--
-- faults: retries with backoff on what may be retried, never on what may
-- not, a fresh digest challenge for an expired nonce, and the counts of it
-- all in EXPLAIN ANALYZE and opsmig_fdw_stats.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
\set org1 '5e2211c17a3e5a48f5000001'
SELECT opsmig_fdw_stats_reset();
-- Warm up: one handle, its nonce known.
SELECT status FROM org_migration_links WHERE org_id = :'org1';

-- 429 with Retry-After, then success: retried after the server's delay.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --retry-after 1
\! python3 test/opsmig_sim.py ctl reset-counters
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT status FROM org_migration_links WHERE org_id = :'org1';
\! python3 test/opsmig_sim.py ctl counts
-- The simulator's arrival times: the retry came at least Retry-After (1 s)
-- after the 429, not after the 200 ms backoff alone.
\! python3 test/opsmig_sim.py ctl attempts --on status --min-gap 1
-- 500 and 502 then success: a GET is retried with backoff; DEBUG1 says so.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 2
SET client_min_messages = debug1;
SELECT status FROM org_migration_links WHERE org_id = :'org1';
RESET client_min_messages;
-- A reset connection on a GET: retried.
\! python3 test/opsmig_sim.py ctl fault reset --on list --times 2
SELECT count(*) FROM org_migration_links;
-- 429 forever: no failed attempt, so max_retries never ends it; the wait
-- the API asks for does not fit rate_limit_wait: 53400 at once.
ALTER SERVER om OPTIONS (ADD max_retries '2', ADD rate_limit_wait '1');
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --retry-after 2 --times -1
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
ALTER SERVER om OPTIONS (DROP rate_limit_wait);
-- A retry never waits past statement_timeout: the error comes at once.
\! python3 test/opsmig_sim.py ctl clear-faults
\! python3 test/opsmig_sim.py ctl fault http --on status --code 503 --retry-after 30 --times -1
\! python3 test/opsmig_sim.py ctl reset-counters
SET statement_timeout = '5s';
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
-- Exactly one request: the 30 s wait did not fit, so there was no retry.
\! python3 test/opsmig_sim.py ctl attempts --on status
\! python3 test/opsmig_sim.py ctl clear-faults
ALTER SERVER om OPTIONS (DROP max_retries);

-- POST and DELETE are not retried on 5xx (the API may have acted)...
\! python3 test/opsmig_sim.py ctl fault http --on create --code 500
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
-- (A proxy's 502: the API may have acted, so the warning says so; caught
-- in a block, so the warning and the error come in a fixed order.)
\! python3 test/opsmig_sim.py ctl fault http --on delete --code 502 --body html
DO $$
DECLARE d text;
BEGIN
  DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: % (%)', SQLSTATE, SQLERRM, d;
END $$;
\! python3 test/opsmig_sim.py ctl counts
-- ...but they are on 429, which the API refused unprocessed.
\! python3 test/opsmig_sim.py ctl fault http --on create --code 429 --retry-after 0
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok') RETURNING status;
\! python3 test/opsmig_sim.py ctl counts
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT

-- An expired nonce (401 stale=false to a request that carried credentials):
-- one fresh challenge, then success.
\! python3 test/opsmig_sim.py ctl fault stale_nonce --on status --stale false
\! python3 test/opsmig_sim.py ctl reset-counters
SET client_min_messages = debug1;
SELECT status FROM org_migration_links WHERE org_id = :'org1';
RESET client_min_messages;
\! python3 test/opsmig_sim.py ctl counts
-- A nonce the server keeps refusing: re-challenged once, then 28000.
\! python3 test/opsmig_sim.py ctl fault stale_nonce --on status --stale false --times -1
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl clear-faults
-- All nonces expired at once (stale=true): libcurl answers the new challenge.
\! python3 test/opsmig_sim.py ctl expire-nonces
SELECT status FROM org_migration_links WHERE org_id = :'org1';

-- Everything above, counted.
SELECT retries > 0 AS retried, errors_429 > 0 AS saw_429, errors_5xx > 0 AS saw_5xx,
       errors_401 > 0 AS saw_401, errors_transport > 0 AS saw_reset
  FROM opsmig_fdw_stats WHERE server_name = 'om';
