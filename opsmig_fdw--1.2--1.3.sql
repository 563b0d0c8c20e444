/* opsmig_fdw--1.2--1.3.sql: the stats view shows bytes_received, as EXPLAIN ANALYZE and the cluster's view do */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION opsmig_fdw UPDATE TO '1.3'" to load this file. \quit

-- The view's columns change: drop it and its function, then make both anew.
DROP VIEW opsmig_fdw_stats;
DROP FUNCTION opsmig_fdw_stats();

-- The counters come in the order of opsmig_counters.h (int64s, then doubles),
-- as in opsmig_fdw_cluster_stats().  The C function has a versioned name: a
-- backend still running an older library fails to find it rather than fill
-- these columns by its own, older order.
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
    OUT bytes_received bigint,
    OUT cache_hits bigint,
    OUT rate_limit_waits bigint,
    OUT total_ms double precision,
    OUT rate_limit_wait_ms double precision,
    OUT max_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'opsmig_fdw_stats_1_3'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;

-- This backend's API work, per server and user mapping, since it started
-- (or since opsmig_fdw_stats_reset()).  The columns of 1.2 keep their
-- places; bytes_received (the reply bytes EXPLAIN ANALYZE shows) comes last.
CREATE VIEW opsmig_fdw_stats AS
  SELECT server_name, user_mapping,
         list_requests, status_requests, create_requests, delete_requests,
         errors_401, errors_403, errors_404, errors_409, errors_429,
         errors_4xx_other, errors_5xx, errors_transport, retries,
         digest_challenges, connections_opened, cache_hits,
         total_ms, max_ms, rate_limit_waits, rate_limit_wait_ms,
         bytes_received
    FROM opsmig_fdw_stats();

COMMENT ON VIEW opsmig_fdw_stats IS
  'API requests, errors, retries, digest challenges, latency and rate-limit waits of opsmig_fdw in this backend';
