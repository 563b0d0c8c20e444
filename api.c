/*-------------------------------------------------------------------------
 *
 * api.c
 *		  The live-migration link API client: URLs, request bodies, what each
 *		  HTTP code means, retries, and the ereport each failure becomes.
 *
 *	GET    /orgs?pageNum=N&itemsPerPage=500               list organizations
 *	GET    /orgs/{orgId}/liveExport/migrationLink/status  one link's status
 *	POST   /orgs/{orgId}/liveExport/migrationLink         create ({"linkToken"})
 *	DELETE /orgs/{orgId}/liveExport/migrationLink         delete
 *
 * Requests go through http.c in batches, up to max_concurrent_requests in
 * flight, so a scan of N organizations costs about (pages + N / C) round
 * trips.  The JSON itself is parsed by api_parse.c, which is plain C so it
 * can be fuzzed; this file copies what it needs out of the parsed document
 * and frees it before anything can throw.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "api.h"
#include "api_parse.h"
#include "cache.h"
#include "http.h"

#include <curl/curl.h>

/* The API's page size ceiling: fewest pages for a listing. */
#define ORGS_PER_PAGE		500
/* A listing longer than this is not an organization list. */
#define MAX_PAGES			10000
/* Backoff: first delay, ceiling, and ceiling on a server's Retry-After. */
#define RETRY_BASE_MS		200
#define RETRY_MAX_MS		10000
#define RETRY_AFTER_MAX_S	60

typedef enum ApiOp
{
	API_LIST,
	API_STATUS,
	API_CREATE,
	API_DELETE
} ApiOp;

/* What rides along with each request, for the reply handler. */
typedef struct ApiCall
{
	ApiOp		op;
	char		org_id[OPSMIG_ORG_ID_LEN + 1];
	char	   *org_name;
	int			page;			/* listing: the page number */
	int			row;			/* create: the caller's row index */
	bool		reauth_done;	/* the once-only fresh digest challenge */
} ApiCall;

typedef struct OrgName
{
	char		org_id[OPSMIG_ORG_ID_LEN + 1];	/* hash key */
	char	   *name;
} OrgName;

struct OpsmigScan
{
	OpsmigConn *conn;
	HttpBatch  *batch;
	MemoryContext cxt;
	bool		list_all;		/* status of every listed organization */
	bool		listing;		/* pages are (still) being fetched */
	HTAB	   *names;			/* org_id -> name, for an id list with names */
	List	   *rows;			/* OpsmigLink rows ready to return */
	int			next_row;		/* the next of them to return */
	int			ttl_ms;			/* cache_ttl; 0: no cache */
	uint64		cache_gen;		/* cache generation when the scan began */
	OpsmigStats *work;			/* the caller's own counters, or NULL */
	CachedOrg  *listed;			/* the listing so far, for the cache */
	int			nlisted;
	int			listed_cap;
};

static void api_scan_org(OpsmigScan *scan, const char *id, char *conv);
static void api_scan_want_status(OpsmigScan *scan, const char *org_id, char *org_name);

/* ----------------------------------------------------------------
 * Requests
 * ----------------------------------------------------------------
 */

void
api_check_org_id(const char *org_id, const char *what)
{
	if (!opsmig_valid_org_id(org_id))
	{
		char		shown[64];

		opsmig_printable(org_id, strlen(org_id), shown, sizeof(shown));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid organization id \"%s\"", shown),
				 errdetail("%s must be 24 lower-case hexadecimal characters.", what),
				 errhint("Organization ids look like 5e2211c17a3e5a48f5497de3; GET /orgs lists them.")));
	}
}

/*
 * Build a URL from the base URL, a path and query parameters.  Path pieces
 * are org ids validated above; query values are numbers or constants; and
 * the envelope parameter is added here, once, for every request.
 */
static char *
api_url(OpsmigConn *conn, const char *path, const char *query)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s%s", conn->opts.base_url, path);
	if (query && *query)
	{
		appendStringInfo(&buf, "?%s", query);
		first = false;
	}
	if (conn->opts.envelope)
		appendStringInfo(&buf, "%cenvelope=true", first ? '?' : '&');
	return buf.data;
}

