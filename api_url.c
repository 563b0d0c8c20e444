/*-------------------------------------------------------------------------
 *
 * api_url.c
 *		  The API's endpoints: the URL of each call (base URL, path, query,
 *		  the envelope parameter) and the request that carries it.
 *
 *	GET    /orgs?pageNum=N&itemsPerPage=500               list organizations
 *	GET    /orgs/{orgId}/liveExport/migrationLink/status  one link's status
 *	POST   /orgs/{orgId}/liveExport/migrationLink         create ({"linkToken"})
 *	DELETE /orgs/{orgId}/liveExport/migrationLink         delete
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "api_int.h"

/*
 * Build a URL from the base URL, a path and query parameters.  Path pieces
 * are org ids validated by api_check_org_id(); query values are numbers or constants; and
 * the envelope parameter is added here, once, for every request.
 */
static char *
api_url(OpsmigConn *conn, const char *path, const char *query)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s%s", opsmig_conn_options(conn)->base_url, path);
	if (query && *query)
	{
		appendStringInfo(&buf, "?%s", query);
		first = false;
	}
	if (opsmig_conn_options(conn)->envelope)
		appendStringInfo(&buf, "%cenvelope=true", first ? '?' : '&');
	return buf.data;
}

/* Method and path of each call; %s is the validated org id. */
static const struct
{
	const char *method;
	const char *path;
}			api_calls[OPSMIG_NUM_REQ_KINDS] = {
	[OPSMIG_REQ_LIST] = {"GET", "/orgs"},
	[OPSMIG_REQ_STATUS] = {"GET", "/orgs/%s/liveExport/migrationLink/status"},
	[OPSMIG_REQ_CREATE] = {"POST", "/orgs/%s/liveExport/migrationLink"},
	[OPSMIG_REQ_DELETE] = {"DELETE", "/orgs/%s/liveExport/migrationLink"},
};

/* A request for one call, its ApiCall riding along in req->arg. */
HttpRequest *
api_request(OpsmigConn *conn, OpsmigRequestKind op, const char *org_id, int page)
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
	if (op == OPSMIG_REQ_LIST)
		snprintf(query, sizeof(query), "pageNum=%d&itemsPerPage=%d", page, ORGS_PER_PAGE);

	req->arg = call;
	req->method = api_calls[op].method;
	req->kind = op;
	req->url = api_url(conn, path, query);
	return req;
}

/* The request's path and query, for log lines (the base URL is known). */
const char *
api_path(OpsmigConn *conn, HttpRequest *req)
{
	return req->url + strlen(opsmig_conn_options(conn)->base_url);
}
