/*-------------------------------------------------------------------------
 *
 * api_error.c
 *		  The one place of the API client that turns what came back into an
 *		  ERROR: an HTTP error reply, a 2xx reply that is not what the API
 *		  documents, or a transport failure (http.h's HttpFailure) each get
 *		  their SQLSTATE, the API's own words (or libcurl's) as DETAIL and a
 *		  HINT; and each error counted (stats.c says which counter).
 *
 * Whether a failed transfer can have reached the API (api_maybe_reached)
 * lives here too: it decides between "could not connect" and "the
 * connection failed", and api_change.c's "may have created/deleted".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "api_int.h"

/* A malformed organization id is refused before it can reach a URL. */
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
 * The message of an ERROR: the operation and what it was about.  One
 * literal message per operation, so that each can be translated.
 */
static int
api_errmsg(OpsmigConn *conn, ApiCall *call)
{
	switch (call->op)
	{
		case OPSMIG_REQ_LIST:
			return errmsg("could not list the organizations of server \"%s\"",
						  opsmig_conn_server_name(conn));
		case OPSMIG_REQ_STATUS:
			return errmsg("could not get the migration link status of organization \"%s\"",
						  call->org_id);
		case OPSMIG_REQ_CREATE:
			return errmsg("could not create the migration link of organization \"%s\"",
						  call->org_id);
		case OPSMIG_REQ_DELETE:
			return errmsg("could not delete the migration link of organization \"%s\"",
						  call->org_id);
		case OPSMIG_NUM_REQ_KINDS:
			break;
	}
	return 0;					/* not reached */
}

/* The hint of every answer that shows base_url leads somewhere else. */
static int
api_base_url_hint(OpsmigConn *conn)
{
	return errhint("Check that base_url of server \"%s\" points at the Ops Manager public API, whose base URL ends in /api/public/v1.0.",
				   opsmig_conn_server_name(conn));
}

/*
 * "Already linked" may come as 400 (FACTS.md): the errorCode says so plainly,
 * and it is then the same answer as a 409 to a create.
 */
static bool
api_already_linked(OpsmigRequestKind op, long code, const OpsmigApiError *err)
{
	return op == OPSMIG_REQ_CREATE &&
		(code == 409 ||
		 (code == 400 && strcmp(err->error_code, "ORG_MIGRATION_LINK_ALREADY_EXISTS") == 0));
}

static int
api_http_sqlstate(OpsmigRequestKind op, long code, const OpsmigApiError *err)
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
			return op == OPSMIG_REQ_CREATE ? ERRCODE_UNIQUE_VIOLATION :
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
api_http_hint(OpsmigConn *conn, OpsmigRequestKind op, long code, const OpsmigApiError *err)
{
	/* A key without the role is refused with 401 or 403 (FACTS.md). */
	if ((code == 401 || code == 403) && strcmp(err->error_code, "NOT_ORG_ADMIN") == 0)
		return errhint("The API key \"%s\" needs the Organization Owner role on this organization.",
					   opsmig_conn_public_key(conn));
	if (code == 401)
		return errhint("Check public_key and private_key in the user mapping for server \"%s\"; the API key \"%s\" was refused.",
					   opsmig_conn_server_name(conn), opsmig_conn_public_key(conn));
	if (code == 403)
		return errhint("If the API key has an IP access list, add this database server's address to it.");
	if (code == 404 && op != OPSMIG_REQ_LIST)
		return errhint("Check that the organization exists and that the API key can see it.");
	if (api_already_linked(op, code, err))
		return errhint("The organization is already linked: DELETE its row first to link it again.");
	if (code == 409)
		return errhint("Wait for the running live migration to finish, or cancel it, then delete the link.");
	if (code == 429)
		return errhint("The API is rate limited; retry later, or lower max_concurrent_requests of server \"%s\".",
					   opsmig_conn_server_name(conn));
	if (code >= 500)
		return errhint("The API answered with a server error; retry later.");
	return 0;
}

/*
 * Can this failed transfer have reached the API?  Not when it failed to
 * resolve, connect or finish the TLS handshake; any later failure (reset,
 * no reply, a reply cut off) leaves a POST or DELETE possibly applied.
 */
