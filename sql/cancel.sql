--
-- cancel: a stalled request is ended by statement_timeout (57014) or by
-- request_timeout (08006, distinct), and the session goes on working.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
-- Warm the connection so the stall hits the status call itself.
SELECT count(*) FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\! python3 test/opsmig_sim.py ctl fault stall --on status --seconds 20
SET statement_timeout = '300ms';
SELECT * FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
-- A whole scan with every status call stalled: cancelled just the same.
\! python3 test/opsmig_sim.py ctl fault stall --on status --seconds 20 --times -1
SET statement_timeout = '300ms';
SELECT count(*) FROM org_migration_links;
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
\! python3 test/opsmig_sim.py ctl clear-faults
SELECT count(*) FROM org_migration_links;
-- request_timeout ends a slow reply with its own SQLSTATE and a hint.
ALTER SERVER om OPTIONS (ADD request_timeout '0.3', ADD max_retries '0');
\! python3 test/opsmig_sim.py ctl fault drip --on status --interval-ms 200
SELECT * FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER om OPTIONS (DROP request_timeout, DROP max_retries);
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
