--
-- transport: what the API client must not misread.  A base_url that does
-- not lead to the API is an error, never "no link"; a DELETE or INSERT
-- that fails or is cancelled part way still lists in the rollback warning
-- every link the API changed (or may have); a listing whose pages shift
-- gives each organization once; a create reply without "status" (the
-- OpenAPI shape) is a success; a POST whose reply is lost is not resent.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set org1 '5e2211c17a3e5a48f5000001'
\set org2 '5e2211c17a3e5a48f5000002'
\set org3 '5e2211c17a3e5a48f5000003'
\set org4 '5e2211c17a3e5a48f5000004'
\set org5 '5e2211c17a3e5a48f5000005'
\! python3 test/opsmig_sim.py ctl reset --orgs 5

-- A base_url with the wrong path: the web server in front of the API
-- answers an HTML 404.  That is a configuration error naming base_url
-- (08001), not "no link": no 0 rows, no DELETE 0.
\set wrong_url :sim_url/api/public/v2.0
CREATE SERVER om_wrongpath FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'wrong_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_wrongpath
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_wrongpath (org_id text, status text) SERVER om_wrongpath;
SELECT * FROM links_wrongpath WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM links_wrongpath WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM links_wrongpath;
\echo :LAST_ERROR_SQLSTATE
-- A path below the API whose listing answers the API's own 404: the
-- organizations listing always exists, so that too is base_url.
\set deep_url :sim_url/api/public/v1.0/groups
ALTER SERVER om_wrongpath OPTIONS (SET base_url :'deep_url');
SELECT count(*) FROM links_wrongpath;
\echo :LAST_ERROR_SQLSTATE
-- A proxy's HTML 404 in front of the right base_url: the same.
\! python3 test/opsmig_sim.py ctl fault http --on status --code 404 --body html
SELECT * FROM org_migration_links WHERE org_id = :'org1';
\echo :LAST_ERROR_SQLSTATE
-- The API's own 404 (its JSON error document) is still "no link".
SELECT * FROM org_migration_links WHERE org_id = :'org3';
DELETE FROM org_migration_links WHERE org_id = :'org3';
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl links
DROP SERVER om_wrongpath CASCADE;

-- A multi-row DELETE where one organization answers 409: the error comes
-- once every DELETE of the batch is settled, and the rollback warning
-- lists the links the API removed, including those whose reply came last.
\! python3 test/opsmig_sim.py ctl running 5e2211c17a3e5a48f5000002
\! python3 test/opsmig_sim.py ctl fault slow --on delete --org 5e2211c17a3e5a48f5000001 --seconds 0.4
\! python3 test/opsmig_sim.py ctl fault slow --on delete --org 5e2211c17a3e5a48f5000004 --seconds 0.8
-- (Caught in a block, so the warning comes at the subtransaction's end,
-- before the notice: the client sees them in a fixed order.)
DO $$
DECLARE d text;
BEGIN
  DELETE FROM org_migration_links
   WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002', '5e2211c17a3e5a48f5000004');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: % (%)', SQLSTATE, SQLERRM, d;
END $$;
\! python3 test/opsmig_sim.py ctl links
\! python3 test/opsmig_sim.py ctl running 5e2211c17a3e5a48f5000002 --off

-- A multi-row INSERT ended by statement_timeout while one POST is in
-- flight: the links created are listed as created, the one in flight as
-- one that may have been created (here it was).
\! python3 test/opsmig_sim.py ctl fault slow --on create --org 5e2211c17a3e5a48f5000003 --seconds 0.3
\! python3 test/opsmig_sim.py ctl fault slow --on create --org 5e2211c17a3e5a48f5000004 --seconds 5
SET statement_timeout = '1s';
DO $$
BEGIN
  INSERT INTO org_migration_links (org_id, link_token)
    VALUES ('5e2211c17a3e5a48f5000001', 'tok'), ('5e2211c17a3e5a48f5000003', 'tok'),
           ('5e2211c17a3e5a48f5000004', 'tok');
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'caught %: %', SQLSTATE, SQLERRM;
END $$;
RESET statement_timeout;
\! python3 test/opsmig_sim.py ctl links

-- A POST whose reply is lost after the API applied it.  It went on a new
-- connection, so libcurl did not send it again (which would have met 409
-- and told the user the link already existed): the error says the
-- connection failed, and the warning that the link may have been created.
\! python3 test/opsmig_sim.py ctl reset --orgs 5
SELECT status FROM org_migration_links WHERE org_id = :'org1';
\! python3 test/opsmig_sim.py ctl fault lost_reply --on create --org 5e2211c17a3e5a48f5000003
DO $$
DECLARE d text;
BEGIN
  INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: % (%)', SQLSTATE, SQLERRM, d;
END $$;
\! python3 test/opsmig_sim.py ctl counts | grep -o 'create=[0-9]*'
\! python3 test/opsmig_sim.py ctl links

-- A create answered with the OpenAPI description's shape (no "status"),
-- as 200 and as 201: the link is created, RETURNING status is NULL (the
-- reply did not say it), and no error.
\! python3 test/opsmig_sim.py ctl reset --orgs 5
\! python3 test/opsmig_sim.py ctl fault openapi_reply --on create --code 200
INSERT INTO org_migration_links (org_id, link_token) VALUES (:'org3', 'tok')
  RETURNING org_id, status, status IS NULL AS status_is_null;
\! python3 test/opsmig_sim.py ctl unlink 5e2211c17a3e5a48f5000003
\! python3 test/opsmig_sim.py ctl fault openapi_reply --on create --code 201
INSERT INTO org_migration_links (org_id, link_token) VALUES (:'org3', 'tok');
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl links

-- A listing whose pages shift (an organization is created while we page):
-- each organization comes once, and its status is asked once.
\! python3 test/opsmig_sim.py ctl reset --orgs 600
\! python3 test/opsmig_sim.py ctl fault grow --on list
SELECT count(*) AS links, count(DISTINCT org_id) AS distinct_orgs FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts | grep -o 'list=[0-9]* status=[0-9]*'
\! python3 test/opsmig_sim.py ctl reset --orgs 5