/* Method, counter and path of each call; %s is the validated org id. */
static const struct
{
	const char *method;
	OpsmigRequestKind kind;
	const char *path;
}			api_calls[] = {
	[API_LIST] = {"GET", OPSMIG_REQ_LIST, "/orgs"},
	[API_STATUS] = {"GET", OPSMIG_REQ_STATUS, "/orgs/%s/liveExport/migrationLink/status"},
	[API_CREATE] = {"POST", OPSMIG_REQ_CREATE, "/orgs/%s/liveExport/migrationLink"},
	[API_DELETE] = {"DELETE", OPSMIG_REQ_DELETE, "/orgs/%s/liveExport/migrationLink"},
};

static HttpRequest *
api_request(OpsmigConn *conn, ApiOp op, const char *org_id, int page)
{
	HttpRequest *req = palloc0(sizeof(HttpRequest));
	ApiCall    *call = palloc0(sizeof(ApiCall));
	char		path[128];
	char		query[64] = "";

	call->op = op;
	call->page = page;
	if (org_id)
		strlcpy(call->org_id, org_id, sizeof(call->org_id));
	snprintf(path, sizeof(path), api_calls[op].path, call->org_id);
	if (op == API_LIST)
		snprintf(query, sizeof(query), "pageNum=%d&itemsPerPage=%d", page, ORGS_PER_PAGE);

	req->arg = call;
	req->method = api_calls[op].method;
	req->kind = api_calls[op].kind;
	req->url = api_url(conn, path, query);
	return req;
}

/* ----------------------------------------------------------------
 * Errors
 * ----------------------------------------------------------------
 */

static const char *
api_op_message(ApiOp op)
{
	switch (op)
	{
		case API_LIST:
			return "could not list the organizations of server \"%s\"";
		case API_STATUS:
			return "could not get the migration link status of organization \"%s\"";
		case API_CREATE:
			return "could not create the migration link of organization \"%s\"";
		case API_DELETE:
			return "could not delete the migration link of organization \"%s\"";
	}
	return "API request failed";
}

/* What the message names: the organization, or the server for a listing. */
static const char *
api_op_subject(OpsmigConn *conn, ApiCall *call)
{
	return call->op == API_LIST ? conn->server_name : call->org_id;
}

static int
api_http_sqlstate(ApiOp op, long code)
{
	switch (code)
	{
		case 401:
			return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
		case 403:
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		case 409:
			return op == API_CREATE ? ERRCODE_UNIQUE_VIOLATION :
				ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
		case 429:
			return ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
		case 400:
		case 404:
		case 422:
			return ERRCODE_INVALID_PARAMETER_VALUE;
	}
	return ERRCODE_FDW_ERROR;
}

/* An errhint() for this code, in the ereport being built; 0 when none. */
static int
api_http_hint(OpsmigConn *conn, ApiOp op, long code, const OpsmigApiError *err)
{
	if (code == 401 && strcmp(err->error_code, "NOT_ORG_ADMIN") == 0)
		return errhint("The API key \"%s\" needs the Organization Owner role on this organization.",
					   conn->public_key);
	if (code == 401)
		return errhint("Check public_key and private_key in the user mapping for server \"%s\"; the API key \"%s\" was refused.",
					   conn->server_name, conn->public_key);
	if (code == 403)
		return errhint("If the API key has an IP access list, add this database server's address to it.");
	if (code == 404 && op != API_LIST)
		return errhint("Check that the organization exists and that the API key can see it.");
	if (code == 409 && op == API_CREATE)
		return errhint("The organization is already linked: DELETE its row first to link it again.");
	if (code == 409)
		return errhint("Wait for the running live migration to finish, or cancel it, then delete the link.");
	if (code == 429)
		return errhint("The API is rate limited; retry later, or lower max_concurrent_requests of server \"%s\".",
					   conn->server_name);
	if (code >= 500)
		return errhint("The API answered with a server error; retry later.");
	return 0;
}

static void
api_report_http(OpsmigConn *conn, ApiCall *call, HttpRequest *req,
				const OpsmigReply *reply)
{
	OpsmigApiError err;
	long		code = reply ? reply->code : req->http_code;
	const char *who = api_op_subject(conn, call);

	opsmig_reply_error(reply, req->response, req->response_len, &err);

	ereport(ERROR,
			(errcode(api_http_sqlstate(call->op, code)),
			 errmsg(api_op_message(call->op), who),
			 err.json ?
			 errdetail("HTTP %ld%s%s: %s", code,
					   err.error_code[0] ? " " : "", err.error_code,
					   err.detail[0] ? err.detail : err.reason) :
			 err.excerpt[0] ?
			 errdetail("HTTP %ld with a non-JSON body: %s", code, err.excerpt) :
			 errdetail("HTTP %ld with an empty body.", code),
			 api_http_hint(conn, call->op, code, &err)));
}

