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
#include "ratelimit.h"

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
	bool		need_names;		/* org_name is wanted */
	bool		listing;		/* pages are (still) being fetched */
	HTAB	   *names;			/* org_id -> name, for an id list with names */
	HTAB	   *seen;			/* org ids listed so far (pages may shift) */
	List	   *rows;			/* OpsmigLink rows ready to return */
	int			next_row;		/* the next of them to return */
	int			ttl_ms;			/* cache_ttl; 0: no cache */
	uint64		cache_gen;		/* cache generation when the scan began */
	OpsmigStats *work;			/* the caller's own counters, or NULL */
	CachedOrg  *listed;			/* the listing so far, for the cache */
	int			nlisted;
	int			listed_cap;
};

static void api_scan_org(OpsmigScan *scan, const char *id, char *name);
static void api_scan_want_status(OpsmigScan *scan, const char *org_id, char *org_name);

/* ----------------------------------------------------------------
 * Requests
 * ----------------------------------------------------------------
 */

void
api_check_org_id(const char *org_id, const char *what)
{
	if (!parse_valid_org_id(org_id))
	{
		char		shown[64];

		parse_printable(org_id, strlen(org_id), shown, sizeof(shown));
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

/*
 * The message of an ERROR: the operation and what it was about.  One
 * literal message per operation, so that each can be translated.
 */
static int
api_errmsg(OpsmigConn *conn, ApiCall *call)
{
	switch (call->op)
	{
		case API_LIST:
			return errmsg("could not list the organizations of server \"%s\"",
						  conn->server_name);
		case API_STATUS:
			return errmsg("could not get the migration link status of organization \"%s\"",
						  call->org_id);
		case API_CREATE:
			return errmsg("could not create the migration link of organization \"%s\"",
						  call->org_id);
		case API_DELETE:
			return errmsg("could not delete the migration link of organization \"%s\"",
						  call->org_id);
	}
	return 0;					/* not reached */
}

/* The hint of every answer that shows base_url leads somewhere else. */
static int
api_base_url_hint(OpsmigConn *conn)
{
	return errhint("Check that base_url of server \"%s\" points at the Ops Manager public API, whose base URL ends in /api/public/v1.0.",
				   conn->server_name);
}

/*
 * "Already linked" may come as 400 (FACTS.md): the errorCode says so plainly,
 * and it is then the same answer as a 409 to a create.
 */
static bool
api_already_linked(ApiOp op, long code, const OpsmigApiError *err)
{
	return op == API_CREATE &&
		(code == 409 ||
		 (code == 400 && strcmp(err->error_code, "ORG_MIGRATION_LINK_ALREADY_EXISTS") == 0));
}

static int
api_http_sqlstate(ApiOp op, long code, const OpsmigApiError *err)
{
	if (api_already_linked(op, code, err))
		return ERRCODE_UNIQUE_VIOLATION;
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
	/* A key without the role is refused with 401 or 403 (FACTS.md). */
	if ((code == 401 || code == 403) && strcmp(err->error_code, "NOT_ORG_ADMIN") == 0)
		return errhint("The API key \"%s\" needs the Organization Owner role on this organization.",
					   conn->public_key);
	if (code == 401)
		return errhint("Check public_key and private_key in the user mapping for server \"%s\"; the API key \"%s\" was refused.",
					   conn->server_name, conn->public_key);
	if (code == 403)
		return errhint("If the API key has an IP access list, add this database server's address to it.");
	if (code == 404 && op != API_LIST)
		return errhint("Check that the organization exists and that the API key can see it.");
	if (api_already_linked(op, code, err))
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

/*
 * Can this failed transfer have reached the API?  Not when it failed to
 * resolve, connect or finish the TLS handshake; any later failure (reset,
 * no reply, a reply cut off) leaves a POST or DELETE possibly applied.
 */
static bool
api_maybe_reached(HttpRequest *req)
{
	/* A change sent, its reply lost, and curl's resend of it refused. */
	if (req->resend_refused)
		return true;
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
			return false;
		case CURLE_OPERATION_TIMEDOUT:
			return req->connected;
		default:
			return true;
	}
}

/* Drop the trailing periods of an API text, so the detail adds exactly one. */
static const char *
api_sentence(char *text)
{
	size_t		len = strlen(text);

	while (len > 0 && (text[len - 1] == '.' || text[len - 1] == ' '))
		text[--len] = '\0';
	return text;
}

/* The errdetail() of an HTTP error: the API's own words, or what came. */
static int
api_http_detail(long code, OpsmigApiError *err)
{
	const char *text = api_sentence(err->detail[0] ? err->detail : err->reason);

	if (err->json && err->error_code[0] && text[0])
		return errdetail("HTTP %ld %s: %s.", code, err->error_code, text);
	if (err->json && err->error_code[0])
		return errdetail("HTTP %ld %s.", code, err->error_code);
	if (err->json)
		return errdetail("HTTP %ld: %s.", code, text);
	if (err->excerpt[0])
		return errdetail("HTTP %ld with a body that is not an API error document: \"%s\".",
						 code, err->excerpt);
	return errdetail("HTTP %ld with an empty body.", code);
}

/*
 * Report an HTTP error.  not_api: the answer cannot come from the API at
 * base_url (a 404 that is not the API's error document, or a 404 to the
 * organizations listing, which always exists): base_url is wrong, and that
 * is said as clearly as a host that cannot be reached.
 */
static void
api_report_http(OpsmigConn *conn, ApiCall *call, HttpRequest *req,
				const OpsmigReply *reply, bool not_api)
{
	OpsmigApiError err;
	long		code = reply ? reply->code : req->http_code;

	parse_reply_error(reply, req->response, req->response_len, &err);

	ereport(ERROR,
			(errcode(not_api ? ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION :
					 api_http_sqlstate(call->op, code, &err)),
			 api_errmsg(conn, call),
			 api_http_detail(code, &err),
			 not_api ? api_base_url_hint(conn) :
			 api_http_hint(conn, call->op, code, &err)));
}

/*
 * The errhint() of a connection that failed before the request went.  A
 * certificate for another host name is not fixed by ca_file (the CA may be
 * trusted already): libcurl's text names the "target host name" then.
 */
static int
api_connect_hint(OpsmigConn *conn, HttpRequest *req)
{
	if (req->curl_code == CURLE_PEER_FAILED_VERIFICATION &&
		strstr(req->curl_error, "target host name") != NULL)
		return errhint("The server's certificate is not issued for the host name in base_url of server \"%s\": use a host name the certificate names.",
					   conn->server_name);
	if (req->curl_code == CURLE_PEER_FAILED_VERIFICATION ||
		req->curl_code == CURLE_SSL_CACERT_BADFILE)
		return errhint("The server's certificate was not accepted: set ca_file of server \"%s\" to the CA that signed it.",
					   conn->server_name);
	return errhint("Check base_url of server \"%s\" and that the API is reachable from the database server.",
				   conn->server_name);
}

static void
api_report_transport(OpsmigConn *conn, ApiCall *call, HttpRequest *req)
{
	if (req->too_large)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
				 api_errmsg(conn, call),
				 errdetail("The reply is larger than max_response_bytes (%d bytes).",
						   conn->opts.max_response_bytes),
				 errhint("Raise max_response_bytes of server \"%s\" if the reply is expected to be this large.",
						 conn->server_name)));

	if (req->curl_code == CURLE_OPERATION_TIMEDOUT)
	{
		if (!req->connected)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 api_errmsg(conn, call),
					 errdetail("No connection to %s within connect_timeout (%d ms).",
							   conn->opts.base_url, conn->opts.connect_timeout_ms),
					 errhint("Check that the API is reachable from the database server, or raise connect_timeout of server \"%s\".",
							 conn->server_name)));
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 api_errmsg(conn, call),
				 errdetail("No complete reply within request_timeout (%d ms).",
						   conn->opts.request_timeout_ms),
				 errhint("Raise request_timeout of server \"%s\" if the API is slow.",
						 conn->server_name)));
	}

	if (!api_maybe_reached(req))
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 api_errmsg(conn, call),
				 errdetail("Could not connect to %s: %s.",
						   conn->opts.base_url, api_sentence(req->curl_error)),
				 api_connect_hint(conn, req)));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 api_errmsg(conn, call),
			 errdetail("The connection to the API failed: %s.",
					   api_sentence(req->curl_error))));
}

