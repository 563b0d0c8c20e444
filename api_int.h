/*-------------------------------------------------------------------------
 *
 * api_int.h
 *		  Declarations shared by the files of the API client (api_*.c) and
 *		  by nobody else: what rides along with each request, a batch and
 *		  the counters it goes to, and what one file offers another.
 *
 * The API client, by job:
 *	api_url.c		the API's endpoints: URLs and the request of each call
 *	api_error.c		the one place a reply or a transport failure becomes an
 *					ereport: SQLSTATE, the API's words as DETAIL, the HINT
 *	api_batch.c		batches of requests: counting each attempt, the retry
 *					policy, settling a finished attempt into a reply
 *	api_scan.c		the scan: listing pages, status requests, the cache
 *	api_change.c	create and delete, and the note of what they changed
 *	api_parse.c		the JSON parsers (plain C, fuzzed)
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_API_INT_H
#define OPSMIG_API_INT_H

#include "api.h"
#include "api_parse.h"
#include "http.h"

/* The API's page size ceiling: fewest pages for a listing. */
#define ORGS_PER_PAGE		500

/* What rides along with each request, for the reply handler. */
typedef struct ApiCall
{
	OpsmigRequestKind op;
	char		org_id[OPSMIG_ORG_ID_LEN + 1];
	char	   *org_name;
	int			page;			/* listing: the page number */
	int			row;			/* create: the caller's row index */
	bool		reauth_done;	/* the once-only fresh digest challenge */
} ApiCall;

/*
 * A batch of requests, and the counters its attempts go to: the
 * connection's and, when given, the caller's own (*work, for EXPLAIN
 * ANALYZE).  The transport counts nothing; api_count_attempt() does.
 */
typedef struct ApiBatch
{
	HttpBatch  *http;
	OpsmigConn *conn;
	OpsmigStats *work;			/* the caller's own counters, or NULL */
} ApiBatch;

/* api_url.c */
extern HttpRequest *api_request(OpsmigConn *conn, OpsmigRequestKind op,
								const char *org_id, int page);
extern const char *api_path(OpsmigConn *conn, HttpRequest *req);

/* api_error.c: each api_report_* throws */
extern bool api_maybe_reached(HttpRequest *req);
extern void api_report_http(OpsmigConn *conn, ApiCall *call, HttpRequest *req,
							const OpsmigReply *reply, bool not_api);
extern void api_report_transport(OpsmigConn *conn, ApiCall *call,
								 HttpRequest *req);
extern void api_report_reply(OpsmigConn *conn, ApiCall *call,
							 HttpRequest *req, const char *why);
extern void api_report_content_type(OpsmigConn *conn, ApiCall *call,
									HttpRequest *req);
extern void api_report_too_many_pages(OpsmigConn *conn, int max_pages);
extern void api_count_error(OpsmigConn *conn, HttpRequest *req, long code);

/* api_batch.c */
extern ApiBatch *api_batch_create(OpsmigConn *conn, OpsmigStats *work);
extern bool api_settle(ApiBatch *ab, HttpRequest *req, OpsmigReply *reply);
extern char *api_reply_status(OpsmigConn *conn, HttpRequest *req,
							  OpsmigReply *reply);

#endif							/* OPSMIG_API_INT_H */