static void
api_report_transport(OpsmigConn *conn, ApiCall *call, HttpRequest *req)
{
	const char *who = api_op_subject(conn, call);

	if (req->too_large)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
				 errmsg(api_op_message(call->op), who),
				 errdetail("The reply is larger than max_response_bytes (%d bytes).",
						   conn->opts.max_response_bytes),
				 errhint("Raise max_response_bytes of server \"%s\" if the reply is expected to be this large.",
						 conn->server_name)));

	if (req->curl_code == CURLE_OPERATION_TIMEDOUT)
	{
		if (!req->connected)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg(api_op_message(call->op), who),
					 errdetail("No connection to %s within connect_timeout (%d ms).",
							   conn->opts.base_url, conn->opts.connect_timeout_ms),
					 errhint("Check that the API is reachable from the database server, or raise connect_timeout of server \"%s\".",
							 conn->server_name)));
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg(api_op_message(call->op), who),
				 errdetail("No complete reply within request_timeout (%d ms).",
						   conn->opts.request_timeout_ms),
				 errhint("Raise request_timeout of server \"%s\" if the API is slow.",
						 conn->server_name)));
	}

	switch (req->curl_code)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_UNSUPPORTED_PROTOCOL:
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg(api_op_message(call->op), who),
					 errdetail("Could not connect to %s: %s.",
							   conn->opts.base_url, req->curl_error),
					 req->curl_code == CURLE_PEER_FAILED_VERIFICATION ||
					 req->curl_code == CURLE_SSL_CACERT_BADFILE ?
					 errhint("The server's certificate was not accepted: set ca_file of server \"%s\" to the CA that signed it.",
							 conn->server_name) :
					 errhint("Check base_url of server \"%s\" and that the API is reachable from the database server.",
							 conn->server_name)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg(api_op_message(call->op), who),
					 errdetail("The connection to the API failed: %s.", req->curl_error)));
	}
}

static void
api_report_reply(OpsmigConn *conn, ApiCall *call, HttpRequest *req,
				 const char *why)
{
	char		excerpt[128];
	const char *who = api_op_subject(conn, call);

	opsmig_printable(req->response, req->response_len, excerpt, sizeof(excerpt));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
			 errmsg(api_op_message(call->op), who),
			 errdetail("HTTP %ld: %s%s%s", req->http_code, why,
					   excerpt[0] ? "; the reply begins: " : "", excerpt),
			 errhint("Check that base_url of server \"%s\" points at the Ops Manager public API (…/api/public/v1.0).",
					 conn->server_name)));
}

static void
api_count_error(OpsmigConn *conn, HttpRequest *req, long code)
{
	OpsmigStats *st = &conn->stats;

	if (code == 0)
		st->errors_transport++;
	else if (code == 401)
		st->errors_401++;
	else if (code == 403)
		st->errors_403++;
	else if (code == 404)
		st->errors_404++;
	else if (code == 409)
		st->errors_409++;
	else if (code == 429)
		st->errors_429++;
	else if (code >= 500)
		st->errors_5xx++;
	else if (code >= 400)
		st->errors_4xx_other++;
}

/* ----------------------------------------------------------------
 * Retries
 * ----------------------------------------------------------------
 */

/* Exponential backoff before jitter: 200 ms, 400 ms, ... up to 10 s. */
static int
api_backoff_ceiling(HttpRequest *req)
{
	return (int) Min(RETRY_BASE_MS * pow(2, req->attempts - 1), RETRY_MAX_MS);
}

/* The request's path and query, for log lines (the base URL is known). */
static const char *
api_path(OpsmigConn *conn, HttpRequest *req)
{
	return req->url + strlen(conn->opts.base_url);
}

/*
 * May this failed attempt be sent again?  GETs are idempotent: connection
 * errors, 5xx and 429 are retried.  POST and DELETE are retried only when
 * the request provably did not reach the API (connection refused) or was
 * refused unprocessed (429).  Returns the delay in ms, or -1 for no retry.
 */
