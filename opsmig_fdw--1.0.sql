/* opsmig_fdw--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION opsmig_fdw" to load this file. \quit

CREATE FUNCTION opsmig_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION opsmig_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER opsmig_fdw
  HANDLER opsmig_fdw_handler
  VALIDATOR opsmig_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER opsmig_fdw IS
  'MongoDB Ops Manager / Cloud Manager live-migration links (GET/POST/DELETE /orgs/{orgId}/liveExport/migrationLink)';

-- Checks that a foreign table's columns are migration link fields.
CREATE FUNCTION opsmig_fdw_check_table(regclass)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

-- The FDW validator never sees column names, so a wrong column would only
-- show at the first query; this event trigger refuses it at CREATE/ALTER.
CREATE FUNCTION opsmig_fdw_ddl_check()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cmd record;
BEGIN
  FOR cmd IN
    SELECT DISTINCT c.objid
      FROM pg_event_trigger_ddl_commands() AS c
      JOIN pg_foreign_table AS ft ON ft.ftrelid = c.objid
      JOIN pg_foreign_server AS s ON s.oid = ft.ftserver
      JOIN pg_foreign_data_wrapper AS w ON w.oid = s.srvfdw
     WHERE c.classid = 'pg_class'::regclass
       AND w.fdwhandler = '@extschema@.opsmig_fdw_handler()'::regprocedure
  LOOP
    PERFORM @extschema@.opsmig_fdw_check_table(cmd.objid::regclass);
  END LOOP;
END;
$$;

CREATE EVENT TRIGGER opsmig_fdw_ddl_check ON ddl_command_end
  WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA')
  EXECUTE FUNCTION opsmig_fdw_ddl_check();
