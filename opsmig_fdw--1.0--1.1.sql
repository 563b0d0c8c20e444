/* opsmig_fdw--1.0--1.1.sql: counters of the API work, and comments on imported tables */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION opsmig_fdw UPDATE TO '1.1'" to load this file. \quit

CREATE FUNCTION opsmig_fdw_stats(
    OUT server_name text,
    OUT user_mapping oid,
    OUT list_requests bigint,
    OUT status_requests bigint,
    OUT create_requests bigint,
    OUT delete_requests bigint,
    OUT errors_401 bigint,
    OUT errors_403 bigint,
    OUT errors_404 bigint,
    OUT errors_409 bigint,
    OUT errors_429 bigint,
    OUT errors_4xx_other bigint,
    OUT errors_5xx bigint,
    OUT errors_transport bigint,
    OUT retries bigint,
    OUT digest_challenges bigint,
    OUT connections_opened bigint,
    OUT cache_hits bigint,
    OUT total_ms double precision,
    OUT max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- This backend's API work, per server and user mapping, since it started
-- (or since opsmig_fdw_stats_reset()).
CREATE VIEW opsmig_fdw_stats AS SELECT * FROM opsmig_fdw_stats();

COMMENT ON VIEW opsmig_fdw_stats IS
  'API requests, errors, retries, digest challenges and latency of opsmig_fdw in this backend';

CREATE FUNCTION opsmig_fdw_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- Same checks as 1.0, plus comments on the tables IMPORT FOREIGN SCHEMA makes,
-- so \d+ explains each column.
CREATE OR REPLACE FUNCTION opsmig_fdw_ddl_check()
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
    IF TG_TAG = 'IMPORT FOREIGN SCHEMA' THEN
      EXECUTE format('COMMENT ON FOREIGN TABLE %s IS %L', cmd.objid::regclass,
        'Live-migration links of Ops Manager organizations: one row per organization with a link (opsmig_fdw)');
      EXECUTE format('COMMENT ON COLUMN %s.org_id IS %L', cmd.objid::regclass,
        'Source organization id: 24 lower-case hex characters; org_id = ..., IN and joins are sent to the API');
      EXECUTE format('COMMENT ON COLUMN %s.org_name IS %L', cmd.objid::regclass,
        'Organization name, from GET /orgs (selecting it costs the organization listing)');
      EXECUTE format('COMMENT ON COLUMN %s.status IS %L', cmd.objid::regclass,
        'Link status from the API, e.g. SYNCED or NOT_SYNCED; read-only');
      EXECUTE format('COMMENT ON COLUMN %s.link_token IS %L', cmd.objid::regclass,
        'Link token generated in Atlas: write-only, sent by INSERT, reads back as NULL');
    END IF;
  END LOOP;
END;
$$;
