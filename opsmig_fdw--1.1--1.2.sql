/* opsmig_fdw--1.1--1.2.sql: the cluster's views; the rate limit's counters */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION opsmig_fdw UPDATE TO '1.2'" to load this file. \quit

-- ------------------------------------------------------------------
-- The cluster (shared_preload_libraries = 'opsmig_fdw'): counters of every
-- backend, the activity of running statements.  Without preloading, the
-- functions raise 55000 with a hint.
-- ------------------------------------------------------------------

-- The counters come in the order of OpsmigStats (int64s, then doubles).
CREATE FUNCTION opsmig_fdw_cluster_stats(
    OUT database text,
    OUT role text,
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
    OUT bytes_received bigint,
    OUT cache_hits bigint,
    OUT rate_limit_waits bigint,
    OUT total_ms double precision,
    OUT rate_limit_wait_ms double precision,
    OUT max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW opsmig_fdw_cluster_stats AS
  SELECT database, role, server_name, user_mapping,
         list_requests, status_requests, create_requests, delete_requests,
         errors_401, errors_403, errors_404, errors_409, errors_429,
         errors_4xx_other, errors_5xx, errors_transport, retries,
         digest_challenges, connections_opened, cache_hits, bytes_received,
         total_ms, max_ms, rate_limit_waits, rate_limit_wait_ms
    FROM opsmig_fdw_cluster_stats();

COMMENT ON VIEW opsmig_fdw_cluster_stats IS
  'API work of opsmig_fdw summed over every backend of the cluster, per database, role, server and user mapping (needs shared_preload_libraries)';

CREATE FUNCTION opsmig_fdw_cluster_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION opsmig_fdw_cluster_stats_reset() FROM PUBLIC;

CREATE FUNCTION opsmig_fdw_activity(
    OUT pid integer,
    OUT database text,
    OUT role text,
    OUT server_name text,
    OUT phase text,
    OUT requests_done bigint,
    OUT requests_planned bigint,
    OUT in_flight integer,
    OUT waiting_until timestamptz,
    OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

CREATE VIEW opsmig_fdw_activity AS SELECT * FROM opsmig_fdw_activity();

COMMENT ON VIEW opsmig_fdw_activity IS
  'One row per backend running an opsmig_fdw statement: what it does and how far it is (needs shared_preload_libraries)';

-- Everyone may look: the functions show other roles' rows only to
-- superusers and members of pg_read_all_stats, as pg_stat_activity does.
GRANT SELECT ON opsmig_fdw_cluster_stats, opsmig_fdw_activity TO PUBLIC;

-- ------------------------------------------------------------------
-- The API's rate limit (ratelimit.c): how often and how long requests
-- were held back, in this backend's view.
-- ------------------------------------------------------------------

-- The view's columns change: drop it and its function, then make both anew.
DROP VIEW opsmig_fdw_stats;
DROP FUNCTION opsmig_fdw_stats();

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
    OUT max_ms double precision,
    OUT rate_limit_waits bigint,
    OUT rate_limit_wait_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- This backend's API work, per server and user mapping, since it started
-- (or since opsmig_fdw_stats_reset()).  errors_429 counts the replies of the
-- API's rate limit; rate_limit_waits and rate_limit_wait_ms how often and how
-- long requests were held back to stay within it.
CREATE VIEW opsmig_fdw_stats AS SELECT * FROM opsmig_fdw_stats();

COMMENT ON VIEW opsmig_fdw_stats IS
  'API requests, errors, retries, digest challenges, latency and rate-limit waits of opsmig_fdw in this backend';
