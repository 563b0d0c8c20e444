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
\! python3 test/opsmig_sim.py ctl reset --orgs 5