static int
api_retry_delay(OpsmigConn *conn, ApiCall *call, HttpRequest *req, long code)
{
	bool		idempotent = (call->op == API_LIST || call->op == API_STATUS);
	bool		retryable;
	double		delay;

	if (req->attempts > conn->opts.max_retries)
		return -1;
	if (code == 0)
		retryable = !req->too_large &&
			req->curl_code != CURLE_OPERATION_TIMEDOUT &&
			(idempotent || req->curl_code == CURLE_COULDNT_CONNECT);
	else
		retryable = code == 429 || (idempotent && code >= 500 && code != 501);
	if (!retryable)
		return -1;

	delay = api_backoff_ceiling(req);
	delay *= 0.5 + 0.5 * pg_prng_double(&pg_global_prng_state);	/* jitter */
	if (req->retry_after >= 0)
		delay = Max(delay, Min(req->retry_after, RETRY_AFTER_MAX_S) * 1000.0);

	/* Never sleep past statement_timeout: report the error now instead. */
	if (StatementTimeout > 0)
	{
		TimestampTz deadline = GetCurrentStatementStartTimestamp() +
		(int64) StatementTimeout * 1000;

		if (GetCurrentTimestamp() + (int64) delay * 1000 >= deadline)
			return -1;
	}
	return (int) delay;
}

/*
 * Turn a completed attempt into a reply, retrying what may be retried.
 * Returns false when the request was queued again; otherwise fills *reply
 * (the caller frees it) with the effective code: a transport failure, or a
 * code nobody retries, has been reported as an error already unless it is
 * one the caller handles (2xx, and 404 for status and delete).
 */
static bool
api_settle(OpsmigConn *conn, HttpBatch *batch, HttpRequest *req,
		   OpsmigReply *reply)
{
	ApiCall    *call = (ApiCall *) req->arg;
	OpsmigParseResult pr = OPSMIG_PARSE_EMPTY;
	char		why[160];
	long		code = req->http_code;
	int			delay;

	reply->root = NULL;
	reply->content = NULL;
	reply->code = code;
	if (code != 0)
	{
		pr = opsmig_parse_reply(req->response, req->response_len,
								conn->opts.envelope, code, reply, why, sizeof(why));
		code = reply->code;
		if (pr == OPSMIG_PARSE_BAD_SHAPE && conn->opts.envelope && req->http_code == 200)
		{
			opsmig_reply_free(reply);
			api_report_reply(conn, call, req, why);
		}
	}

	if (code >= 200 && code < 300)
	{
		if (req->response_len > 0 &&
			pg_strncasecmp(req->content_type, "application/json", 16) != 0)
		{
			char		ctype[64];

			opsmig_printable(req->content_type, strlen(req->content_type),
							 ctype, sizeof(ctype));
			opsmig_reply_free(reply);
			api_report_reply(conn, call, req,
							 psprintf("the reply's Content-Type is \"%s\", not application/json",
									  ctype));
		}
		elog(DEBUG2, "opsmig_fdw: %s %s: HTTP %ld in %.1f ms",
			 req->method, api_path(conn, req), code, req->elapsed_ms);
		return true;
	}
	api_count_error(conn, req, code);

	/*
	 * A 401 to a request that already carried credentials (no challenge
	 * round trip in this attempt) may be an expired nonce: challenge afresh,
	 * once.
	 */
	if (code == 401 && req->challenges == 0 && !call->reauth_done)
	{
		call->reauth_done = true;
		elog(DEBUG1, "opsmig_fdw: %s %s: HTTP 401 with a reused nonce, retrying with a fresh digest challenge",
			 req->method, api_path(conn, req));
		opsmig_reply_free(reply);
		http_batch_retry(batch, req, 0, true);
		return false;
	}

	delay = api_retry_delay(conn, call, req, code);
	if (delay >= 0)
	{
		/* The delay itself is jittered; the message gives its ceiling. */
		elog(DEBUG1, "opsmig_fdw: %s %s: %s%s, retry %d of %d within %d ms",
			 req->method, api_path(conn, req),
			 code ? "HTTP " : req->curl_error,
			 code ? psprintf("%ld", code) : "",
			 req->attempts, conn->opts.max_retries,
			 req->retry_after >= 0 ? delay : api_backoff_ceiling(req));
		opsmig_reply_free(reply);
		http_batch_retry(batch, req, delay, false);
		return false;
	}

	if (code == 0)
		api_report_transport(conn, call, req);
	if (code == 404 && (call->op == API_STATUS || call->op == API_DELETE))
		return true;

	/* Copy what the message needs, free the document, then throw. */
	{
		OpsmigReply copy = *reply;

		PG_TRY();
		{
			api_report_http(conn, call, req, pr == OPSMIG_PARSE_OK ? &copy : NULL);
		}
		PG_FINALLY();
		{
			opsmig_reply_free(reply);
		}
		PG_END_TRY();
	}
	return true;					/* not reached */
}

