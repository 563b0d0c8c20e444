--
-- upgrade: version 1.0 installs alone, and ALTER EXTENSION UPDATE brings it
-- to 1.1 (the stats view and comments on imported tables), then to 1.2 (the
-- rate limit's counters in the stats view).
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
ALTER EXTENSION opsmig_fdw UPDATE;
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
