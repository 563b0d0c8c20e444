--
-- review_9c: the review of the issue 9 transport change.  A create or
-- delete batch that meets an error settles what is in flight but sends
-- nothing more; a gateway that gave up on the API is a reply that did
-- not come.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\! python3 test/opsmig_sim.py ctl reset --orgs 5
CREATE SERVER om_r9c FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', max_concurrent_requests '1', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_r9c
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_r9c (org_id text, status text, link_token text) SERVER om_r9c;

-- One DELETE at a time; the first answers 409.  The statement fails, so
-- the other three links must not be deleted: one DELETE is sent, not four,
-- and no link is gone (no rollback warning).
\! python3 test/opsmig_sim.py ctl running 5e2211c17a3e5a48f5000001
\! python3 test/opsmig_sim.py ctl reset-counters
DELETE FROM links_r9c
 WHERE org_id IN ('5e2211c17a3e5a48f5000001', '5e2211c17a3e5a48f5000002',
                  '5e2211c17a3e5a48f5000004', '5e2211c17a3e5a48f5000005');
\echo :LAST_ERROR_SQLSTATE
\! python3 test/opsmig_sim.py ctl counts | grep -o 'delete=[0-9]*'
\! python3 test/opsmig_sim.py ctl links
\! python3 test/opsmig_sim.py ctl running 5e2211c17a3e5a48f5000001 --off

-- A proxy in front of the API gives up waiting (504) after the API acted:
-- the error reports the 504, and the rollback warning says the link may
-- have been created (or deleted), as when no reply came at all.
\! python3 test/opsmig_sim.py ctl reset --orgs 5
-- (Caught in a block, so the warning comes at the subtransaction's end,
-- before the notice: the client sees them in a fixed order.)
\! python3 test/opsmig_sim.py ctl fault gateway_timeout --on create
DO $$
DECLARE d text;
BEGIN
  INSERT INTO links_r9c (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000003', 'tok');
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: % (%)', SQLSTATE, SQLERRM, d;
END $$;
\! python3 test/opsmig_sim.py ctl fault gateway_timeout --on delete
DO $$
DECLARE d text;
BEGIN
  DELETE FROM links_r9c WHERE org_id = '5e2211c17a3e5a48f5000001';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
  RAISE NOTICE 'caught %: % (%)', SQLSTATE, SQLERRM, d;
END $$;
\! python3 test/opsmig_sim.py ctl links