/*
 * A palloc'd copy of a UTF-8 string from a reply, in the server encoding
 * (pg_any_to_server returns its argument when there is nothing to convert,
 * and the argument may be json-c's or on the stack).
 */
static char *
api_text(const char *utf8)
{
	char	   *s = pg_any_to_server(utf8, strlen(utf8), PG_UTF8);

	return s == utf8 ? pstrdup(utf8) : s;
}

/* Parse a 2xx status reply into a palloc'd string, or report it. */
static char *
api_reply_status(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply)
{
	char		status[OPSMIG_STATUS_MAX + 1];
	char		why[160];
	OpsmigParseResult pr;

	pr = opsmig_reply_status(reply, status, sizeof(status), why, sizeof(why));
	if (pr != OPSMIG_PARSE_OK)
	{
		if (reply->root == NULL)
			snprintf(why, sizeof(why), "the reply is not a JSON document with a \"status\"");
		opsmig_reply_free(reply);
		api_report_reply(conn, (ApiCall *) req->arg, req, why);
	}
	opsmig_reply_free(reply);
	return api_text(status);
}

/* ----------------------------------------------------------------
 * Scan
 * ----------------------------------------------------------------
 */

OpsmigScan *
api_scan_begin(OpsmigConn *conn, List *org_ids, bool list_all, bool need_names,
			   int cache_ttl_ms, OpsmigStats *work)
{
	OpsmigScan *scan = palloc0(sizeof(OpsmigScan));
	ListCell   *lc;

	scan->conn = conn;
	scan->cxt = CurrentMemoryContext;
	scan->list_all = list_all;
	scan->ttl_ms = cache_ttl_ms;
	scan->cache_gen = cache_ttl_ms > 0 ? cache_generation(conn) : 0;
	scan->work = work;
	scan->batch = http_batch_create(conn->http, conn->opts.max_concurrent_requests, work);

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
		int			ncached;
		CachedOrg  *cached = cache_get_listing(conn, cache_ttl_ms, &ncached);
		int			i;

		if (cached)
		{
			for (i = 0; i < ncached; i++)
				api_scan_org(scan, cached[i].org_id,
							 cached[i].name ? pstrdup(cached[i].name) : NULL);
		}
		else
		{
			scan->listing = true;
			http_batch_add(scan->batch, api_request(conn, API_LIST, NULL, 1), true);
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
		if (scan->work)
			scan->work->cache_hits++;
		if (linked)
			api_scan_row(scan, org_id, org_name, pstrdup(status));
		return;
	}
	req = api_request(scan->conn, API_STATUS, org_id, 0);
	((ApiCall *) req->arg)->org_name = org_name;
	http_batch_add(scan->batch, req, false);
}

/*
 * One organization of the listing (from a page, or from the cache), its
 * name a palloc'd string in the server encoding, or NULL.
 */
static void
api_scan_org(OpsmigScan *scan, const char *id, char *conv)
{

	if (scan->names)
	{
		OrgName    *entry = hash_search(scan->names, id, HASH_ENTER, NULL);

		entry->name = conv;
	}
	if (scan->list_all)
		api_scan_want_status(scan, id, conv);
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
		scan->listed[scan->nlisted++].name = conv;
	}
}

