--
-- review_9a: defects an adversarial review of COPY FROM, partition
-- routing and the malformed-id change found; each part failed before
-- its fix.
--

-- A row trigger can ALTER the server while a COPY runs; the connection is
-- then rebuilt with the new max_concurrent_requests.  The rows COPY holds
-- keep the batch size they started with (the held array was indexed by
-- the new, larger size: a write past its end and a crashed backend).
\! python3 test/opsmig_sim.py ctl reset --orgs 40
ALTER SERVER om OPTIONS (ADD max_concurrent_requests '2');
CREATE FUNCTION review_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.link_token = 'bump' THEN
    ALTER SERVER om OPTIONS (SET max_concurrent_requests '16');
    PERFORM count(*) FROM org_migration_links WHERE org_id = '5e2211c17a3e5a48f5000001';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER review_bump BEFORE INSERT ON org_migration_links
  FOR EACH ROW EXECUTE FUNCTION review_bump();
\! python3 test/opsmig_sim.py ctl reset-counters
COPY org_migration_links (org_id, link_token) FROM STDIN;
5e2211c17a3e5a48f5000003	bump
5e2211c17a3e5a48f5000006	t
5e2211c17a3e5a48f5000009	t
5e2211c17a3e5a48f500000c	t
5e2211c17a3e5a48f500000f	t
5e2211c17a3e5a48f5000012	t
\.
\echo :ROW_COUNT
\! python3 test/opsmig_sim.py ctl counts
DROP TRIGGER review_bump ON org_migration_links;
DROP FUNCTION review_bump();
ALTER SERVER om OPTIONS (DROP max_concurrent_requests);
SELECT count(*) FROM org_migration_links;
