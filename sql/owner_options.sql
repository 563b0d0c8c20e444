--
-- owner_options: what a server's owner who is not a superuser may change.
-- ssl_verify, ca_file and proxy only a superuser may set, change or drop;
-- the other options the owner changes freely, whatever a superuser set.
--
CREATE ROLE opsmig_srv_owner;
GRANT USAGE ON FOREIGN DATA WRAPPER opsmig_fdw TO opsmig_srv_owner;
SET ROLE opsmig_srv_owner;
CREATE SERVER owned FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'https://om.example.com/api/public/v1.0');
CREATE SERVER owned2 FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'https://om.example.com/api/public/v1.0', proxy 'http://proxy.example.com:3128');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER SERVER owned OPTIONS (ADD proxy 'http://proxy.example.com:3128', ADD ssl_verify 'true',
                            ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
SET ROLE opsmig_srv_owner;
-- The owner's own options: allowed, with the superuser's ones in place.
ALTER SERVER owned OPTIONS (ADD max_retries '2', SET base_url 'https://om2.example.com/api/public/v1.0');
-- The superuser's ones: neither dropped, changed nor added.
ALTER SERVER owned OPTIONS (DROP proxy);
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (DROP ca_file);
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (SET ssl_verify 'false');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (SET proxy 'http://elsewhere.example.com:3128', SET max_retries '3');
\echo :LAST_ERROR_SQLSTATE
-- Setting one to the value it has is no change.
ALTER SERVER owned OPTIONS (SET proxy 'http://proxy.example.com:3128', SET max_retries '4');
RESET ROLE;
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'owned';
ALTER SERVER owned OPTIONS (DROP proxy, DROP ca_file);
SET ROLE opsmig_srv_owner;
ALTER SERVER owned OPTIONS (ADD proxy 'http://proxy.example.com:3128');
\echo :LAST_ERROR_SQLSTATE
ALTER SERVER owned OPTIONS (DROP ssl_verify);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'owned';
DROP SERVER owned;
REVOKE USAGE ON FOREIGN DATA WRAPPER opsmig_fdw FROM opsmig_srv_owner;
DROP ROLE opsmig_srv_owner;

-- max_response_bytes stops below what one allocation can hold (1 GB - 1).
CREATE SERVER big FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'https://om.example.com/api/public/v1.0', max_response_bytes '1073741824');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER big FOREIGN DATA WRAPPER opsmig_fdw
  OPTIONS (base_url 'https://om.example.com/api/public/v1.0', max_response_bytes '1073741822');
ALTER SERVER big OPTIONS (SET max_response_bytes '1073741823');
\echo :LAST_ERROR_SQLSTATE
DROP SERVER big;
