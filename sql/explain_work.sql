--
-- explain_work: EXPLAIN ANALYZE shows the API requests each scan made
-- itself, even when two scans of one connection are in flight at once.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
-- Which pooled handle already holds a digest nonce depends on how the two
-- scans' requests interleave, so this test, about request counts, leaves
-- the challenge lines out (fast.sql counts challenges).
CREATE FUNCTION explain_work(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	line text;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF) ' || q LOOP
		IF line !~ 'Digest Challenges' THEN
			RETURN NEXT line;
		END IF;
	END LOOP;
END
$$;
SET enable_nestloop = off;
-- Once first, so that every pooled handle has its digest nonce already.
SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id);
\! python3 test/opsmig_sim.py ctl reset-counters
-- Each side of a self-join lists once and asks 5 statuses: 2 and 10 in all.
SELECT explain_work('SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id)');
\! python3 test/opsmig_sim.py ctl counts | sed 's/ challenges=[0-9]*//'
RESET enable_nestloop;
-- A nested loop asks one status per outer row, and shows that sum.
\! python3 test/opsmig_sim.py ctl reset-counters
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT explain_work('SELECT count(*) FROM org_migration_links a JOIN org_migration_links b USING (org_id)');
\! python3 test/opsmig_sim.py ctl counts | sed 's/ challenges=[0-9]*//'
RESET enable_hashjoin;
RESET enable_mergejoin;
DROP FUNCTION explain_work(text);
