/*-------------------------------------------------------------------------
 *
 * http.h
 *		  The HTTP transport of opsmig_fdw: a libcurl multi session per user
 *		  mapping and batches of requests driven through an interruptible
 *		  wait loop.
 *
 * The transport knows nothing of the API: no URLs, JSON or meaning of status
 * codes.  It sends what it is given, up to a number of requests in flight,
 * and hands back each request as it completes; the caller (api.c) decides
 * what a reply means and whether to retry it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_HTTP_H
#define OPSMIG_HTTP_H

#include "datatype/timestamp.h"
#include "lib/ilist.h"
#include "opsmig_fdw.h"

typedef struct HttpBatch HttpBatch;
typedef struct HttpHandle HttpHandle;

typedef enum HttpRequestState
{
	HTTP_REQ_QUEUED,			/* waiting for a free slot or for not_before */
	HTTP_REQ_RUNNING,			/* attached to the multi handle */
	HTTP_REQ_DONE,				/* completed, not yet handed to the caller */
	HTTP_REQ_DELIVERED,			/* handed to the caller */
	HTTP_REQ_DROPPED			/* taken out of the queue, never sent */
} HttpRequestState;

typedef struct HttpRequest
{
	/* Set by the caller before http_batch_add(). */
	const char *method;			/* "GET", "POST" or "DELETE" */
	char	   *url;
	char	   *body;			/* JSON request body, or NULL */
	OpsmigRequestKind kind;		/* for the counters */
	void	   *arg;			/* the caller's own pointer */

	/* Set by the transport when the request completes. */
	long		http_code;		/* final HTTP status; 0 if there was none */
	int			curl_code;		/* CURLcode; 0 when a response came */
	char		curl_error[256];	/* libcurl's text for curl_code */
	char	   *response;		/* body, NUL-terminated, in the batch's context */
	size_t		response_len;
	bool		too_large;		/* the body passed max_response_bytes */
	char		content_type[128];
	int			retry_after;	/* seconds from Retry-After, or -1 */
	int			challenges;		/* digest 401 round trips in this attempt */
	double		elapsed_ms;		/* this attempt's wall time */
	bool		connected;		/* a TCP connection was made (or reused) */
	bool		resend_refused; /* a POST/DELETE sent without reply was not
								 * sent again on a new connection */
	int			attempts;		/* how many times it has been sent */
	int			ratelimit_limit;	/* RateLimit-Limit, or -1 */
	int			ratelimit_remaining;	/* RateLimit-Remaining, or -1 */
	uint64		ratelimit_seq;	/* the pacer's token it went with */
	int			ratelimit_in_flight;	/* other requests out when it went */
	bool		ratelimit_out;	/* holds a token the pacer has not heard back of */
	int			rate_limited;	/* 429s answered to it so far */

	/* Transport-private. */
	HttpRequestState state;
	HttpBatch  *batch;
	HttpHandle *handle;
	dlist_node	node;			/* in the batch's queue or done list */
	dlist_node	all_node;		/* in the batch's list of every request */
	TimestampTz not_before;		/* retry backoff: do not start before */
	bool		fresh_auth;		/* start with a new digest challenge */
	char	   *buf;			/* malloc'd: filled from a curl callback */
	size_t		buf_len;
	size_t		buf_cap;
	int			responses_401;	/* status lines seen with code 401 */
	int			requests_sent;	/* requests curl sent (changes only) */
	int			responses_seen; /* final (non-1xx) status lines received */
} HttpRequest;

extern HttpSession *http_session_create(MemoryContext cxt,
										const OpsmigServerOptions *opts,
										const char *user, const char *password,
										OpsmigStats *stats, double *peak_ms);
extern void http_session_destroy(HttpSession *session);
extern void http_session_set_limiter(HttpSession *session, RateLimiter *limiter);
extern bool http_session_busy(HttpSession *session);

/* A batch counts its requests in the session's stats and, if given, in *work. */
extern HttpBatch *http_batch_create(HttpSession *session, int max_in_flight,
									OpsmigStats *work);
extern void http_batch_add(HttpBatch *batch, HttpRequest *req, bool urgent);
extern void http_batch_retry(HttpBatch *batch, HttpRequest *req,
							 int delay_ms, bool fresh_auth);
extern void http_batch_resend(HttpBatch *batch, HttpRequest *req);
extern HttpRequest *http_batch_next(HttpBatch *batch);
extern HttpRequest *http_batch_take_done(HttpBatch *batch);
extern void http_batch_drop_queued(HttpBatch *batch);
extern bool http_request_in_flight(const HttpRequest *req);
extern bool http_batch_idle(HttpBatch *batch);

#endif							/* OPSMIG_HTTP_H */
