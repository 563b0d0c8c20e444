/*-------------------------------------------------------------------------
 *
 * api_batch.c
 *		  Batches of API requests on the connection's HTTP session: each
 *		  finished attempt counted (the transport counts nothing), the retry
 *		  policy (backoff, Retry-After, the fresh digest challenge, 429s to
 *		  the pacer), and api_settle, which turns an attempt into a reply
 *		  for the scan or the change, or into an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/pg_prng.h"
#include "mb/pg_wchar.h"
#include "storage/proc.h"
#include "utils/timestamp.h"

#include "api_int.h"
#include "ratelimit.h"

/* Backoff: first delay, ceiling, and ceiling on a server's Retry-After. */
#define RETRY_BASE_MS		200
#define RETRY_MAX_MS		10000
#define RETRY_AFTER_MAX_S	60

/* ----------------------------------------------------------------
 * Counting
 * ----------------------------------------------------------------
 */

/* Add one finished attempt's facts to one set of counters. */
static void
api_tally(OpsmigStats *st, const HttpRequest *req)
{
	st->requests[((ApiCall *) req->arg)->op]++;
	st->challenges += req->challenges;
	st->connections += req->connections;
	st->bytes_received += req->response_len;
	st->total_ms += req->elapsed_ms;
	if (req->elapsed_ms > st->max_ms)
		st->max_ms = req->elapsed_ms;
}

/*
 * The batch's hook: each attempt is counted as it completes, whether or not
 * anyone takes its reply.  The rate limiter counted its wait in the
 * connection's counters already; the caller's share is added as the wait
 * ends, since the attempt after it may never complete.
 */
static void
api_count_attempt(HttpRequest *req, HttpEvent event, void *arg)
{
	ApiBatch   *ab = (ApiBatch *) arg;

	if (event == HTTP_EVENT_PACED)
	{
		if (ab->work)
			ab->work->rate_limit_wait_ms += req->paced_ms;
		return;
	}
	api_tally(opsmig_conn_stats(ab->conn), req);
	opsmig_conn_count_elapsed(ab->conn, req->elapsed_ms);
	if (ab->work)
		api_tally(ab->work, req);
}

/* A batch on the connection's session, counted in its stats and *work. */
ApiBatch *
api_batch_create(OpsmigConn *conn, OpsmigStats *work)
{
	ApiBatch   *ab = palloc0(sizeof(ApiBatch));

	ab->conn = conn;
	ab->work = work;
	ab->http = http_batch_create(opsmig_conn_http(conn),
								 opsmig_conn_options(conn)->max_concurrent_requests,
								 api_count_attempt, ab);
	return ab;
}

/* Send a failed attempt again after delay_ms, and count the retry. */
static void
api_retry(ApiBatch *ab, HttpRequest *req, int delay_ms, bool fresh_auth)
{
	http_batch_retry(ab->http, req, delay_ms, fresh_auth);
	opsmig_conn_stats(ab->conn)->retries++;
	if (ab->work)
		ab->work->retries++;
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
	bool		idempotent = (call->op == OPSMIG_REQ_LIST || call->op == OPSMIG_REQ_STATUS);
	bool		retryable;
	double		delay;

	if (req->attempts > opsmig_conn_options(conn)->max_retries)
		return -1;
	if (code == 0)
		retryable = req->failure != HTTP_FAIL_TOO_LARGE &&
			req->failure != HTTP_FAIL_TIMEOUT &&
			req->failure != HTTP_FAIL_CONNECT_TIMEOUT &&
			(idempotent || req->failure == HTTP_FAIL_CONNECT);
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
	ratelimit_learn(opsmig_conn_limiter(conn), req->ratelimit_seq, req->ratelimit_in_flight,
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
bool
api_settle(ApiBatch *ab, HttpRequest *req, OpsmigReply *reply)
{
	OpsmigConn *conn = ab->conn;
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
						 opsmig_conn_options(conn)->envelope, code, reply, why, sizeof(why));
		code = reply->code;
		if (pr == OPSMIG_PARSE_BAD_SHAPE && opsmig_conn_options(conn)->envelope && req->http_code == 200)
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
			parse_reply_free(reply);
			api_report_content_type(conn, call, req);
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
		http_batch_resend(ab->http, req);
		if (ab->work)
			ab->work->errors_429++;
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
		api_retry(ab, req, 0, true);
		return false;
	}

	delay = api_retry_delay(conn, call, req, code);
	if (delay >= 0)
	{
		/* The delay itself is jittered; the message gives its ceiling. */
		elog(DEBUG1, "opsmig_fdw: %s %s: %s%s, retry %d of %d within %d ms",
			 req->method, api_path(conn, req),
			 code ? "HTTP " : req->failure_text,
			 code ? psprintf("%ld", code) : "",
			 req->attempts, opsmig_conn_options(conn)->max_retries,
			 req->retry_after >= 0 ? delay : api_backoff_ceiling(req));
		parse_reply_free(reply);
		api_retry(ab, req, delay, false);
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
		(call->op == OPSMIG_REQ_LIST || pr != OPSMIG_PARSE_OK ||
		 !parse_reply_is_api_error(reply, code));
	if (code == 404 && !not_api &&
		(call->op == OPSMIG_REQ_STATUS || call->op == OPSMIG_REQ_DELETE))
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
char *
api_reply_status(OpsmigConn *conn, HttpRequest *req, OpsmigReply *reply)
{
	ApiCall    *call = (ApiCall *) req->arg;
	char		status[OPSMIG_STATUS_MAX + 1];
	char		why[160];
	OpsmigParseResult pr;
	size_t		i;

	if (call->op == OPSMIG_REQ_CREATE && reply->root == NULL)
	{
		for (i = 0; i < req->response_len; i++)
			if (req->response[i] != ' ' && req->response[i] != '\t' &&
				req->response[i] != '\r' && req->response[i] != '\n')
				break;
		if (i == req->response_len)
			return NULL;
	}
	if (call->op == OPSMIG_REQ_CREATE)
		pr = parse_reply_create_status(reply, status, sizeof(status), why, sizeof(why));
	else
		pr = parse_reply_status(reply, status, sizeof(status), why, sizeof(why));
	if (pr != OPSMIG_PARSE_OK || reply->root == NULL)
	{
		if (reply->root == NULL)
			snprintf(why, sizeof(why), call->op == OPSMIG_REQ_CREATE ?
					 "the reply is not a JSON document" :
					 "the reply is not a JSON document with a \"status\"");
		parse_reply_free(reply);
		api_report_reply(conn, call, req, why);
	}
	parse_reply_free(reply);
	return status[0] ? api_text(status) : NULL;
}
