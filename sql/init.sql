--
-- init: the extension, a server on the simulator, a user mapping and the
-- imported table that the later tests share.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\! python3 test/opsmig_sim.py ctl reset --orgs 5
-- Every test session logs at DEBUG5, so that the secret scan of the server log
-- (test/run-tests.sh) sees every request, retry, auth failure and write.
SET log_min_messages = debug5;
SELECT current_database() AS regress_db \gset
ALTER DATABASE :"regress_db" SET log_min_messages = debug5;

CREATE EXTENSION opsmig_fdw;
\dx opsmig_fdw

CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');

-- IMPORT FOREIGN SCHEMA creates org_migration_links with all four columns.
CREATE SCHEMA opsmig;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om INTO opsmig;
\d+ opsmig.org_migration_links
IMPORT FOREIGN SCHEMA opsmig LIMIT TO (org_migration_links) FROM SERVER om INTO public;
SELECT relname FROM pg_class WHERE relname = 'org_migration_links' ORDER BY relnamespace::regnamespace::text;
-- EXCEPT leaves nothing to import; a schema other than opsmig does not exist.
CREATE SCHEMA empty;
IMPORT FOREIGN SCHEMA opsmig EXCEPT (org_migration_links) FROM SERVER om INTO empty;
SELECT count(*) FROM pg_class WHERE relnamespace = 'empty'::regnamespace;
IMPORT FOREIGN SCHEMA public FROM SERVER om INTO empty;
\echo :LAST_ERROR_SQLSTATE

-- For the tests that show a rate-limit error (ratelimit, review_12): its
-- SQLSTATE, message, detail with the counts and seconds masked as N (they
-- depend on timing), and hint.
CREATE FUNCTION masked_error(sql text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  state text; msg text; detail text; hint text;
BEGIN
  EXECUTE sql;
  RETURN NEXT 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
  RETURN NEXT 'SQLSTATE ' || state;
  RETURN NEXT 'ERROR:  ' || msg;
  RETURN NEXT 'DETAIL:  ' || regexp_replace(regexp_replace(detail,
    '[0-9]+ organizations? (was|were)', 'N organizations were'), '[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?', 'N', 'g');
  RETURN NEXT 'HINT:  ' || hint;
END $$;

-- The first query works end to end.
SELECT org_id, org_name, status, link_token FROM org_migration_links ORDER BY org_id;
\! python3 test/opsmig_sim.py ctl counts
