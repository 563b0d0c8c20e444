--
-- review_9a: defects an adversarial review of COPY FROM, partition
-- routing and the malformed-id change found; each part failed before
-- its fix.
--

-- A row trigger can ALTER the server while a COPY runs; the connection is
-- then rebuilt with the new max_concurrent_requests.  The rows COPY holds
-- keep the batch size they started with (the held array was indexed by
-- the new, larger size: a write past its end and a crashed backend).
\! python3 test/opsmig_sim.py ctl reset --orgs 40
ALTER SERVER om OPTIONS (ADD max_concurrent_requests '2');
CREATE FUNCTION review_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.link_token = 'bump' THEN
    ALTER SERVER om OPTIONS (SET max_concurrent_requests '16');
    PERFORM count(*) FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER review_bump BEFORE INSERT ON org_migration_links
  FOR EACH ROW EXECUTE FUNCTION review_bump();
\! python3 test/opsmig_sim.py ctl reset-counters
COPY org_migration_links (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f5000003	bump
5e2211c17a3e5a48f5000006	t
5e2211c17a3e5a48f5000009	t
5e2211c17a3e5a48f500000c	t
5e2211c17a3e5a48f500000f	t
5e2211c17a3e5a48f5000012	t
\.
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
DROP TRIGGER review_bump ON org_migration_links;
DROP FUNCTION review_bump();
ALTER SERVER om OPTIONS (DROP max_concurrent_requests);
SELECT count(*) FROM org_migration_links;

-- A malformed id matches no row "exactly as the condition checked locally
-- would" only under a deterministic collation: with a case-insensitive
-- one, an upper-case id equals the API's lower-case one.  Such a
-- comparison is not sent to the API (it was, and the upper-case id was
-- dropped as malformed: 0 rows, DELETE 0).
CREATE COLLATION review_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
\! python3 test/opsmig_sim.py ctl reset --orgs 5
\! python3 test/opsmig_sim.py ctl reset-counters
SELECT org_id, status FROM org_migration_links
 WHERE org_id = '5E2211C17A3E5A48F5000001' COLLATE review_ci;
SELECT org_id, status FROM org_migration_links
 WHERE org_id COLLATE review_ci IN ('5E2211C17A3E5A48F5000002', 'nothing');
\! python3 test/opsmig_sim.py ctl counts
-- The same comparison under the default collation names no organization.
SELECT org_id, status FROM org_migration_links WHERE org_id = '5E2211C17A3E5A48F5000001';
DELETE FROM org_migration_links WHERE org_id = '5E2211C17A3E5A48F5000001';
\echo :ROW_COUNT
DELETE FROM org_migration_links WHERE org_id = '5E2211C17A3E5A48F5000001' COLLATE review_ci;
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl links
DROP COLLATION review_ci;

-- Partitions of one table can have org_id at different positions (a
-- partition made before ATTACH with its own column order).  A DELETE
-- through the parent that goes row by row added one row identity column
-- per partition under one name: "conflicting uses of row-identity name"
-- (XX000), before any request.
\! python3 test/opsmig_sim.py ctl reset --orgs 5
CREATE TABLE review_parts (org_id text NOT NULL, org_name text, status text, link_token text)
  PARTITION BY LIST (org_id);
CREATE FOREIGN TABLE review_p1 PARTITION OF review_parts
  FOR VALUES IN ('5e2211c17a3e5a48f5000001') SERVER om;
CREATE FOREIGN TABLE review_p2 (status text, link_token text, org_name text, org_id text NOT NULL)
  SERVER om;
ALTER TABLE review_parts ATTACH PARTITION review_p2
  FOR VALUES IN ('5e2211c17a3e5a48f5000002');
\! python3 test/opsmig_sim.py ctl reset-counters
-- The id comes from an init plan, so that the executor prunes review_p1.
DELETE FROM review_parts
 WHERE status IS NOT NULL AND org_id = (SELECT '5e2211c17a3e5a48f5000002'::text);
\echo :ROW_COUNT
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
\! python3 test/opsmig_sim.py ctl links

-- DELETE ... RETURNING org_name through the parent: RETURNING names the
-- parent's columns, so the child's org_name was not read (NULL).
\! python3 test/opsmig_sim.py ctl reset-counters
DELETE FROM review_parts
 WHERE status IS NOT NULL AND org_id = (SELECT '5e2211c17a3e5a48f5000001'::text)
 RETURNING tableoid::regclass, org_id, org_name, status;
-- review_p2 has its columns in another order.
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000002 --status NOT_SYNCED
DELETE FROM review_parts r
 WHERE status IS NOT NULL AND org_id = (SELECT '5e2211c17a3e5a48f5000002'::text)
 RETURNING tableoid::regclass, r;
-- Without org_name in RETURNING, no listing.
\! python3 test/opsmig_sim.py ctl link 5e2211c17a3e5a48f5000001
DELETE FROM review_parts
 WHERE status IS NOT NULL AND org_id = (SELECT '5e2211c17a3e5a48f5000001'::text)
 RETURNING org_id, status;
\! python3 test/opsmig_sim.py ctl counts
DROP TABLE review_parts;

-- A MERGE on a partitioned table whose plan pruned the foreign partition
-- (so PostgreSQL's own "cannot execute MERGE" check does not see it) can
-- route its INSERT action there.  It is refused, as a MERGE (it was told
-- it had moved a row by UPDATE).
\! python3 test/opsmig_sim.py ctl reset --orgs 5
CREATE TABLE review_merge (org_id text NOT NULL, org_name text, status text, link_token text)
  PARTITION BY LIST (org_id);
CREATE TABLE review_merge_local PARTITION OF review_merge DEFAULT;
CREATE FOREIGN TABLE review_merge_remote PARTITION OF review_merge
  FOR VALUES IN ('5e2211c17a3e5a48f5000003') SERVER om;
\! python3 test/opsmig_sim.py ctl reset-counters
MERGE INTO review_merge m
USING (VALUES ('5e2211c17a3e5a48f5000003', 'tok')) s(id, tok)
   ON m.org_id = s.id AND m.org_id = 'local'
 WHEN NOT MATCHED THEN INSERT (org_id, link_token) VALUES (s.id, s.tok);
\echo :LAST_ERROR_SQLSTATE
-- Without the pruning, PostgreSQL refuses it itself.
MERGE INTO review_merge m
USING (VALUES ('5e2211c17a3e5a48f5000003', 'tok')) s(id, tok) ON m.org_id = s.id
 WHEN NOT MATCHED THEN INSERT (org_id, link_token) VALUES (s.id, s.tok);
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
DROP TABLE review_merge;

-- A varchar(n) status too short for the API's answer fails a statement
-- that shows it (RETURNING), not an INSERT or COPY that created the link
-- and never reads it back (they failed after the POST, so the link stayed
-- and the transaction rolled back).
\! python3 test/opsmig_sim.py ctl reset --orgs 9
CREATE FOREIGN TABLE review_short (org_id varchar(24), status varchar(5), link_token varchar)
  SERVER om;
\! python3 test/opsmig_sim.py ctl reset-counters
INSERT INTO review_short (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 't');
\echo :ROW_COUNT
COPY review_short (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f5000006	t
\.
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
-- (The rollback warning is left out: it and the error reach psql in
-- either order.  ctl links shows the link stayed.)
SET client_min_messages = error;
INSERT INTO review_short (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000009', 't')
  RETURNING org_id, status;
\echo :LAST_ERROR_SQLSTATE
RESET client_min_messages;
\! python3 test/opsmig_sim.py ctl links
DROP FOREIGN TABLE review_short;

-- An API error while COPY sends its held rows belongs to any row of the
-- batch; PostgreSQL names the batch's last line (it named only that line,
-- a row that had been created).  At the end, no line is named.  (COPY
-- FROM PROGRAM, so that psql keeps the SQLSTATE.)
\! python3 test/opsmig_sim.py ctl reset --orgs 12
ALTER SERVER om OPTIONS (ADD max_concurrent_requests '2');
SET client_min_messages = error;
COPY org_migration_links (org_id, link_token) FROM PROGRAM
  $$printf '5e2211c17a3e5a48f5000001\tdup\n5e2211c17a3e5a48f5000003\tnew\n5e2211c17a3e5a48f5000006\tnew\n'$$;
\echo :LAST_ERROR_SQLSTATE
COPY org_migration_links (org_id, link_token) FROM PROGRAM
  $$printf '5e2211c17a3e5a48f5000006\tnew\n5e2211c17a3e5a48f5000009\tnew\n5e2211c17a3e5a48f5000002\tdup\n'$$;
\echo :LAST_ERROR_SQLSTATE
RESET client_min_messages;
ALTER SERVER om OPTIONS (DROP max_concurrent_requests);
\! python3 test/opsmig_sim.py ctl links
