--
-- paging: GET /orgs is walked page by page (500 a page) until a short page.
--
\! python3 test/opsmig_sim.py ctl reset --orgs 1201
-- Orgs i with i % 3 <> 0 have a link: 1201 - 400 = 801 rows.
SELECT count(*) AS links, count(DISTINCT org_id) AS orgs, min(org_name), max(org_name)
  FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
-- Exactly 500 organizations: a full first page says there is no next one.
\! python3 test/opsmig_sim.py ctl reset --orgs 500
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
-- No organizations at all.
\! python3 test/opsmig_sim.py ctl reset --orgs 0
SELECT count(*) FROM org_migration_links;
\! python3 test/opsmig_sim.py ctl counts