/* A 2xx reply that is not what the API documents. */
static void
api_report_reply(OpsmigConn *conn, ApiCall *call, HttpRequest *req,
				 const char *why)
{
	char		excerpt[128];

	parse_printable(req->response, req->response_len, excerpt, sizeof(excerpt));
	if (excerpt[0])
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
				 api_errmsg(conn, call),
				 errdetail("HTTP %ld: %s; the reply begins with \"%s\".",
						   req->http_code, why, excerpt),
				 api_base_url_hint(conn)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
			 api_errmsg(conn, call),
			 errdetail("HTTP %ld: %s.", req->http_code, why),
			 api_base_url_hint(conn)));
}

static void
api_count_error(OpsmigConn *conn, HttpRequest *req, long code)
{
	opsmig_stats_count_error(&conn->stats, code);
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
 * errors and 5xx are retried.  POST and DELETE are retried only when the
 * request provably did not reach the API (connection refused).  (A 429 is
 * no failure: api_settle hands it to the pacer.)  Returns the delay in ms,
 * or -1 for no retry.
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
			(idempotent ||
			 (req->curl_code == CURLE_COULDNT_CONNECT && !api_maybe_reached(req)));
	else
		retryable = idempotent && code >= 500 && code != 501;
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

/* Tell the pacer what this reply said about the API's rate limit. */
static void
api_learn_rate_limit(OpsmigConn *conn, HttpRequest *req, long code,
					 const OpsmigReply *reply)
{
	OpsmigRateLimitParams params;

	if (code == 429)
		req->rate_limited++;
	req->ratelimit_out = false;
	parse_reply_ratelimit(code == 429 ? reply : NULL, &params);
	ratelimit_learn(conn->limiter, req->ratelimit_seq, req->ratelimit_in_flight,
					code, req->ratelimit_limit, req->ratelimit_remaining,
					code == 429 ? req->retry_after : -1, req->rate_limited,
					&params);
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
	bool		not_api;

	reply->root = NULL;
	reply->content = NULL;
	reply->code = code;
	if (code != 0)
	{
		pr = parse_reply(req->response, req->response_len,
								conn->opts.envelope, code, reply, why, sizeof(why));
		code = reply->code;
		if (pr == OPSMIG_PARSE_BAD_SHAPE && conn->opts.envelope && req->http_code == 200)
		{
			parse_reply_free(reply);
			api_report_reply(conn, call, req, why);
		}
	}

	api_learn_rate_limit(conn, req, code, pr == OPSMIG_PARSE_OK ? reply : NULL);

	if (code >= 200 && code < 300)
	{
		if (req->response_len > 0 &&
			pg_strncasecmp(req->content_type, "application/json", 16) != 0)
		{
			char		ctype[64];

			parse_printable(req->content_type, strlen(req->content_type),
							 ctype, sizeof(ctype));
			parse_reply_free(reply);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
					 api_errmsg(conn, call),
					 errdetail("HTTP %ld: the reply's Content-Type is \"%s\", not application/json.",
							   req->http_code, ctype),
					 api_base_url_hint(conn)));
		}
		elog(DEBUG2, "opsmig_fdw: %s %s: HTTP %ld in %.1f ms",
			 req->method, api_path(conn, req), code, req->elapsed_ms);
		return true;
	}
	api_count_error(conn, req, code);

	/*
	 * A 429 was refused unprocessed by the rate limit: no failed attempt,
	 * whatever the method.  The pacer has learnt from it and sends the
	 * request again when a token may be there.
	 */
	if (code == 429)
	{
		elog(DEBUG2, "opsmig_fdw: %s %s: HTTP 429, sent again when the rate limit allows (429 number %d of this request)",
			 req->method, api_path(conn, req), req->rate_limited);
		parse_reply_free(reply);
		http_batch_resend(batch, req);
		return false;
	}

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
		parse_reply_free(reply);
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
		parse_reply_free(reply);
		http_batch_retry(batch, req, delay, false);
		return false;
	}

	if (code == 0)
		api_report_transport(conn, call, req);

	/*
	 * A 404 is "no link" only when the API itself says so, in its error
	 * document, and never to the listing: anything else means base_url does
	 * not lead to the API, and reading it as "no link" would make every
	 * query return nothing and every DELETE delete nothing.
	 */
	not_api = code == 404 &&
		(call->op == API_LIST || pr != OPSMIG_PARSE_OK ||
		 !parse_reply_is_api_error(reply, code));
	if (code == 404 && !not_api &&
		(call->op == API_STATUS || call->op == API_DELETE))
		return true;

	/* Copy what the message needs, free the document, then throw. */
	{
		OpsmigReply copy = *reply;

		PG_TRY();
		{
			api_report_http(conn, call, req, pr == OPSMIG_PARSE_OK ? &copy : NULL,
							not_api);
		}
		PG_FINALLY();
		{
			parse_reply_free(reply);
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

/*
 * The status in a 2xx reply, palloc'd, or report the reply.  A create
 * reply may lack one (the OpenAPI description's 200 shape, or no body):
 * the link exists and its status was not said, so NULL (see README).
 */
static char *
api_reply_status(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply)
{
	ApiCall    *call = (ApiCall *) req->arg;
	char		status[OPSMIG_STATUS_MAX + 1];
	char		why[160];
	OpsmigParseResult pr;
	size_t		i;

	if (call->op == API_CREATE && reply->root == NULL)
	{
		for (i = 0; i < req->response_len; i++)
			if (req->response[i] != ' ' && req->response[i] != '\t' &&
				req->response[i] != '\r' && req->response[i] != '\n')
				break;
		if (i == req->response_len)
			return NULL;
	}
	if (call->op == API_CREATE)
		pr = parse_reply_create_status(reply, status, sizeof(status), why, sizeof(why));
	else
		pr = parse_reply_status(reply, status, sizeof(status), why, sizeof(why));
	if (pr != OPSMIG_PARSE_OK || reply->root == NULL)
	{
		if (reply->root == NULL)
			snprintf(why, sizeof(why), call->op == API_CREATE ?
					 "the reply is not a JSON document" :
					 "the reply is not a JSON document with a \"status\"");
		parse_reply_free(reply);
		api_report_reply(conn, call, req, why);
	}
	parse_reply_free(reply);
	return status[0] ? api_text(status) : NULL;
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
	scan->need_names = need_names;
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
			if (link->org_name)
				link->org_name = scan->need_names ?
					api_org_name(link->org_id, link->org_name) : NULL;
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

/* ----------------------------------------------------------------
 * Modify
 * ----------------------------------------------------------------
 */

/*
 * Note a change for the rollback warning.  certain: the API said it acted;
 * otherwise the request was sent and no answer came, so it may have.
 */
static void
api_note_change(ApiCall *call, bool certain)
{
	const char *id = call->org_id;

	if (call->op == API_CREATE)
		opsmig_note_remote_change(certain ?
								  psprintf("created the migration link of organization %s", id) :
								  psprintf("may have created the migration link of organization %s (no reply came)", id));
	else
		opsmig_note_remote_change(certain ?
								  psprintf("deleted the migration link of organization %s", id) :
								  psprintf("may have deleted the migration link of organization %s (no reply came)", id));
}

/*
 * Was this completed create or delete sent, with no word from the API on
 * what it did?  The transfer failed after sending, or a gateway in front
 * answered that it got no (valid) reply from the API: 502, 504.  Those are
 * the proxy's pages, never the API's, and say nothing of whether it acted.
 */
static bool
api_reply_lost(HttpRequest *req)
{
	if (req->http_code == 0)
		return api_maybe_reached(req);
	return req->http_code == 502 || req->http_code == 504;
}

/*
 * Did this completed create or delete change something, as far as we can
 * tell without throwing?  1: yes (2xx); 0: no; -1: it may have (see
 * api_reply_lost).
 */
static int
api_outcome(OpsmigConn *conn, HttpRequest *req)
{
	OpsmigReply reply;
	long		code;

	if (api_reply_lost(req))
		return -1;
	if (req->http_code == 0)
		return 0;
	(void) parse_reply(req->response, req->response_len, conn->opts.envelope,
							  req->http_code, &reply, NULL, 0);
	code = reply.code;
	parse_reply_free(&reply);
	return code >= 200 && code < 300 ? 1 : 0;
}

/*
 * The wait for a create or delete batch was ended (cancel, statement_timeout,
 * a transport failure): note what the API did or may have done.  Replies
 * that came but were not handed out yet count as done; requests still in
 * flight may have been applied, and nobody will hear of them now.
 */
static void
api_note_unsettled(OpsmigConn *conn, HttpBatch *batch, List *reqs)
{
	HttpRequest *req;
	ListCell   *lc;

	while ((req = http_batch_take_done(batch)) != NULL)
	{
		int			outcome = api_outcome(conn, req);

		if (outcome != 0)
			api_note_change((ApiCall *) req->arg, outcome > 0);
	}
	foreach(lc, reqs)
	{
		req = (HttpRequest *) lfirst(lc);
		if (http_request_in_flight(req))
			api_note_change((ApiCall *) req->arg, false);
	}
}

typedef void (*ApiModifyDone) (OpsmigConn *conn, HttpRequest *req,
							   OpsmigReply *reply, void *arg);

/*
 * Drive a batch of creates or deletes (reqs, all added) to its end, handing
 * each settled reply to done(), which notes the change.  The first error is
 * kept and raised once the requests in flight are settled: the rollback
 * warning then lists every change the API made, and no request is abandoned
 * in flight.  Requests not sent yet never are: the statement fails anyway,
 * and each would be one more change the rollback cannot undo (or, under a
 * bad key or a rate limit, one more refused request).  If the wait itself
 * ends (cancel, statement_timeout), what is known is noted before the error
 * goes on.
 */
static void
api_modify_batch(OpsmigConn *conn, HttpBatch *batch, List *reqs,
				 ApiModifyDone done, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ErrorData  *volatile first_error = NULL;

	for (;;)
	{
		HttpRequest *volatile req = NULL;

		/* After an error, a 429's retry is not sent either. */
		if (first_error)
			http_batch_drop_queued(batch);
		PG_TRY();
		{
			req = http_batch_next(batch);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			api_note_unsettled(conn, batch, reqs);
			PG_RE_THROW();
		}
		PG_END_TRY();
		if (req == NULL)
			break;
		/* Forget again now: another session may have cached it while this ran. */
		opsmig_forget_org(((ApiCall *) req->arg)->org_id);

		PG_TRY();
		{
			OpsmigReply reply;

			/* Sent, and no word of what the API did: reported below, noted here. */
			if (api_reply_lost(req))
				api_note_change((ApiCall *) req->arg, false);
			if (api_settle(conn, batch, req, &reply))
				done(conn, req, &reply, arg);
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
}

typedef struct ApiCreated
{
	MemoryContext caller;		/* where the statuses go */
	char	  **statuses;
} ApiCreated;

static void
api_create_done(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply, void *arg)
{
	ApiCreated *created = (ApiCreated *) arg;
	ApiCall    *call = (ApiCall *) req->arg;
	char	   *status;

	/* The link exists now, whatever the body says. */
	api_note_change(call, true);
	status = api_reply_status(conn, req, reply);
	created->statuses[call->row] = status ?
		MemoryContextStrdup(created->caller, status) : NULL;
}

/*
 * Create the links of n organizations, up to max_concurrent_requests at a
 * time; statuses[i] gets the status the API answered for org_ids[i], or
 * NULL when its reply did not carry one.  Every row is checked before any
 * request is sent.  The requests are also counted in *work, when given.
 */
void
api_create_links(OpsmigConn *conn, int n, char **org_ids, char **tokens,
				 char **statuses, OpsmigStats *work)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "opsmig_fdw create",
											  ALLOCSET_SMALL_SIZES);
	ApiCreated	created = {CurrentMemoryContext, statuses};
	MemoryContext old = MemoryContextSwitchTo(cxt);
	HttpBatch  *batch = http_batch_create(conn->http, conn->opts.max_concurrent_requests, work);
	List	   *reqs = NIL;
	int			i;

	for (i = 0; i < n; i++)
		api_check_org_id(org_ids[i], "org_id");
	for (i = 0; i < n; i++)
	{
		HttpRequest *req = api_request(conn, API_CREATE, org_ids[i], 0);
		char	   *raw;

		((ApiCall *) req->arg)->row = i;
		raw = parse_create_body(tokens[i]);
		if (raw == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory building the request body")));
		req->body = pstrdup(raw);
		free(raw);
		reqs = lappend(reqs, req);
	}
	for (i = 0; i < n; i++)
	{
		opsmig_forget_org(org_ids[i]);
		http_batch_add(batch, (HttpRequest *) list_nth(reqs, i), false);
	}

	api_modify_batch(conn, batch, reqs, api_create_done, &created);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

static void
api_delete_done(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply, void *arg)
{
	if (reply->code != 404)
	{
		(*(int *) arg)++;
		api_note_change((ApiCall *) req->arg, true);
	}
	parse_reply_free(reply);
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
	List	   *reqs = NIL;
	ListCell   *lc;
	int			deleted = 0;

	foreach(lc, org_ids)
		api_check_org_id((char *) lfirst(lc), "org_id");
	foreach(lc, org_ids)
	{
		HttpRequest *req = api_request(conn, API_DELETE, lfirst(lc), 0);

		opsmig_forget_org(lfirst(lc));
		reqs = lappend(reqs, req);
		http_batch_add(batch, req, false);
	}
	api_modify_batch(conn, batch, reqs, api_delete_done, &deleted);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return deleted;
}
