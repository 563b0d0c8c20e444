--
-- envelope: with envelope 'true' every request adds envelope=true, the API
-- answers HTTP 200 and the real status is read from the envelope.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
ALTER SERVER om OPTIONS (ADD envelope 'true', ADD max_retries '0');
SELECT org_id, org_name, status FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
-- A 404 inside the envelope is still "no link".
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok') RETURNING status;
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT
DELETE FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000003';
\echo :ROW_COUNT
-- Errors inside the envelope keep their code and detail.
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 'tok');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl fault http --on status --code 403
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
-- What a proxy says in front of the API is plain HTTP, not an envelope.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 502 --body html
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
-- A 200 that is not an envelope is refused.
\! python3 test/opsmig_sim.py ctl fault garbage --on status
SELECT org_id, status FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts
ALTER SERVER om OPTIONS (DROP envelope, DROP max_retries);
