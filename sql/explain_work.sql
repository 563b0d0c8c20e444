--
-- explain_work: EXPLAIN ANALYZE shows the API requests each scan made
-- itself, even when two scans of one connection are in flight at once.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
SET enable_nestloop = off;
-- Once first, so that every pooled handle has its digest nonce already.
SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id);
\! python3 test/opsmig_sim.py ctl reset-counters
-- Each side of a self-join lists once and asks 5 statuses: 2 and 10 in all.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id);
\! python3 test/opsmig_sim.py ctl counts
RESET enable_nestloop;
-- A nested loop asks one status per outer row, and shows that sum.
\! python3 test/opsmig_sim.py ctl reset-counters
SET enable_hashjoin = off;
SET enable_mergejoin = off;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id);
\! python3 test/opsmig_sim.py ctl counts
RESET enable_hashjoin;
RESET enable_mergejoin;
