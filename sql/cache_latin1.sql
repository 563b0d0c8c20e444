--
-- cache_latin1: in a LATIN1 database an organization name with non-ASCII
-- characters is converted from the API's UTF-8 once, whether the listing
-- comes from the API or from the cache_ttl cache.
--
\getenv sim_url SIM_URL
\getenv private_key SIM_PRIVATE_KEY
\set base_url :sim_url/api/public/v1.0
\! python3 test/opsmig_sim.py ctl reset --orgs 3
\! python3 test/opsmig_sim.py ctl rename 5e2211c17a3e5a48f5000001 Société
SELECT current_database() AS regress_db \gset
CREATE DATABASE opsmig_latin1 ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c opsmig_latin1
SET client_encoding = 'UTF8';
CREATE EXTENSION opsmig_fdw;
CREATE SERVER om FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url :'base_url', cache_ttl '60');
CREATE USER MAPPING FOR CURRENT_USER SERVER om
  OPTIONS (public_key 'opsmigtest', private_key :'private_key');
CREATE FOREIGN TABLE links (org_id text, org_name text, status text) SERVER om;
\! python3 test/opsmig_sim.py ctl reset-counters
-- From the API, then from the cache: the same name, one list request.
SELECT org_id, org_name, length(org_name) AS chars, octet_length(org_name) AS latin1_bytes
  FROM links ORDER BY org_id;
SELECT org_id, org_name, length(org_name) AS chars, octet_length(org_name) AS latin1_bytes
  FROM links ORDER BY org_id;
SELECT org_name FROM links WHERE org_id = '5e2211c17a3e5a48f5000001';
\! python3 test/opsmig_sim.py ctl counts
\c :regress_db
DROP DATABASE opsmig_latin1;
\! python3 test/opsmig_sim.py ctl reset --orgs 5
