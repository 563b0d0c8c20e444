--
-- security: the private key is in no message, hint, EXPLAIN or log line,
-- even at DEBUG5; other users cannot read it.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\getenv wrong_key SIM_WRONG_PRIVATE_KEY
\! python3 test/opsmig_sim.py ctl reset --orgs 5
SET log_min_messages = debug5;
SET client_min_messages = warning;
-- A normal scan, an error after digest auth, a failing create: all logged at DEBUG5.
SELECT count(*) FROM org_migration_links;
EXPLAIN (VERBOSE, ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT * FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
ALTER USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (SET private_key :'wrong_key');
SELECT count(*) FROM org_migration_links;
\echo :LAST_ERROR_SQLSTATE
ALTER USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (SET private_key :'private_key');
INSERT INTO org_migration_links (org_id, link_token) VALUES ('5e2211c17a3e5a48f5000001', 'x');
\echo :LAST_ERROR_SQLSTATE
RESET log_min_messages;
RESET client_min_messages;
-- The server log has DEBUG lines of this session, and no private key.
\! grep -c 'opsmig_fdw: new HTTP session' "$PGHOST/data/postgres.log" | sed 's/^[1-9][0-9]*$/some/'
\! grep -c -e "$SIM_PRIVATE_KEY" -e "$SIM_WRONG_PRIVATE_KEY" -e "$SIM_WEAK_PRIVATE_KEY" "$PGHOST/data/postgres.log"

-- A non-superuser sees no other user's keys; its own mapping needs both keys.
CREATE ROLE opsmig_reader LOGIN;
GRANT USAGE ON FOREIGN SERVER om TO opsmig_reader;
SET ROLE opsmig_reader;
SELECT srvname, umoptions FROM pg_user_mappings WHERE srvname = 'om';
\deu+ om
CREATE USER MAPPING FOR CURRENT_USER SERVER om OPTIONS (public_key 'opsmigtest');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE USAGE ON FOREIGN SERVER om FROM opsmig_reader;
DROP ROLE opsmig_reader;
