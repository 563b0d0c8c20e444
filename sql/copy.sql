--
-- copy: COPY FROM and rows routed into the foreign table as a partition
-- create links exactly as INSERT does (checked first, sent in concurrent
-- batches, the same errors and ROLLBACK warning); COPY TO needs a query.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 12
-- Orgs 3, 6, 9 and 12 have no link.  A fresh backend, so that each pooled
-- handle pays one digest challenge: 3 challenges = 3 POSTs side by side.
\c
COPY org_migration_links (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f5000003	tok-3
5e2211c17a3e5a48f5000006	tok-6
5e2211c17a3e5a48f5000009	tok-9
\.
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl token 5e2211c17a3e5a48f5000006
SELECT org_id, status FROM org_migration_links
 WHERE org_id IN ('5e2211c17a3e5a48f5000003', '5e2211c17a3e5a48f5000006', '5e2211c17a3e5a48f5000009')
 ORDER BY org_id;

-- More rows than max_concurrent_requests: batches of 2.
\! python3 test/opsmig_sim.py ctl reset --orgs 12
ALTER SERVER om OPTIONS (ADD max_concurrent_requests '2');
COPY org_migration_links (org_id, link_token) FROM STDIN (FORMAT csv);
5e2211c17a3e5a48f5000003,a
5e2211c17a3e5a48f5000006,b
5e2211c17a3e5a48f5000009,c
\.
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl links

-- Every row of a batch is checked before any of its requests: a bad row
-- names its COPY line, and nothing of its batch was sent.  (COPY FROM
-- PROGRAM, so that psql keeps the SQLSTATE.)
\! python3 test/opsmig_sim.py ctl reset --orgs 12
\! python3 test/opsmig_sim.py ctl reset-counters
COPY org_migration_links (org_id, link_token) FROM PROGRAM $$printf '5e2211c17a3e5a48f5000003\ttok\nnot-an-org\ttok\n'$$;
\echo :LAST_ERROR_SQLSTATE
COPY org_migration_links (org_id, link_token) FROM PROGRAM $$printf '5e2211c17a3e5a48f5000003\ttok\n5e2211c17a3e5a48f5000006\t\\N\n'$$;
\echo :LAST_ERROR_SQLSTATE
COPY org_migration_links (org_id, link_token, status) FROM PROGRAM $$printf '5e2211c17a3e5a48f5000003\ttok\tSYNCED\n'$$;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
-- A later batch's bad row: the batch before it was sent.  (The rollback
-- warning is left out here: it and the error reach psql in either order,
-- and it lists the two links in completion order.  ctl links shows them;
-- the next case shows the warning.)
SET client_min_messages = error;
COPY org_migration_links (org_id, link_token) FROM PROGRAM $$printf '5e2211c17a3e5a48f5000003\ta\n5e2211c17a3e5a48f5000006\tb\n5e2211c17a3e5a48f500000Z\tc\n'$$;
\echo :LAST_ERROR_SQLSTATE
RESET client_min_messages;
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl links
-- The API's errors are INSERT's: an org already linked is 23505.
\! python3 test/opsmig_sim.py ctl reset-counters
DO $$
BEGIN
  COPY org_migration_links (org_id, link_token) FROM PROGRAM $p$printf '5e2211c17a3e5a48f5000009\tok\n5e2211c17a3e5a48f5000001\tdup\n'$p$;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;
\! python3 test/opsmig_sim.py ctl counts
ALTER SERVER om OPTIONS (DROP max_concurrent_requests);

-- ROLLBACK cannot undo what COPY created, and says so.
\! python3 test/opsmig_sim.py ctl reset --orgs 12
BEGIN;
COPY org_migration_links (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f500000c	tok-12
\.
ROLLBACK;
\! python3 test/opsmig_sim.py ctl links

-- Row triggers see each row as it is created (and AFTER ones, created).
CREATE TABLE copy_log (op text, org_id text, links_now bigint);
CREATE FUNCTION log_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO copy_log
    SELECT TG_WHEN || ' ' || TG_OP, NEW.org_id,
           (SELECT count(*) FROM org_migration_links WHERE org_id = NEW.org_id);
  RETURN NEW;
END $$;
CREATE TRIGGER copy_before BEFORE INSERT ON org_migration_links
  FOR EACH ROW EXECUTE FUNCTION log_link();
CREATE TRIGGER copy_after AFTER INSERT ON org_migration_links
  FOR EACH ROW EXECUTE FUNCTION log_link();
\! python3 test/opsmig_sim.py ctl reset --orgs 12
COPY org_migration_links (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f5000003	a
5e2211c17a3e5a48f5000006	b
\.
SELECT * FROM copy_log ORDER BY org_id, op DESC;
\! python3 test/opsmig_sim.py ctl counts
DROP TRIGGER copy_before ON org_migration_links;
DROP TRIGGER copy_after ON org_migration_links;

-- COPY TO: the table itself is refused by PostgreSQL (42809); a query works.
COPY org_migration_links TO STDOUT;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl reset-counters
COPY (SELECT org_id, org_name, status FROM org_migration_links ORDER BY org_id) TO STDOUT (FORMAT csv, HEADER);
\! python3 test/opsmig_sim.py ctl counts

-- A partitioned table with the foreign table as a partition: routed
-- INSERTs create links as INSERT does (batched; RETURNING; bad rows first).
\! python3 test/opsmig_sim.py ctl reset --orgs 12
CREATE TABLE all_links (org_id text NOT NULL, org_name text, status text, link_token text)
  PARTITION BY LIST (org_id);
CREATE TABLE local_links PARTITION OF all_links DEFAULT;
CREATE FOREIGN TABLE remote_links PARTITION OF all_links
  FOR VALUES IN ('5e2211c17a3e5a48f5000003', '5e2211c17a3e5a48f5000006',
                 '5e2211c17a3e5a48f5000009', '5e2211c17a3e5a48f500000c',
                 '5e2211c17a3e5a48f5000001', 'not-an-org')
  SERVER om;
\c
INSERT INTO all_links (org_id, link_token)
  VALUES ('5e2211c17a3e5a48f5000003', 'a'), ('5e2211c17a3e5a48f5000006', 'b'), ('aaaa', 'local');
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
INSERT INTO all_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000009', 'c')
  RETURNING tableoid::regclass, org_id, status, link_token;
INSERT INTO all_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 'dup');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO all_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f500000c', 'x'), ('not-an-org', 'y');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO all_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 'x') ON CONFLICT DO NOTHING;
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
-- COPY into the partitioned table, and moving a row in by UPDATE.
\! python3 test/opsmig_sim.py ctl unlink 5e2211c17a3e5a48f5000003
COPY all_links (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f5000003	again
bbbb	local
\.
SELECT org_id, status FROM remote_links WHERE org_id = '5e2211c17a3e5a48f5000003';
SELECT org_id FROM local_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl reset-counters
UPDATE all_links SET org_id = '5e2211c17a3e5a48f5000001' WHERE org_id = 'aaaa';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
DROP TABLE all_links, copy_log;
DROP FUNCTION log_link();
