--
-- options: every option is checked at CREATE/ALTER time, with a hint.
--
\set VERBOSITY default
-- base_url is required, http(s) only, without credentials, query or fragment.
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw;
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'ftp://om.example.com/api/public/v1.0');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'om.example.com/api');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://user:secret@om.example.com/api/public/v1.0');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0?pretty=true');
\echo :LAST_ERROR_SQLSTATE
-- Secrets are refused anywhere but in a user mapping; unknown options list the valid ones.
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', private_key 'x');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', public_key 'x');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', timeout '5');
\echo :LAST_ERROR_SQLSTATE
-- Numbers and booleans are range-checked.
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', connect_timeout '0');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', request_timeout 'soon');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', max_concurrent_requests '65');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER bad FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', envelope 'maybe');
\echo :LAST_ERROR_SQLSTATE
-- A good server; ALTER is validated the same way, on the options as they will be.
CREATE SERVER good FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'https://om.example.com:8443/api/public/v1.0/', connect_timeout '2.5',
           request_timeout '20', envelope 'false', max_concurrent_requests '16');
ALTER SERVER good OPTIONS (DROP base_url);
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER good OPTIONS (SET request_timeout '-1');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER good OPTIONS (ADD max_retries '2');
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'good';
-- What psql shows a DBA: the server's options (no secret lives there).
\des+ good

-- User mappings need both keys and nothing else.
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (public_key 'abc');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (public_key 'abc', private_key 'k', password 'p');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (public_key 'abc', private_key 'k', base_url 'https://x/');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (public_key 'abc', private_key '');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (public_key 'abc', private_key 'k');
ALTER USER MAPPING FOR CURRENT_USER SERVER good OPTIONS (DROP private_key);
\echo :LAST_ERROR_SQLSTATE

-- Only superusers may change TLS and proxy settings.
CREATE ROLE opsmig_owner;
GRANT USAGE ON FOREIGN DATA WRAPPER opsmig_fdw TO opsmig_owner;
SET ROLE opsmig_owner;
CREATE SERVER mine FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0', ssl_verify 'false');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER mine FOREIGN DATA WRAPPER opsmig_fdw OPTIONS (base_url 'https://om.example.com/api/public/v1.0');
RESET ROLE;
ALTER SERVER mine OPTIONS (ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
DROP SERVER mine;
REVOKE USAGE ON FOREIGN DATA WRAPPER opsmig_fdw FROM opsmig_owner;
DROP ROLE opsmig_owner;

-- Foreign tables: only the four fields, as text, each once; no table options.
CREATE FOREIGN TABLE ft_bad1 (org_id text, foo text) SERVER good;
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE ft_bad2 (org_id integer) SERVER good;
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE ft_bad3 (org_id text, id text OPTIONS (column_name 'org_id')) SERVER good;
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE ft_bad4 (org_id text) SERVER good OPTIONS (cache 'on');
\echo :LAST_ERROR_SQLSTATE
CREATE FOREIGN TABLE ft_ok (id varchar OPTIONS (column_name 'org_id'), status text) SERVER good;
ALTER FOREIGN TABLE ft_ok ADD COLUMN note text;
\echo :LAST_ERROR_SQLSTATE
ALTER FOREIGN TABLE ft_ok ADD COLUMN link_token text;
\d ft_ok
DROP SERVER good CASCADE;
