--
-- cluster_unloaded: without shared_preload_libraries the cluster-wide views
-- say what to add to postgresql.conf (55000), and the per-backend counters
-- and cache work as before.  test/checks/cluster.sh covers the preloaded case.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 5
SELECT * FROM opsmig_fdw_cluster_stats;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM opsmig_fdw_activity;
\echo :LAST_ERROR_SQLSTATE
SELECT opsmig_fdw_cluster_stats_reset();
\echo :LAST_ERROR_SQLSTATE
SHOW opsmig_fdw.shared_cache_size;
\echo :LAST_ERROR_SQLSTATE
-- Anyone may query the views; only the owner may reset the cluster's counters.
CREATE ROLE opsmig_cluster_reader;
SET ROLE opsmig_cluster_reader;
SELECT count(*) FROM opsmig_fdw_activity;
\echo :LAST_ERROR_SQLSTATE
SELECT opsmig_fdw_cluster_stats_reset();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE opsmig_cluster_reader;
-- The backend-local counters still count this backend's work.
SELECT opsmig_fdw_stats_reset();
SELECT count(*) FROM org_migration_links;
SELECT server_name, list_requests, status_requests FROM opsmig_fdw_stats WHERE server_name = 'om';
