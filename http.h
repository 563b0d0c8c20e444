/*-------------------------------------------------------------------------
 *
 * http.h
 *		  The HTTP transport of opsmig_fdw: a libcurl multi session per user
 *		  mapping and batches of requests driven through an interruptible
 *		  wait loop.
 *
 * The transport knows nothing of the API: no URLs, JSON, meaning of status
 * codes, SQLSTATEs or counters.  It sends what it is given, up to a number
 * of requests in flight, and hands back each request as it completes with
 * what happened to it (its HttpFailure, bytes, time, connections); the
 * caller (the api*.c files) decides what a reply means, whether to retry
 * it, and counts it.  http.c is the only file that includes libcurl.
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
typedef struct HttpRequest HttpRequest;

/* What the session needs of the server's options, and nothing else. */
typedef struct HttpConfig
{
	int			connect_timeout_ms;
	int			request_timeout_ms;
	int			max_response_bytes;
	int			max_connections;	/* idle connections kept (at least 4) */
	bool		ssl_verify;
	const char *ca_file;		/* NULL: the system's CA store */
	const char *proxy;			/* NULL: no proxy, whatever the environment says */
} HttpConfig;

/*
 * Why a transfer brought no reply.  Each value is a distinct case for the
 * caller: whether the request can have reached the server, whether a change
 * may be retried, and what to tell the user.  failure_text holds libcurl's
 * own words for it.
 */
typedef enum HttpFailure
{
	HTTP_FAIL_NONE = 0,			/* a reply came (any HTTP status) */
	HTTP_FAIL_NOT_SENT,			/* host name not resolved, scheme unsupported,
								 * TLS handshake or client certificate failed:
								 * nothing went */
	HTTP_FAIL_CONNECT,			/* no connection: refused or unreachable */
	HTTP_FAIL_CONNECT_TIMEOUT,	/* no connection within connect_timeout */
	HTTP_FAIL_TLS_HOST_NAME,	/* the certificate is for another host name */
	HTTP_FAIL_TLS_CA,			/* the certificate's CA is not trusted, or the
								 * CA file is unusable */
	HTTP_FAIL_TIMEOUT,			/* connected; no complete reply in time */
	HTTP_FAIL_TOO_LARGE,		/* the reply passed max_response_bytes */
	HTTP_FAIL_RESEND_REFUSED,	/* a change went, its connection closed before
								 * a reply, and it was not sent again */
	HTTP_FAIL_RESET,			/* connected, then the connection failed or the
								 * reply was cut off */
	HTTP_FAIL_OTHER				/* anything else: it may have reached the server */
} HttpFailure;

/*
 * What the owner of a batch hears of its requests, to count them (the
 * transport counts nothing): HTTP_EVENT_PACED when the pacer lets a request
 * go after holding it back (paced_ms), HTTP_EVENT_DONE when an attempt
 * completes, before it is handed out.  A wait is told when it ends, not with
 * the attempt: the attempt may never complete (LIMIT, an error, a cancel).
 * The hook must not throw.
 */
typedef enum HttpEvent
{
	HTTP_EVENT_PACED,
	HTTP_EVENT_DONE
} HttpEvent;

typedef void (*HttpBatchHook) (HttpRequest *req, HttpEvent event, void *arg);

typedef enum HttpRequestState
{
	HTTP_REQ_QUEUED,			/* waiting for a free slot or for not_before */
	HTTP_REQ_RUNNING,			/* attached to the multi handle */
	HTTP_REQ_DONE,				/* completed, not yet handed to the caller */
	HTTP_REQ_DELIVERED,			/* handed to the caller */
	HTTP_REQ_DROPPED			/* taken out of the queue, never sent */
} HttpRequestState;

struct HttpRequest
{
	/* Set by the caller before http_batch_add(). */
	const char *method;			/* "GET", "POST" or "DELETE" */
	char	   *url;
	char	   *body;			/* JSON request body, or NULL */
	OpsmigRequestKind kind;		/* an opaque tag for the activity view
								 * (cluster.c); the transport reads nothing
								 * into it */
	void	   *arg;			/* the caller's own pointer */

	/* Set by the transport when the request completes. */
	long		http_code;		/* final HTTP status; 0 if there was none */
	HttpFailure failure;		/* HTTP_FAIL_NONE when a reply came */
	char		failure_text[256];	/* libcurl's words for the failure */
	char	   *response;		/* body, NUL-terminated, in the batch's context */
	size_t		response_len;	/* also the bytes received in this attempt */
	char		content_type[128];
	int			retry_after;	/* seconds from Retry-After, or -1 */
	int			challenges;		/* digest 401 round trips in this attempt */
	double		elapsed_ms;		/* this attempt's wall time */
	long		connections;	/* TCP connections opened in this attempt */
	double		paced_ms;		/* the pacer held the session back this long
								 * just before this attempt went */
	bool		connected;		/* a TCP connection was made (or reused) */
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
	bool		too_large;		/* the body passed max_response_bytes */
	bool		resend_refused; /* a POST/DELETE sent without reply was not
								 * sent again on a new connection */
};

/* What http_check_url() found wrong with a URL, first problem first. */
typedef enum HttpUrlProblem
{
	HTTP_URL_OK = 0,
	HTTP_URL_UNPARSABLE,		/* libcurl cannot use it; *why says why */
	HTTP_URL_CREDENTIALS,		/* it carries a user name or password */
	HTTP_URL_SCHEME,			/* not http or https */
	HTTP_URL_NO_HOST,
	HTTP_URL_QUERY				/* a query string or fragment, when refused */
} HttpUrlProblem;

extern HttpUrlProblem http_check_url(const char *url, bool refuse_query,
									 const char **why);

extern HttpSession *http_session_create(MemoryContext cxt,
										const HttpConfig *config,
										const char *user, const char *password);
extern void http_session_destroy(HttpSession *session);
extern void http_session_set_limiter(HttpSession *session, RateLimiter *limiter);
extern bool http_session_busy(HttpSession *session);

extern HttpBatch *http_batch_create(HttpSession *session, int max_in_flight,
									HttpBatchHook hook, void *hook_arg);
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
