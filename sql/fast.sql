--
-- fast: concurrency, the stats view, the cache_ttl cache and concurrent
-- multi-row INSERT, checked with request counts (never with timings).
--
\! python3 test/opsmig_sim.py ctl reset --orgs 40
-- A scan with 40 organizations: 1 page and 40 status calls, with up to
-- max_concurrent_requests (8) in flight, each new handle paying one digest
-- challenge; a second scan pays none.
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts

-- This backend's counters, per server.
SELECT server_name, list_requests, status_requests, create_requests, delete_requests,
       errors_404, retries, digest_challenges, cache_hits, total_ms > 0 AS timed
  FROM opsmig_fdw_stats;
SELECT opsmig_fdw_stats_reset();
SELECT server_name, list_requests + status_requests AS requests FROM opsmig_fdw_stats;
-- Errors are counted by code.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 403
SELECT * FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
SELECT status_requests, errors_403 FROM opsmig_fdw_stats;

-- cache_ttl: a repeated scan within the TTL makes no request at all.
ALTER SERVER om OPTIONS (ADD cache_ttl '60');
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
SELECT count(*) FROM org_migration_links;
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000002';
\! python3 test/opsmig_sim.py ctl counts
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) SELECT count(*) FROM org_migration_links;
-- Changes through the table are seen at once: the changed org is forgotten.
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000002';
\echo :ROW_COUNT
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links
 WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002', '5e2211c17a3e5a48f5000003')
 ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
-- A table may ask for fresh answers even when its server caches.
CREATE FOREIGN TABLE links_fresh (org_id text, status text) SERVER om OPTIONS (cache_ttl '0');
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM links_fresh;
\! python3 test/opsmig_sim.py ctl counts
-- ALTER SERVER drops the connection and its cache.
ALTER SERVER om OPTIONS (DROP cache_ttl);
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts

-- A multi-row INSERT sends its POSTs side by side (a batch per
-- max_concurrent_requests rows); one bad row stops all before any request.
\! python3 test/opsmig_sim.py ctl reset --orgs 40
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO org_migration_links (org_id, link_token)
  SELECT '5e2211c17a3e5a48f5' || lpad(to_hex(i), 6, '0'), 'tok-' || i
    FROM generate_series(3, 39, 3) AS i;
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
INSERT INTO org_migration_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000028', 'ok'), ('not-an-org', 'bad');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
SELECT count(*) FROM org_migration_links;
-- A failure in the middle of a batch: the rows the API accepted are reported.
\! python3 test/opsmig_sim.py ctl unlink 5e2211c17a3e5a48f5000028
DO $$
BEGIN
  INSERT INTO org_migration_links (org_id, link_token)
    VALUES ('5e2211c17a3e5a48f5000028', 'ok'), ('5e2211c17a3e5a48f5000001', 'dup');
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;

-- Two scans in flight on one connection at once (a cursor left open, then
-- another query; a self-join): completions reach the scan they belong to.
\! python3 test/opsmig_sim.py ctl reset --orgs 30
DO $$
DECLARE
  c refcursor;
  id text;
  n int := 0;
  mid int;
BEGIN
  OPEN c FOR SELECT org_id FROM org_migration_links;
  FETCH c INTO id;
  FETCH c INTO id;
  SELECT count(*) INTO mid FROM org_migration_links
   WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002', '5e2211c17a3e5a48f5000003');
  LOOP
    FETCH c INTO id;
    EXIT WHEN NOT FOUND;
    n := n + 1;
  END LOOP;
  RAISE NOTICE 'cursor: 2 + % rows; the query in between: % rows', n, mid;
END $$;
SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id)
 WHERE a.status = b.status;
