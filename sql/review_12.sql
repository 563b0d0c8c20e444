--
-- review_12: adversarial checks of the rate-limit pacer (issue 12).
-- Counts come from the stats view and the simulator, never from timings.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 40

-- 1. A statement that fails with requests still out must hand their places
-- in the bucket back.  The server below says its bucket (capacity 40) but
-- refills it so fast that a scan never meets a 429; six statements that
-- each fail on one organization's 500 while the others' requests are out
-- must not leave the bucket believing ~40 requests are still in flight,
-- which made every later scan wait (one request at a time) on a bucket
-- that was never short.
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 40 --refill 1000 --per 1
SELECT opsmig_fdw_stats_reset();
SELECT count(*) FROM org_migration_links;
SELECT rate_limit_waits AS waits_before, errors_429 FROM opsmig_fdw_stats WHERE server_name = 'om';
ALTER SERVER om OPTIONS (ADD max_retries '0');
CREATE FUNCTION pg_temp.fails() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM org_migration_links;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN 'SQLSTATE ' || SQLSTATE;
END $$;
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 1
SELECT pg_temp.fails();
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 1
SELECT pg_temp.fails();
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 1
SELECT pg_temp.fails();
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 1
SELECT pg_temp.fails();
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 1
SELECT pg_temp.fails();
\! python3 test/opsmig_sim.py ctl fault http --on status --code 500 --times 1
SELECT pg_temp.fails();
ALTER SERVER om OPTIONS (DROP max_retries);
SELECT opsmig_fdw_stats_reset();
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
SELECT rate_limit_waits AS waits_after, errors_429 FROM opsmig_fdw_stats WHERE server_name = 'om';
\! python3 test/opsmig_sim.py ctl counter rate_limited
\! python3 test/opsmig_sim.py ctl ratelimit --off

-- 2. rate_limit_wait bounds all the waits of a statement, also those taken
-- while other requests are out.  30 organizations at 5 a second
-- (max_requests_per_minute 300, a burst of 5) need about 5 s of waiting;
-- with replies slower than the pace (400 ms) a request is always out, and
-- the statement used to wait them all, far beyond rate_limit_wait '1'.
-- (A new session: the bucket learnt above stays in this backend.)
\c
ALTER SERVER om OPTIONS (ADD max_requests_per_minute '300', ADD rate_limit_wait '1');
\! python3 test/opsmig_sim.py ctl latency 400
-- One request first, so that the scan below starts with its digest nonce.
SELECT count(*) FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT * FROM masked_error($$SELECT count(*) FROM org_migration_links
  WHERE org_id = ANY (ARRAY(SELECT '5e2211c17a3e5a48f5' || lpad(to_hex(i), 6, '0') FROM generate_series(1, 30) AS i))$$);
\set nstatus `python3 test/opsmig_sim.py ctl counter status`
SELECT :nstatus < 20 AS stopped_early;
SELECT 1 AS still_usable;
\! python3 test/opsmig_sim.py ctl latency 0
ALTER SERVER om OPTIONS (DROP max_requests_per_minute, DROP rate_limit_wait);

-- 3. A server that stops saying its limit is not limited any more.  The
-- bucket below says its capacity (40) but never runs short, so no 429
-- tells its refill rate; then the server stops limiting and stops sending
-- RateLimit-* headers.  The pacer used to keep counting tokens it could
-- not refill, and once they were spent let one request out a second for
-- five minutes.
\c
\! python3 test/opsmig_sim.py ctl reset --orgs 40
\! python3 test/opsmig_sim.py ctl ratelimit --capacity 40 --refill 1000 --per 1
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl ratelimit --off
SELECT opsmig_fdw_stats_reset();
SET statement_timeout = '20s';
SELECT count(*) FROM org_migration_links;
SELECT count(*) FROM org_migration_links;
RESET statement_timeout;
SELECT rate_limit_waits, errors_429 FROM opsmig_fdw_stats WHERE server_name = 'om';

-- 4. A 429 whose bucket refills absurdly slowly (1e-9 tokens every 1e8 s,
-- both within what is accepted) asks for a wait of about 1e23 us: that
-- must hold the request (here: 53400 at once, it cannot fit in 5 s), not
-- overflow the conversion to int64, which came out negative and let the
-- request go at once as if the bucket were full.
\c
\! python3 test/opsmig_sim.py ctl reset --orgs 5
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --times 1 --retry-after 0 --parameters '["api/public/v1.0/orgs", 0, 10, 1e-9, 100000000]'
SET statement_timeout = '5s';
SELECT * FROM masked_error($$SELECT status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001'$$);
RESET statement_timeout;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl reset --orgs 5
