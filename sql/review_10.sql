--
-- review_10: adversarial checks of the issue-10 refactor (the transport
-- counts nothing; the API layer counts each attempt through the batch's hook).
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5

-- 1. A rate-limit wait belongs to the plan node whose request waited, even
-- when that request is still out as the node stops (LIMIT): EXPLAIN ANALYZE
-- showed it before the refactor, and the stats view still counts it.  With
-- max_requests_per_minute 60 the second request waits about a second; the
-- first (1.5 s slow) answers the LIMIT while the second (3 s) is still out.
ALTER SERVER om OPTIONS (ADD max_requests_per_minute '60');
SELECT pg_sleep(1.1);  -- the bucket is full
\! python3 test/opsmig_sim.py ctl fault slow --on status --org 5e2211c17a3e5a48f5000001 --seconds 1.5
\! python3 test/opsmig_sim.py ctl fault slow --on status --org 5e2211c17a3e5a48f5000002 --seconds 3
CREATE FUNCTION pg_temp.node_rate_limit_wait(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
  RETURN coalesce((j->0->'Plan'->'Plans'->0->>'Rate Limit Wait')::float8, 0);
END $$;
SELECT pg_temp.node_rate_limit_wait($q$SELECT status FROM org_migration_links
  WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002') LIMIT 1$q$) >= 500
  AS node_shows_the_wait;
SELECT rate_limit_wait_ms >= 500 AS view_shows_the_wait
  FROM opsmig_fdw_stats WHERE server_name = 'om';
\! python3 test/opsmig_sim.py ctl clear-faults
ALTER SERVER om OPTIONS (DROP max_requests_per_minute);
