--
-- upgrade: version 1.0 installs alone, and ALTER EXTENSION UPDATE brings it
-- to 1.1 (the stats view and comments on imported tables), then to 1.2 (the
-- rate limit's counters in the stats view), then to 1.3 (bytes_received in
-- the stats view).
--
SET client_min_messages = warning;
DROP EXTENSION opsmig_fdw CASCADE;
RESET client_min_messages;
CREATE EXTENSION opsmig_fdw VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'opsmig_fdw';
SELECT count(*) FROM pg_proc WHERE proname = 'opsmig_fdw_stats';
-- At 1.1 the view has its 20 columns, and works with this library.
ALTER EXTENSION opsmig_fdw UPDATE TO '1.1';
SELECT count(*) FROM pg_attribute WHERE attrelid = 'opsmig_fdw_stats'::regclass AND attnum > 0;
SELECT count(*) FROM opsmig_fdw_stats;
-- At 1.2 the view has 22 columns, in another order than 1.3's function: this
-- library fills each by its name (filled by position, cache_hits would show
-- bytes_received, and total_ms an integer's bits).
ALTER EXTENSION opsmig_fdw UPDATE TO '1.2';
SELECT count(*) FROM pg_attribute WHERE attrelid = 'opsmig_fdw_stats'::regclass AND attnum > 0;
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\! python3 test/opsmig_sim.py ctl reset --orgs 3
CREATE SERVER om_12 FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url :'base_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER om_12
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links_12 (org_id text, status text) SERVER om_12;
SELECT count(*) FROM links_12;
SELECT list_requests, status_requests, errors_404, retries, cache_hits,
       total_ms > 0 AND total_ms < 600000 AS total_ms_sane, max_ms <= total_ms AS max_ms_sane,
       rate_limit_waits, rate_limit_wait_ms
  FROM opsmig_fdw_stats WHERE server_name = 'om_12';
ALTER EXTENSION opsmig_fdw UPDATE;
-- At 1.3: the columns of 1.2 in their places, then bytes_received.
SELECT count(*) FROM pg_attribute WHERE attrelid = 'opsmig_fdw_stats'::regclass AND attnum > 0;
SELECT attnum, attname FROM pg_attribute
 WHERE attrelid = 'opsmig_fdw_stats'::regclass AND attnum > 16 ORDER BY attnum;
SELECT list_requests, status_requests, cache_hits, total_ms > 0 AS timed,
       bytes_received > 0 AS bytes_counted
  FROM opsmig_fdw_stats WHERE server_name = 'om_12';
DROP SERVER om_12 CASCADE;
SELECT extversion FROM pg_extension WHERE extname = 'opsmig_fdw';
\dx+ opsmig_fdw
-- The updated event trigger comments what IMPORT FOREIGN SCHEMA creates.
CREATE SERVER om_up FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0');
CREATE SCHEMA up;
IMPORT FOREIGN SCHEMA opsmig FROM SERVER om_up INTO up;
\d+ up.org_migration_links
SELECT obj_description('up.org_migration_links'::regclass, 'pg_class');
SELECT * FROM opsmig_fdw_stats;
DROP SCHEMA up CASCADE;
DROP SERVER om_up;
