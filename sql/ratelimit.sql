--
-- ratelimit: the API's token bucket paces requests instead of failing them.
-- Counts come from the simulator (requests, 429s), never from timings; the
-- seconds in a DETAIL are masked as N.
--
\set org1 '5e2211c17a3e5a48f5000001'
\! python3 test/opsmig_sim.py ctl reset --orgs 60
SELECT opsmig_fdw_stats_reset();

-- The two options are range-checked like the others.
ALTER SERVER om OPTIONS (ADD max_requests_per_minute '0');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER om OPTIONS (ADD max_requests_per_minute '1.5');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER om OPTIONS (ADD rate_limit_wait '-1');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER om OPTIONS (ADD rate_limit_wait 'forever');
\echo :LAST_ERROR_SQLSTATE

-- A server that says nothing (no RateLimit-* headers, no Retry-After, the
-- older 429 without parameters) is not paced: a scan completes, but with
-- 429s; max_requests_per_minute paces it below the server's limit: none.
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 25 --refill 25 --per 1 --quiet --legacy
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\set n429 `python3 test/opsmig_sim.py ctl counter rate_limited`
SELECT :n429 > 0 AS unpaced_got_429s;
ALTER SERVER om OPTIONS (ADD max_requests_per_minute '1200');
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 25 --refill 25 --per 1 --quiet --legacy
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counter rate_limited
ALTER SERVER om OPTIONS (DROP max_requests_per_minute);
\! python3 test/opsmig_sim.py ctl ratelimit --off

-- A 429 is no failed attempt: with max_retries 0 the request is sent again
-- when the rate limit allows, and EXPLAIN ANALYZE counts the 429s.
ALTER SERVER om OPTIONS (ADD max_retries '0');
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --times 3
\! python3 test/opsmig_sim.py ctl reset-counters
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT status FROM org_migration_links WHERE org_id = :'org1';
\! python3 test/opsmig_sim.py ctl counts
-- The same for an INSERT and a DELETE: a 429 means the API did nothing.
\! python3 test/opsmig_sim.py ctl fault http --on create --code 429 --retry-after 0
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok') RETURNING status;
\! python3 test/opsmig_sim.py ctl fault http --on delete --code 429 --retry-after 0
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
ALTER SERVER om OPTIONS (DROP max_retries);

-- rate_limit_wait bounds the time a statement may wait on the rate limit:
-- a request the API asks to hold for longer is refused at once.
ALTER SERVER om OPTIONS (ADD rate_limit_wait '1');
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --retry-after 5
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER om OPTIONS (DROP rate_limit_wait);

-- Capacity 10, refilled at 50 a second, with RateLimit-* headers and the
-- 429 body of the docs: a 60-organization scan (61 requests) completes with
-- at most 5% of its requests answered 429.
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 10 --refill 50 --per 1
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\set n429 `python3 test/opsmig_sim.py ctl counter rate_limited`
\set nstatus `python3 test/opsmig_sim.py ctl counter status`
\set nlist `python3 test/opsmig_sim.py ctl counter list`
SELECT :nlist + :nstatus - :n429 AS answered, :n429 <= 0.05 * (:nlist + :nstatus) AS at_most_5pct_429;

-- statement_timeout shorter than the wait the bucket needs: 53400 at once
-- (once the bucket is learnt), saying how many organizations were not yet
-- asked, long before the timeout; and the session stays usable.
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 10 --refill 2 --per 1
\! python3 test/opsmig_sim.py ctl reset-counters
SET statement_timeout = '20s';
SELECT * FROM masked_error('SELECT count(*) FROM org_migration_links');
RESET statement_timeout;
\set nstatus `python3 test/opsmig_sim.py ctl counter status`
SELECT :nstatus < 30 AS stopped_early;
SELECT 1 AS still_usable;

-- rate_limit_wait counts every wait of the statement: 30 organizations at
-- 2 a second do not fit in 1 s.
ALTER SERVER om OPTIONS (ADD rate_limit_wait '1');
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 10 --refill 2 --per 1
SELECT * FROM masked_error($$SELECT count(*) FROM org_migration_links
  WHERE org_id = ANY (ARRAY(SELECT '5e2211c17a3e5a48f5' || lpad(to_hex(i), 6, '0') FROM generate_series(31, 60) AS i))$$);
ALTER SERVER om OPTIONS (DROP rate_limit_wait);

-- The stats view counts the 429s and the waits.
SELECT errors_429 > 0 AS saw_429, rate_limit_waits > 0 AS waited,
       rate_limit_wait_ms > 0 AS wait_timed, retries
  FROM opsmig_fdw_stats WHERE server_name = 'om';
\! python3 test/opsmig_sim.py ctl reset --orgs 5
