/*-------------------------------------------------------------------------
 *
 * api_scan.c
 *		  The scan of migration links: the organizations listing page by
 *		  page, a status request per organization, up to
 *		  max_concurrent_requests in flight, so a scan of N organizations
 *		  costs about (pages + N / C) round trips; answers from and to the
 *		  cache_ttl cache; organization names converted only for rows that
 *		  show them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/hsearch.h"

#include "api_int.h"
#include "cache.h"

/* A listing longer than this is not an organization list. */
#define MAX_PAGES			10000

typedef struct OrgName
{
	char		org_id[OPSMIG_ORG_ID_LEN + 1];	/* hash key */
	char	   *name;
} OrgName;

struct OpsmigScan
{
	OpsmigConn *conn;
	ApiBatch   *batch;
	MemoryContext cxt;
	bool		list_all;		/* status of every listed organization */
	bool		need_names;		/* org_name is wanted */
	bool		listing;		/* pages are (still) being fetched */
	HTAB	   *names;			/* org_id -> name, for an id list with names */
	HTAB	   *seen;			/* org ids listed so far (pages may shift) */
	List	   *rows;			/* OpsmigLink rows ready to return */
	int			next_row;		/* the next of them to return */
	int			ttl_ms;			/* cache_ttl; 0: no cache */
	uint64		cache_gen;		/* cache generation when the scan began */
	CachedOrg  *listed;			/* the listing so far, for the cache */
	int			nlisted;
	int			listed_cap;
};

static void api_scan_org(OpsmigScan *scan, const char *id, char *name);
static void api_scan_want_status(OpsmigScan *scan, const char *org_id, char *org_name);