static void
api_scan_page_org(const char *id, const char *name, void *arg)
{
	api_scan_org((OpsmigScan *) arg, id, name ? api_text(name) : NULL);
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
		pr = opsmig_reply_orgs(reply, api_scan_page_org, scan, &nresults,
							   &has_next, why, sizeof(why));
	}
	PG_FINALLY();
	{
		opsmig_reply_free(reply);
	}
	PG_END_TRY();
	if (pr != OPSMIG_PARSE_OK)
		api_report_reply(scan->conn, call, req, why);

	/* Walk on while pages are full and say there is a next one. */
	if (nresults >= ORGS_PER_PAGE && has_next)
	{
		if (call->page >= MAX_PAGES)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("the organization listing of server \"%s\" goes on past %d pages",
							scan->conn->server_name, MAX_PAGES)));
		http_batch_add(scan->batch,
					   api_request(scan->conn, API_LIST, NULL, call->page + 1), true);
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
			return true;
		}

		req = http_batch_next(scan->batch);
		if (req == NULL)
			return false;
		call = (ApiCall *) req->arg;
		if (!api_settle(scan->conn, scan->batch, req, &reply))
			continue;

		if (call->op == API_LIST)
		{
			api_scan_page(scan, req, &reply);
			continue;
		}
		if (reply.code == 404)
		{
			opsmig_reply_free(&reply);
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

/* ----------------------------------------------------------------
 * Modify
 * ----------------------------------------------------------------
 */

/*
 * Create the links of n organizations, up to max_concurrent_requests at a
 * time; statuses[i] gets the status the API answered for org_ids[i].  All
 * requests are settled before any error is raised, so every link the API
 * did create is noted for the rollback warning, and none is abandoned in
 * flight (a request cut off mid-way leaves nobody knowing what happened).
 */
void
api_create_links(OpsmigConn *conn, int n, char **org_ids, char **tokens,
				 char **statuses)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "opsmig_fdw create",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	HttpBatch  *batch = http_batch_create(conn->http, conn->opts.max_concurrent_requests, NULL);
	HttpRequest *req;
	ErrorData  *volatile first_error = NULL;
	int			i;

	for (i = 0; i < n; i++)
	{
		char	   *raw;

		api_check_org_id(org_ids[i], "org_id");
		req = api_request(conn, API_CREATE, org_ids[i], 0);
		((ApiCall *) req->arg)->row = i;
		raw = opsmig_create_body(tokens[i]);
		if (raw == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory building the request body")));
		req->body = pstrdup(raw);
		free(raw);
		cache_forget(conn, org_ids[i]);
		http_batch_add(batch, req, false);
	}

	while ((req = http_batch_next(batch)) != NULL)
	{
		ApiCall    *call = (ApiCall *) req->arg;

		PG_TRY();
		{
			OpsmigReply reply;

			if (api_settle(conn, batch, req, &reply))
			{
				/* The link exists now, whatever the body says. */
				opsmig_note_remote_change(psprintf("created the migration link of organization %s",
												   call->org_id));
				statuses[call->row] = MemoryContextStrdup(caller,
														   api_reply_status(conn, req, &reply));
			}
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			if (first_error == NULL)
				first_error = CopyErrorData();
			FlushErrorState();
		}
		PG_END_TRY();
	}
	if (first_error)
		ReThrowError(first_error);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/*
 * Delete the links of these organizations, up to max_concurrent_requests
 * at a time.  Returns how many existed (204); a 404 is no link, not an error.
 * The requests are also counted in *work, when given.
 */
int
api_delete_links(OpsmigConn *conn, List *org_ids, OpsmigStats *work)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "opsmig_fdw delete",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	HttpBatch  *batch = http_batch_create(conn->http, conn->opts.max_concurrent_requests, work);
	HttpRequest *req;
	ListCell   *lc;
	int			deleted = 0;

	foreach(lc, org_ids)
	{
		api_check_org_id((char *) lfirst(lc), "org_id");
		cache_forget(conn, lfirst(lc));
		http_batch_add(batch, api_request(conn, API_DELETE, lfirst(lc), 0), false);
	}
	while ((req = http_batch_next(batch)) != NULL)
	{
		OpsmigReply reply;
		ApiCall    *call = (ApiCall *) req->arg;

		if (!api_settle(conn, batch, req, &reply))
			continue;
		if (reply.code != 404)
		{
			deleted++;
			opsmig_note_remote_change(psprintf("deleted the migration link of organization %s",
											   call->org_id));
		}
		opsmig_reply_free(&reply);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return deleted;
}