bool
api_maybe_reached(HttpRequest *req)
{
	switch (req->failure)
	{
		case HTTP_FAIL_NOT_SENT:
		case HTTP_FAIL_CONNECT:
		case HTTP_FAIL_CONNECT_TIMEOUT:
		case HTTP_FAIL_TLS_HOST_NAME:
		case HTTP_FAIL_TLS_CA:
			return false;
		case HTTP_FAIL_NONE:
		case HTTP_FAIL_TIMEOUT:
		case HTTP_FAIL_TOO_LARGE:
		case HTTP_FAIL_RESEND_REFUSED:	/* a change sent, its reply lost */
		case HTTP_FAIL_RESET:
		case HTTP_FAIL_OTHER:
			break;
	}
	return true;
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
void
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
 * trusted already), so the two TLS failures get different hints.
 */
static int
api_connect_hint(OpsmigConn *conn, HttpRequest *req)
{
	if (req->failure == HTTP_FAIL_TLS_HOST_NAME)
		return errhint("The server's certificate is not issued for the host name in base_url of server \"%s\": use a host name the certificate names.",
					   opsmig_conn_server_name(conn));
	if (req->failure == HTTP_FAIL_TLS_CA)
		return errhint("The server's certificate was not accepted: set ca_file of server \"%s\" to the CA that signed it.",
					   opsmig_conn_server_name(conn));
	return errhint("Check base_url of server \"%s\" and that the API is reachable from the database server.",
				   opsmig_conn_server_name(conn));
}

void
api_report_transport(OpsmigConn *conn, ApiCall *call, HttpRequest *req)
{
	const OpsmigServerOptions *opts = opsmig_conn_options(conn);
	const char *server = opsmig_conn_server_name(conn);

	switch (req->failure)
	{
		case HTTP_FAIL_TOO_LARGE:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
					 api_errmsg(conn, call),
					 errdetail("The reply is larger than max_response_bytes (%d bytes).",
							   opts->max_response_bytes),
					 errhint("Raise max_response_bytes of server \"%s\" if the reply is expected to be this large.",
							 server)));
			break;
		case HTTP_FAIL_CONNECT_TIMEOUT:
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 api_errmsg(conn, call),
					 errdetail("No connection to %s within connect_timeout (%d ms).",
							   opts->base_url, opts->connect_timeout_ms),
					 errhint("Check that the API is reachable from the database server, or raise connect_timeout of server \"%s\".",
							 server)));
			break;
		case HTTP_FAIL_TIMEOUT:
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 api_errmsg(conn, call),
					 errdetail("No complete reply within request_timeout (%d ms).",
							   opts->request_timeout_ms),
					 errhint("Raise request_timeout of server \"%s\" if the API is slow.",
							 server)));
			break;
		default:
			break;
	}

	if (!api_maybe_reached(req))
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 api_errmsg(conn, call),
				 errdetail("Could not connect to %s: %s.",
						   opts->base_url, api_sentence(req->failure_text)),
				 api_connect_hint(conn, req)));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 api_errmsg(conn, call),
			 errdetail("The connection to the API failed: %s.",
					   api_sentence(req->failure_text))));
}

/* A 2xx reply that is not what the API documents. */
void
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

void
api_count_error(OpsmigConn *conn, HttpRequest *req, long code)
{
	opsmig_stats_count_error(opsmig_conn_stats(conn), code);
}

/* A 2xx reply whose body is not JSON by its Content-Type. */
void
api_report_content_type(OpsmigConn *conn, ApiCall *call, HttpRequest *req)
{
	char		ctype[64];

	parse_printable(req->content_type, strlen(req->content_type),
					ctype, sizeof(ctype));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_REPLY),
			 api_errmsg(conn, call),
			 errdetail("HTTP %ld: the reply's Content-Type is \"%s\", not application/json.",
					   req->http_code, ctype),
			 api_base_url_hint(conn)));
}

/* The organization listing did not end within max_pages pages. */
void
api_report_too_many_pages(OpsmigConn *conn, int max_pages)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_ERROR),
			 errmsg("the organization listing of server \"%s\" goes on past %d pages",
					opsmig_conn_server_name(conn), max_pages)));
}