OpsmigScan *
api_scan_begin(OpsmigConn *conn, List *org_ids, bool list_all, bool need_names,
			   int cache_ttl_ms, OpsmigStats *work)
{
	OpsmigScan *scan = palloc0(sizeof(OpsmigScan));
	ListCell   *lc;

	scan->conn = conn;
	scan->cxt = CurrentMemoryContext;
	scan->list_all = list_all;
	scan->need_names = need_names;
	scan->ttl_ms = cache_ttl_ms;
	scan->cache_gen = cache_ttl_ms > 0 ? cache_generation(conn) : 0;
	scan->batch = api_batch_create(conn, work);

	if (need_names && !list_all)
	{
		HASHCTL		ctl;

		ctl.keysize = OPSMIG_ORG_ID_LEN + 1;
		ctl.entrysize = sizeof(OrgName);
		ctl.hcxt = CurrentMemoryContext;
		scan->names = hash_create("opsmig_fdw organization names", 256, &ctl,
								  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	if (list_all || need_names)
	{
		HASHCTL		ctl;
		int			ncached;
		CachedOrg  *cached = cache_get_listing(conn, cache_ttl_ms, &ncached);
		int			i;

		ctl.keysize = OPSMIG_ORG_ID_LEN + 1;
		ctl.entrysize = OPSMIG_ORG_ID_LEN + 1;
		ctl.hcxt = CurrentMemoryContext;
		scan->seen = hash_create("opsmig_fdw listed organizations", 256, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		if (cached)
		{
			for (i = 0; i < ncached; i++)
				api_scan_org(scan, cached[i].org_id,
							 cached[i].name ? pstrdup(cached[i].name) : NULL);
		}
		else
		{
			scan->listing = true;
			http_batch_add(scan->batch->http, api_request(conn, OPSMIG_REQ_LIST, NULL, 1), true);
		}
	}
	if (!list_all)
	{
		foreach(lc, org_ids)
			api_scan_want_status(scan, (char *) lfirst(lc), NULL);
	}
	return scan;
}

/* A row is ready: queue it for api_scan_next. */
static void
api_scan_row(OpsmigScan *scan, const char *org_id, char *org_name, char *status)
{
	OpsmigLink *link = palloc(sizeof(OpsmigLink));

	link->org_id = pstrdup(org_id);
	link->org_name = org_name;
	link->status = status;
	scan->rows = lappend(scan->rows, link);
}

/* The status of this organization is wanted: from the cache, or asked. */
static void
api_scan_want_status(OpsmigScan *scan, const char *org_id, char *org_name)
{
	bool		linked;
	char	   *status;
	HttpRequest *req;

	if (cache_get_status(scan->conn, org_id, scan->ttl_ms, &linked, &status))
	{
		if (scan->batch->work)
			scan->batch->work->cache_hits++;
		if (linked)
			api_scan_row(scan, org_id, org_name, pstrdup(status));
		return;
	}
	req = api_request(scan->conn, OPSMIG_REQ_STATUS, org_id, 0);
	((ApiCall *) req->arg)->org_name = org_name;
	http_batch_add(scan->batch->http, req, false);
}

/*
 * One organization of the listing (from a page, or from the cache), its
 * name a palloc'd UTF-8 string (kept even when this scan does not show
 * it, as the cached listing serves scans that do), or NULL.
 */
static void
api_scan_org(OpsmigScan *scan, const char *id, char *name)
{
	bool		found;

	/*
	 * Organizations created while we page through the listing shift the
	 * later pages, so an organization can come twice: it is one row.
	 */
	hash_search(scan->seen, id, HASH_ENTER, &found);
	if (found)
		return;
	if (scan->names)
	{
		OrgName    *entry = hash_search(scan->names, id, HASH_ENTER, NULL);

		entry->name = name;
	}
	if (scan->list_all)
		api_scan_want_status(scan, id, name);
	if (scan->ttl_ms > 0 && scan->listing)
	{
		if (scan->nlisted >= scan->listed_cap)
		{
			scan->listed_cap = Max(64, scan->listed_cap * 2);
			scan->listed = scan->listed ?
				repalloc(scan->listed, sizeof(CachedOrg) * scan->listed_cap) :
				palloc(sizeof(CachedOrg) * scan->listed_cap);
		}
		strlcpy(scan->listed[scan->nlisted].org_id, id, sizeof(scan->listed[0].org_id));
		scan->listed[scan->nlisted++].name = name;
	}
}

static void
api_name_context(void *arg)
{
	errcontext("converting the name of organization %s", (const char *) arg);
}

/*
 * The name of a row's organization, converted from the API's UTF-8 to the
 * database encoding.  Names are kept in UTF-8 until a row shows one: a
 * name the encoding cannot hold (Japanese in a LATIN1 database) fails only
 * a query that shows it, not every scan that lists the organizations.
 */
static char *
api_org_name(const char *org_id, char *utf8)
{
	ErrorContextCallback cb;
	char	   *conv;

	cb.callback = api_name_context;
	cb.arg = unconstify(char *, org_id);
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	conv = pg_any_to_server(utf8, strlen(utf8), PG_UTF8);
	error_context_stack = cb.previous;
	return conv;
}

static void
api_scan_page_org(const char *id, const char *name, void *arg)
{
	api_scan_org((OpsmigScan *) arg, id, name ? pstrdup(name) : NULL);
}

static void
api_scan_page(OpsmigScan *scan, HttpRequest *req, OpsmigReply *reply)
{
	ApiCall    *call = (ApiCall *) req->arg;
	int			nresults = 0;
	bool		has_next = false;
	char		why[160];
	OpsmigParseResult pr;

	PG_TRY();
	{
		pr = parse_reply_orgs(reply, api_scan_page_org, scan, &nresults,
							  &has_next, why, sizeof(why));
	}
	PG_FINALLY();
	{
		parse_reply_free(reply);
	}
	PG_END_TRY();
	if (pr != OPSMIG_PARSE_OK)
		api_report_reply(scan->conn, call, req, why);

	/* Walk on while pages are full and say there is a next one. */
	if (nresults >= ORGS_PER_PAGE && has_next)
	{
		if (call->page >= MAX_PAGES)
			api_report_too_many_pages(scan->conn, MAX_PAGES);
		http_batch_add(scan->batch->http,
					   api_request(scan->conn, OPSMIG_REQ_LIST, NULL, call->page + 1), true);
		return;
	}
	scan->listing = false;
	if (scan->ttl_ms > 0)
		cache_put_listing(scan->conn, scan->listed, scan->nlisted);
}

/*
 * api_scan_next's work, in the scan's own memory context.  Rows of an id
 * list that need names wait until the listing is complete.
 */
static bool
api_scan_fetch(OpsmigScan *scan, OpsmigLink *link)
{
	for (;;)
	{
		HttpRequest *req;
		OpsmigReply reply;
		ApiCall    *call;
		char	   *status;

		if (scan->next_row < list_length(scan->rows) &&
			!(scan->names && scan->listing))
		{
			*link = *(OpsmigLink *) list_nth(scan->rows, scan->next_row++);
			if (scan->names)
			{
				OrgName    *entry = hash_search(scan->names, link->org_id, HASH_FIND, NULL);

				link->org_name = entry ? entry->name : NULL;
			}
			if (link->org_name)
				link->org_name = scan->need_names ?
					api_org_name(link->org_id, link->org_name) : NULL;
			return true;
		}

		req = http_batch_next(scan->batch->http);
		if (req == NULL)
			return false;
		call = (ApiCall *) req->arg;
		if (!api_settle(scan->batch, req, &reply))
			continue;

		if (call->op == OPSMIG_REQ_LIST)
		{
			api_scan_page(scan, req, &reply);
			continue;
		}
		if (reply.code == 404)
		{
			parse_reply_free(&reply);
			status = NULL;		/* no link: no row */
		}
		else
			status = api_reply_status(scan->conn, req, &reply);
		if (scan->ttl_ms > 0)
			cache_put_status(scan->conn, call->org_id, status, scan->cache_gen);
		if (status)
			api_scan_row(scan, call->org_id, call->org_name, status);
		pfree(req->response);
		req->response = NULL;
	}
}

/*
 * Next row of the scan, as status calls complete (so in no particular
 * order).  Requests queued from a listing page, and the rows, live in the
 * scan's context, not in the caller's per-tuple one.
 */
bool
api_scan_next(OpsmigScan *scan, OpsmigLink *link)
{
	MemoryContext old = MemoryContextSwitchTo(scan->cxt);
	bool		found = api_scan_fetch(scan, link);

	MemoryContextSwitchTo(old);
	return found;
}
