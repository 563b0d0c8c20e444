--
-- counters: one table of counters (opsmig_counters.h) drives the struct,
-- opsmig_fdw_stats, the cluster view, EXPLAIN ANALYZE and the error
-- counting.  What EXPLAIN shows, in its order and under its conditions
-- (timing-only lines, Cache Hits, the rate-limit lines), is pinned here with
-- the numbers masked, in text and in JSON; and the view shows what EXPLAIN
-- shows: bytes_received is filled, and is the sum EXPLAIN ANALYZE showed.
--
\set org1 '5e2211c17a3e5a48f5000001'
\! python3 test/opsmig_sim.py ctl reset --orgs 5
-- The text lines with every number masked (timings and byte counts vary);
-- a node's "(actual ...)" is left out, it differs between majors.
CREATE FUNCTION counters_explain(opts text, q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF, BUFFERS OFF, ' || opts || ') ' || q LOOP
    RETURN NEXT regexp_replace(regexp_replace(line, '\s*\(actual.*$', ''), '[0-9]+(\.[0-9]+)?', 'N', 'g');
  END LOOP;
END $$;
-- Our properties of each node in JSON, in order (core's keys differ by major).
CREATE FUNCTION counters_json_keys(opts text, q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, SUMMARY OFF, BUFFERS OFF, FORMAT JSON, ' || opts || ') ' || q INTO j;
  RETURN QUERY
  SELECT n.p->>'Node Type' || ': ' || k
    FROM (SELECT j->0->'Plan' AS p
          UNION ALL SELECT json_array_elements(j->0->'Plan'->'Plans')) AS n,
         json_object_keys(n.p) AS k
   WHERE k ~ '^(API|Digest|Cache|Connections|Bytes|Rate|Links)';
END $$;

-- A scan: with TIMING, the connections, bytes and API time too.
SELECT counters_explain('TIMING ON', 'SELECT count(*) FROM org_migration_links');
SELECT counters_explain('TIMING OFF', 'SELECT count(*) FROM org_migration_links');
SELECT counters_json_keys('TIMING ON', 'SELECT count(*) FROM org_migration_links');
SELECT counters_json_keys('TIMING OFF', 'SELECT count(*) FROM org_migration_links');
-- With cache_ttl on, Cache Hits shows, 0 or not.
ALTER SERVER om OPTIONS (ADD cache_ttl '60');
SELECT counters_explain('TIMING ON', 'SELECT count(*) FROM org_migration_links');
SELECT counters_json_keys('TIMING OFF', 'SELECT count(*) FROM org_migration_links');
ALTER SERVER om OPTIONS (DROP cache_ttl);
-- The rate limit's lines show only where a 429 came (the wait with TIMING).
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --times 1 --retry-after 0
SELECT counters_explain('TIMING ON', 'SELECT status FROM org_migration_links WHERE org_id = ''5e2211c17a3e5a48f5000001''');
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --times 1 --retry-after 0
SELECT counters_json_keys('TIMING ON', 'SELECT status FROM org_migration_links WHERE org_id = ''5e2211c17a3e5a48f5000001''');
\! python3 test/opsmig_sim.py ctl fault http --on status --code 429 --times 1 --retry-after 0
SELECT counters_json_keys('TIMING OFF', 'SELECT status FROM org_migration_links WHERE org_id = ''5e2211c17a3e5a48f5000001''');
-- A direct DELETE's work shows on its Foreign Delete node, with the links
-- deleted last; an INSERT's on its ModifyTable node.
SELECT counters_json_keys('TIMING ON', 'DELETE FROM org_migration_links WHERE org_id = ''5e2211c17a3e5a48f5000004''');
SELECT counters_explain('TIMING ON', 'INSERT INTO org_migration_links (org_id, link_token) VALUES (''5e2211c17a3e5a48f5000004'', ''t4'')');

-- The view shows the bytes EXPLAIN ANALYZE showed: a reset, one scan, and
-- the view's bytes_received is the sum of the nodes' Bytes Received.
SELECT opsmig_fdw_stats_reset();
CREATE FUNCTION counters_explained_bytes(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  j json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO j;
  RETURN (SELECT sum((n.p->>'Bytes Received')::bigint)
            FROM (SELECT j->0->'Plan' AS p
                  UNION ALL SELECT json_array_elements(j->0->'Plan'->'Plans')) AS n);
END $$;
SELECT counters_explained_bytes('SELECT count(*) FROM org_migration_links') AS explained \gset
SELECT :explained > 0 AS explain_counted_bytes;
SELECT list_requests, status_requests, bytes_received > 0 AS filled,
       bytes_received = :explained AS as_explain_showed
  FROM opsmig_fdw_stats WHERE server_name = 'om';
-- Both functions return the counters in the table's order (cluster.c
-- fills its own by position).
SELECT s.proargnames[3:] = c.proargnames[5:] AS same_counters_same_order
  FROM pg_proc s, pg_proc c
 WHERE s.proname = 'opsmig_fdw_stats' AND c.proname = 'opsmig_fdw_cluster_stats';
-- The 1.3 function has a C name of its own: a backend still running a
-- library older than 1.3 cannot fill its columns by that library's order.
SELECT prosrc FROM pg_proc WHERE proname = 'opsmig_fdw_stats';
-- Columns that are not the library's counters in its order are refused
-- with 55000, whether or not the backend has used a connection yet.
-- counters_like makes a function over a C symbol of the module with the
-- columns of this version's opsmig_fdw_stats(), one of them edited.
CREATE FUNCTION pg_temp.counters_like(name text, symbol text, edit_from text, edit_to text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  args text := pg_get_function_arguments('opsmig_fdw_stats'::regproc);
BEGIN
  IF position(edit_from IN args) = 0 THEN
    RAISE EXCEPTION 'no "%" in the columns of opsmig_fdw_stats()', edit_from;
  END IF;
  EXECUTE format('CREATE FUNCTION %I(%s) RETURNS SETOF record AS %L, %L LANGUAGE C STRICT',
                 name, replace(args, edit_from, edit_to), 'opsmig_fdw', symbol);
END $$;
SELECT pg_temp.counters_like('counters_swapped', 'opsmig_fdw_stats_1_3',
  'OUT retries bigint, OUT digest_challenges bigint',
  'OUT digest_challenges bigint, OUT retries bigint');
SELECT * FROM counters_swapped();
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.counters_like('counters_wrong_type', 'opsmig_fdw_stats_1_3',
  'OUT total_ms double precision', 'OUT total_ms bigint');
SELECT * FROM counters_wrong_type();
\echo :LAST_ERROR_SQLSTATE
-- A key column of another type too (an oid read as text crashed the backend).
SELECT pg_temp.counters_like('counters_key_type', 'opsmig_fdw_stats_1_3',
  'OUT user_mapping oid', 'OUT user_mapping text');
SELECT * FROM counters_key_type();
\echo :LAST_ERROR_SQLSTATE
-- The functions of versions before 1.3 (matched by name) check types too.
CREATE FUNCTION counters_old_key_type(OUT server_name text, OUT user_mapping text)
RETURNS SETOF record AS 'opsmig_fdw', 'opsmig_fdw_stats' LANGUAGE C STRICT;
SELECT * FROM counters_old_key_type();
\echo :LAST_ERROR_SQLSTATE
-- A row type with a dropped column: 55000, not XX000 (no type to name).
DO $$ BEGIN
  EXECUTE format('CREATE TYPE counters_row AS (%s)',
                 replace(pg_get_function_arguments('opsmig_fdw_stats'::regproc), 'OUT ', ''));
END $$;
ALTER TYPE counters_row DROP ATTRIBUTE max_ms;
CREATE FUNCTION counters_dropped() RETURNS SETOF counters_row
  AS 'opsmig_fdw', 'opsmig_fdw_stats_1_3' LANGUAGE C STRICT;
SELECT * FROM counters_dropped();
\echo :LAST_ERROR_SQLSTATE
\c
SELECT * FROM counters_swapped();
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION counters_swapped();
DROP FUNCTION counters_wrong_type();
DROP FUNCTION counters_key_type();
DROP FUNCTION counters_old_key_type();
DROP FUNCTION counters_dropped();
DROP TYPE counters_row;

DROP FUNCTION counters_explain(text, text);
DROP FUNCTION counters_json_keys(text, text);
DROP FUNCTION counters_explained_bytes(text);
