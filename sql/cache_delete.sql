--
-- cache_delete: with cache_ttl, a DELETE decides on what the API says now,
-- never on a cached answer, and no answer asked before a DELETE goes back
-- into the cache after it.  (Digest challenge counts are left out of the
-- request counts: they depend on how many requests happened to overlap.)
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (ADD cache_ttl '60');

-- Cached: org 2 NOT_SYNCED.  Then it becomes SYNCED outside PostgreSQL.
SELECT org_id, status FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000002 --status SYNCED
\! python3 test/opsmig_sim.py ctl reset-counters
-- A condition on status: the scan under the DELETE asks for every status
-- again, so only org 4 (live NOT_SYNCED) goes, not org 2.
DELETE FROM org_migration_links WHERE status = 'NOT_SYNCED' RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl counts | sed 's/ challenges=[0-9]*//'
\! python3 test/opsmig_sim.py ctl links

-- Cached: org 3 has no link.  Then it is linked outside PostgreSQL; a
-- DELETE ... RETURNING (row by row) still finds and deletes it.
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000003 --status NOT_SYNCED
\! python3 test/opsmig_sim.py ctl reset-counters
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003' RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl counts | sed 's/ challenges=[0-9]*//'

-- Neither side of a self-join in a DELETE reads the cache (the other
-- side asks the listing, for s.*, and org 5's status).
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000005 --status NOT_SYNCED
\! python3 test/opsmig_sim.py ctl reset-counters
DELETE FROM org_migration_links d USING org_migration_links s
 WHERE d.org_id = s.org_id AND d.status = 'NOT_SYNCED' RETURNING d.org_id, d.status;
\! python3 test/opsmig_sim.py ctl counts | sed 's/ challenges=[0-9]*//'
\! python3 test/opsmig_sim.py ctl links

-- A cursor opened before a DELETE: its answer for org 1 was asked before
-- the DELETE (and is slow to arrive); read after it, it must not be cached.
-- (ALTER SERVER starts with an empty cache.)
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (SET cache_ttl '60');
\! python3 test/opsmig_sim.py ctl fault drip --on status --org 5e2211c17a3e5a48f5000001 --interval-ms 20
BEGIN;
DECLARE c CURSOR FOR SELECT org_id, status FROM org_migration_links;
MOVE 1 IN c;
\echo :ROW_COUNT
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :ROW_COUNT
MOVE ALL IN c;
\echo :ROW_COUNT
CLOSE c;
COMMIT;
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\! python3 test/opsmig_sim.py ctl counts | sed 's/ challenges=[0-9]*//'

ALTER SERVER om OPTIONS (DROP cache_ttl);
\! python3 test/opsmig_sim.py ctl reset --orgs 5
