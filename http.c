/*-------------------------------------------------------------------------
 *
 * http.c
 *		  The HTTP transport: one libcurl multi handle per user mapping, a
 *		  pool of persistent easy handles, and batches of requests driven by
 *		  a wait loop that sleeps on the backend's latch and curl's sockets.
 *
 * Why this shape:
 *	- Easy handles are kept and reused, because each one remembers its digest
 *	  nonce: a reused handle answers the server's challenge once and then
 *	  sends credentials up front with an increasing nonce count.  The multi
 *	  handle keeps the TCP/TLS connections alive between queries.
 *	- The transport counts nothing and raises no API error: each finished
 *	  attempt carries its facts (HttpFailure, bytes, time, connections) and a
 *	  batch's owner is told of each through its done hook, at the moment it
 *	  completes, so a reply that completes but is never handed out (LIMIT,
 *	  an error elsewhere) is counted all the same.  Two hooks of the FDW
 *	  stay here because only the transport sees the moments they mark: the
 *	  activity view's (a request queued, attached, detached) and the rate
 *	  limiter's (a token taken just before a request goes, given back when
 *	  a request is abandoned); moving them out would change when they fire.
 *	- The wait loop uses a WaitEventSet with MyLatch and every socket curl
 *	  asked us to watch, so Ctrl-C, pg_cancel_backend() and statement_timeout
 *	  (all of which set the latch) wake it at once; CHECK_FOR_INTERRUPTS()
 *	  then throws, and the batch's memory context callback detaches whatever
 *	  was in flight.  Nothing here ever throws from inside a curl callback:
 *	  the callbacks only record, using malloc, and report failure to curl.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster.h"
#include "compat.h"
#include "http.h"
#include "ratelimit.h"

/* Hard ceiling on pooled handles, whatever max_concurrent_requests says. */
#define HTTP_MAX_HANDLES	128

/*
 * Sockets curl may ask us to watch at once.  A transfer usually has one,
 * but happy eyeballs connects over IPv6 and IPv4 side by side, and curl
 * announces a transfer's new sockets before it withdraws its old ones (the
 * resolver's, the losing attempt's); it never asks for more than
 * MAX_SOCKSPEREASYHANDLE (5) per handle.  Two per handle was too few: 128
 * handles connecting to a dual-stack host name overflowed the table.
 */
#ifndef HTTP_MAX_SOCKETS		/* test/socket-check.sh builds with a tiny one */
#define HTTP_MAX_SOCKETS	(HTTP_MAX_HANDLES * 5)
#endif

struct HttpHandle
{
	CURL	   *easy;
	bool		in_use;
	bool		configured;
};

typedef struct HttpSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} HttpSocket;

struct HttpSession
{
	CURLM	   *multi;
	HttpConfig	config;			/* strings copied into the session's context */
	const char *user;
	const char *password;
	RateLimiter *limiter;		/* the API's rate limit (ratelimit.c); may be NULL */
	bool		paced;			/* it held a request back in this round */
	struct curl_slist *headers;

	HttpHandle	handles[HTTP_MAX_HANDLES];
	int			nhandles;

	HttpSocket	sockets[HTTP_MAX_SOCKETS];
	int			nsockets;
	bool		socket_overflow;	/* a socket could not be tracked */
	int64		timer_deadline; /* curl's timer, in TimestampTz; -1 none */

	dlist_head	batches;		/* batches alive on this session */
};

struct HttpBatch
{
	HttpSession *session;
	int			max_in_flight;
	int			running;
	int			queued;
	dlist_head	queue;			/* HTTP_REQ_QUEUED, in start order */
	dlist_head	done;			/* HTTP_REQ_DONE, in completion order */
	dlist_head	all;			/* every request ever added */
	dlist_node	session_node;
	HttpBatchHook hook;			/* the owner's accounting, or NULL */
	void	   *hook_arg;
	MemoryContext cxt;
	MemoryContextCallback cleanup;
};

/* libcurl writes up to CURL_ERROR_SIZE bytes into HttpRequest.failure_text. */
StaticAssertDecl(sizeof(((HttpRequest *) NULL)->failure_text) >= CURL_ERROR_SIZE,
				 "HttpRequest.failure_text is smaller than CURL_ERROR_SIZE");

static void http_batch_cleanup(void *arg);
static void http_detach(HttpRequest *req);

static bool curl_initialized = false;

static void
http_global_init(void)
{
	if (curl_initialized)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
				 errmsg("could not initialize libcurl")));
	curl_initialized = true;
}

/*
 * curl callbacks.  They run inside curl_multi_socket_action(), so they must
 * not throw: they use malloc and report trouble by their return value.
 */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	HttpSession *s = (HttpSession *) userp;
	int			i;

	for (i = 0; i < s->nsockets; i++)
		if (s->sockets[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < s->nsockets)
			s->sockets[i] = s->sockets[--s->nsockets];
		return 0;
	}
	if (i == s->nsockets)
	{
		if (s->nsockets >= HTTP_MAX_SOCKETS)
		{
			s->socket_overflow = true;
			return -1;
		}
		s->nsockets++;
	}
	s->sockets[i].fd = fd;
	s->sockets[i].what = what;
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	HttpSession *s = (HttpSession *) userp;

	if (timeout_ms < 0)
		s->timer_deadline = -1;
	else
		s->timer_deadline = GetCurrentTimestamp() + (int64) timeout_ms * 1000;
	return 0;
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	HttpRequest *req = (HttpRequest *) userdata;
	HttpSession *s = req->batch->session;
	size_t		n = size * nmemb;

	if (req->buf_len + n > (size_t) s->config.max_response_bytes)
	{
		req->too_large = true;
		return 0;				/* curl stops with CURLE_WRITE_ERROR */
	}
	if (req->buf_len + n + 1 > req->buf_cap)
	{
		size_t		cap = Max(req->buf_cap * 2, req->buf_len + n + 1);
		char	   *nbuf;

		cap = Max(cap, 1024);
		nbuf = realloc(req->buf, cap);
		if (nbuf == NULL)
			return 0;
		req->buf = nbuf;
		req->buf_cap = cap;
	}
	memcpy(req->buf + req->buf_len, ptr, n);
	req->buf_len += n;
	req->buf[req->buf_len] = '\0';
	return n;
}

/* Copy a header value, trimmed, into a fixed buffer. */
static void
header_value(const char *line, size_t len, size_t namelen, char *dst, size_t dstlen)
{
	const char *v = line + namelen;
	const char *end = line + len;
	size_t		n;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	n = Min((size_t) (end - v), dstlen - 1);
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* A RateLimit-* count: a whole number, or -1 when it is not one. */
static int
header_count(const char *line, size_t len, size_t namelen)
{
	char		value[32];
	char	   *end;
	long		n;

	header_value(line, len, namelen, value, sizeof(value));
	if (value[0] < '0' || value[0] > '9')
		return -1;
	n = strtol(value, &end, 10);
	return (*end == '\0' && n <= INT_MAX) ? (int) n : -1;
}

/*
 * Every response's headers pass here, including the 401 of a digest
 * challenge that curl answers by itself: a new status line starts a new
 * response, so what we kept of the previous one is dropped.
 */
static size_t
header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
	HttpRequest *req = (HttpRequest *) userdata;
	size_t		len = size * nitems;
	char		value[64];

	if (len > 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		const char *sp = memchr(line, ' ', len);

		if (sp && sp + 4 <= line + len && strncmp(sp + 1, "401", 3) == 0)
			req->responses_401++;
		if (!(sp && sp + 1 < line + len && sp[1] == '1'))
			req->responses_seen++;
		req->content_type[0] = '\0';
		req->retry_after = -1;
		req->ratelimit_limit = -1;
		req->ratelimit_remaining = -1;
		req->buf_len = 0;
	}
	else if (len > 13 && pg_strncasecmp(line, "content-type:", 13) == 0)
		header_value(line, len, 13, req->content_type, sizeof(req->content_type));
	else if (len > 12 && pg_strncasecmp(line, "retry-after:", 12) == 0)
	{
		header_value(line, len, 12, value, sizeof(value));
		if (value[0] >= '0' && value[0] <= '9')
			req->retry_after = (int) Min(strtol(value, NULL, 10), 86400);
		else
		{
			time_t		when = curl_getdate(value, NULL);

			if (when > 0)
				req->retry_after = (int) Max(0, Min(when - time(NULL), 86400));
		}
	}
	else if (len > 16 && pg_strncasecmp(line, "ratelimit-limit:", 16) == 0)
		req->ratelimit_limit = header_count(line, len, 16);
	else if (len > 20 && pg_strncasecmp(line, "ratelimit-remaining:", 20) == 0)
		req->ratelimit_remaining = header_count(line, len, 20);
	return len;
}

/*
 * A POST or DELETE must reach the API at most once.  libcurl resends a
 * request when a reused connection dies before any reply, and the second
 * leg of a digest challenge goes out on a reused connection (its own, or
 * any idle one of the session's pool), so its loss would be resent
 * silently.  libcurl calls prereq_cb before it sends each request, on a new
 * or a reused connection alike: a change that was sent and has no reply yet
 * is not sent again, and the caller reports it as one whose outcome is
 * unknown.  A second leg after a complete 401 has sent == replies, and goes.
 * (The proxy's CONNECT is part of the connection, not a request here; its
 * reply is kept from header_cb by CURLOPT_SUPPRESS_CONNECT_HEADERS.)
 */
static int
prereq_cb(void *clientp, char *conn_primary_ip, char *conn_local_ip,
		  int conn_primary_port, int conn_local_port)
{
	HttpRequest *req = (HttpRequest *) clientp;

	if (req == NULL || strcmp(req->method, "GET") == 0)
		return CURL_PREREQFUNC_OK;
	if (req->requests_sent > req->responses_seen)
	{
		req->resend_refused = true;
		return CURL_PREREQFUNC_ABORT;
	}
	req->requests_sent++;
	return CURL_PREREQFUNC_OK;
}

/*
 * Settings that stay for the handle's life; per-request ones are set in
 * http_start().  Called again after curl_easy_reset() to drop a handle's
 * digest state.
 */
static void
handle_configure(HttpSession *s, HttpHandle *h)
{
	const HttpConfig *o = &s->config;
	CURL	   *e = h->easy;

	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long) CURLAUTH_DIGEST);
	curl_easy_setopt(e, CURLOPT_USERNAME, s->user);
	curl_easy_setopt(e, CURLOPT_PASSWORD, s->password);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) o->request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->ssl_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->ssl_verify ? 2L : 0L);
	if (o->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
	/* An empty string means "no proxy", even if http_proxy is set. */
	curl_easy_setopt(e, CURLOPT_PROXY, o->proxy ? o->proxy : "");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "opsmig_fdw/1.0");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * Removing a transfer that is still resolving a host name (cancel,
	 * statement_timeout, LIMIT, ReScan) would otherwise join the resolver
	 * thread, which blocks until getaddrinfo() gives up, for seconds or
	 * minutes.  With this the thread is left to finish on its own and frees
	 * what it holds when it does.  (libcurl >= 7.87; older ones block.)
	 */
	curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L);
#endif
	h->configured = true;
}

/*
 * Check an http(s) URL with libcurl's own parser, the one that will use it.
 * The first problem found is returned; for HTTP_URL_UNPARSABLE, *why is
 * libcurl's text (static).  Nothing of the URL is kept.
 */
HttpUrlProblem
http_check_url(const char *url, bool refuse_query, const char **why)
{
	CURLU	   *u = curl_url();
	CURLUcode	rc;
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *user = NULL;
	char	   *query = NULL;
	char	   *fragment = NULL;
	HttpUrlProblem problem = HTTP_URL_OK;

	*why = NULL;
	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK)
	{
		problem = HTTP_URL_UNPARSABLE;
		*why = curl_url_strerror(rc);
	}
	else
	{
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(u, CURLUPART_HOST, &host, 0);
		curl_url_get(u, CURLUPART_USER, &user, 0);
		curl_url_get(u, CURLUPART_QUERY, &query, 0);
		curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
		if (user != NULL)
			problem = HTTP_URL_CREDENTIALS;
		else if (scheme == NULL ||
				 (pg_strcasecmp(scheme, "http") != 0 && pg_strcasecmp(scheme, "https") != 0))
			problem = HTTP_URL_SCHEME;
		else if (host == NULL || host[0] == '\0')
			problem = HTTP_URL_NO_HOST;
		else if (refuse_query && (query != NULL || fragment != NULL))
			problem = HTTP_URL_QUERY;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(query);
	curl_free(fragment);
	curl_url_cleanup(u);
	return problem;
}

HttpSession *
http_session_create(MemoryContext cxt, const HttpConfig *config,
					const char *user, const char *password)
{
	HttpSession *s;

	http_global_init();
	s = MemoryContextAllocZero(cxt, sizeof(HttpSession));
	s->config = *config;
	if (config->ca_file)
		s->config.ca_file = MemoryContextStrdup(cxt, config->ca_file);
	if (config->proxy)
		s->config.proxy = MemoryContextStrdup(cxt, config->proxy);
	s->user = user;
	s->password = password;
	s->timer_deadline = -1;
	dlist_init(&s->batches);

	s->multi = curl_multi_init();
	if (s->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
	curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
	/* Keep as many idle connections as we may have requests in flight. */
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS,
					  (long) Max(config->max_connections, 4));

	/* "Expect:" stops curl from waiting for 100-continue on POST. */
	s->headers = curl_slist_append(NULL, "Accept: application/json");
	if (s->headers)
		s->headers = curl_slist_append(s->headers, "Content-Type: application/json");
	if (s->headers)
		s->headers = curl_slist_append(s->headers, "Expect:");
	if (s->headers == NULL)
	{
		curl_multi_cleanup(s->multi);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("out of memory building HTTP headers")));
	}
	return s;
}

/* From now on every request of the session waits for the pacer's token. */
void
http_session_set_limiter(HttpSession *s, RateLimiter *limiter)
{
	s->limiter = limiter;
}

/* Requests of every batch of the session now on the wire. */
static int
http_session_in_flight(HttpSession *s)
{
	dlist_iter	biter;
	int			running = 0;

	dlist_foreach(biter, &s->batches)
		running += dlist_container(HttpBatch, session_node, biter.cur)->running;
	return running;
}

bool
http_session_busy(HttpSession *s)
{
	return !dlist_is_empty(&s->batches);
}

void
http_session_destroy(HttpSession *s)
{
	int			i;

	Assert(!http_session_busy(s));
	for (i = 0; i < s->nhandles; i++)
		curl_easy_cleanup(s->handles[i].easy);
	s->nhandles = 0;
	curl_multi_cleanup(s->multi);
	curl_slist_free_all(s->headers);
	pfree(s);
}

/* Take an idle handle from the pool, or make one. */
static HttpHandle *
handle_acquire(HttpSession *s)
{
	int			i;
	HttpHandle *h;

	for (i = 0; i < s->nhandles; i++)
		if (!s->handles[i].in_use)
			break;
	if (i == s->nhandles)
	{
		if (s->nhandles >= HTTP_MAX_HANDLES)
			return NULL;
		h = &s->handles[s->nhandles];
		h->easy = curl_easy_init();
		if (h->easy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl easy handle")));
		h->configured = false;
		s->nhandles++;
	}
	h = &s->handles[i];
	if (!h->configured)
		handle_configure(s, h);
	h->in_use = true;
	return h;
}

/* Attach a queued request to the multi handle. */
static bool
http_start(HttpSession *s, HttpRequest *req)
{
	HttpHandle *h = handle_acquire(s);
	CURL	   *e;
	CURLMcode	mrc;

	if (h == NULL)
		return false;
	e = h->easy;
	if (req->fresh_auth)
	{
		/* Forget the old nonce: the server said it no longer takes it. */
		curl_easy_reset(e);
		handle_configure(s, h);
		req->fresh_auth = false;
	}

	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);

	/*
	 * A request that changes something goes on a new connection.  On a
	 * reused keep-alive connection that the server closed just as we sent,
	 * libcurl resends the request once on a new one; a POST the server had
	 * applied then meets 409 and a DELETE 404, and the user would be told
	 * the link already existed, or was already gone.  A new connection is
	 * never resent: the request is sent once, and a failure after it is
	 * reported as one whose outcome is unknown.  GETs reuse connections.
	 */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT,
					 strcmp(req->method, "GET") == 0 ? 0L : 1L);
	if (strcmp(req->method, "POST") == 0)
	{
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(req->body ? req->body : ""));
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	}
	else if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	/* libcurl's own words ("SSL certificate problem: ...") beat strerror's. */
	req->failure_text[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->failure_text);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, req);

	req->http_code = 0;
	req->failure = HTTP_FAIL_NONE;
	req->too_large = false;
	req->content_type[0] = '\0';
	req->retry_after = -1;
	req->ratelimit_limit = -1;
	req->ratelimit_remaining = -1;
	req->responses_401 = 0;
	req->requests_sent = 0;
	req->responses_seen = 0;
	req->resend_refused = false;
	req->buf_len = 0;
	req->attempts++;

	mrc = curl_multi_add_handle(s->multi, e);
	if (mrc != CURLM_OK)
	{
		h->in_use = false;
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start an HTTP request: %s",
						curl_multi_strerror(mrc))));
	}
	req->handle = h;
	req->state = HTTP_REQ_RUNNING;
	req->batch->running++;
	opsmig_activity_request_started(req->kind);
	return true;
}

/* Take a request off the multi handle and give its easy handle back. */
static void
http_detach(HttpRequest *req)
{
	HttpSession *s = req->batch->session;

	if (req->handle == NULL)
		return;
	curl_multi_remove_handle(s->multi, req->handle->easy);
	/* The buffer goes with the request; an idle handle must not point at it. */
	curl_easy_setopt(req->handle->easy, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(req->handle->easy, CURLOPT_PREREQDATA, NULL);
	req->handle->in_use = false;
	req->handle = NULL;
	req->batch->running--;
	opsmig_activity_request_stopped();
}

/*
 * libcurl's code for a failed transfer, as the case the caller tells
 * apart.  The order matters: a reply too large is cut off by our own write
 * callback, and a timeout before any connection is not a late one.
 */
static HttpFailure
http_failure(HttpRequest *req, CURLcode result)
{
	if (result == CURLE_OK)
		return HTTP_FAIL_NONE;
	if (req->too_large)
		return HTTP_FAIL_TOO_LARGE;
	if (result == CURLE_OPERATION_TIMEDOUT)
		return req->connected || req->resend_refused ?
			HTTP_FAIL_TIMEOUT : HTTP_FAIL_CONNECT_TIMEOUT;
	if (req->resend_refused)
		return HTTP_FAIL_RESEND_REFUSED;
	switch (result)
	{
		case CURLE_COULDNT_CONNECT:
			return HTTP_FAIL_CONNECT;
		case CURLE_PEER_FAILED_VERIFICATION:
			/* libcurl's text names the "target host name" for a mismatch. */
			if (strstr(req->failure_text, "target host name") != NULL)
				return HTTP_FAIL_TLS_HOST_NAME;
			return HTTP_FAIL_TLS_CA;
		case CURLE_SSL_CACERT_BADFILE:
			return HTTP_FAIL_TLS_CA;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_UNSUPPORTED_PROTOCOL:
			return HTTP_FAIL_NOT_SENT;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
			return HTTP_FAIL_RESET;
		default:
			return HTTP_FAIL_OTHER;
	}
}

/* A transfer finished: record its outcome and move it to the done list. */
static void
http_finish(HttpRequest *req, CURLcode result)
{
	CURL	   *e = req->handle->easy;
	long		code = 0;
	long		nconnects = 0;
	double		total = 0;
	double		connect = 0;

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &nconnects);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &total);
	curl_easy_getinfo(e, CURLINFO_CONNECT_TIME, &connect);

	req->http_code = (result == CURLE_OK) ? code : 0;
	if (result != CURLE_OK && req->failure_text[0] == '\0')
		strlcpy(req->failure_text, curl_easy_strerror(result), sizeof(req->failure_text));
	else if (result == CURLE_OK)
		req->failure_text[0] = '\0';
	if (result != CURLE_OK && req->resend_refused)
		strlcpy(req->failure_text,
				"it closed before a reply came, and the request was not sent again",
				sizeof(req->failure_text));
	req->elapsed_ms = total * 1000.0;
	req->connected = connect > 0 || code != 0;
	req->connections = nconnects;
	req->failure = http_failure(req, result);
	req->challenges = req->responses_401 - (code == 401 ? 1 : 0);
	if (req->challenges < 0)
		req->challenges = 0;

	http_detach(req);
	opsmig_activity_request_done();
	req->response_len = req->buf_len;
	if (req->batch->hook)
		req->batch->hook(req, HTTP_EVENT_DONE, req->batch->hook_arg);

	/* From here on palloc may throw: the malloc'd buffer is still owned. */
	req->response = MemoryContextAlloc(req->batch->cxt, req->buf_len + 1);
	if (req->buf_len > 0)
		memcpy(req->response, req->buf, req->buf_len);
	req->response[req->buf_len] = '\0';

	req->state = HTTP_REQ_DONE;
	dlist_push_tail(&req->batch->done, &req->node);
}

/*
 * May this request go now, by the API's rate limit?  If not, it stays
 * queued and we wake when the pacer says a token may be there.
 */
static bool
http_pace(HttpSession *s, HttpRequest *req, TimestampTz now, TimestampTz *next_wake)
{
	dlist_iter	biter;
	int			queued = 0;
	int64		wait;

	/* A token taken for a start that found no handle is still good. */
	if (req->ratelimit_out)
		return true;
	dlist_foreach(biter, &s->batches)
		queued += dlist_container(HttpBatch, session_node, biter.cur)->queued;
	wait = ratelimit_acquire(s->limiter, queued, http_session_in_flight(s),
							 &req->paced_ms, &req->ratelimit_seq,
							 &req->ratelimit_in_flight);
	if (wait <= 0)
	{
		req->ratelimit_out = true;
		if (req->paced_ms > 0 && req->batch->hook)
			req->batch->hook(req, HTTP_EVENT_PACED, req->batch->hook_arg);
		return true;
	}
	s->paced = true;
	if (*next_wake < 0 || now + wait < *next_wake)
		*next_wake = now + wait;
	return false;
}

/* Start whatever may start: free slots, backoff delays passed, tokens. */
static void
http_start_ready(HttpSession *s, TimestampTz now, TimestampTz *next_wake)
{
	dlist_iter	biter;

	dlist_foreach(biter, &s->batches)
	{
		HttpBatch  *b = dlist_container(HttpBatch, session_node, biter.cur);
		dlist_mutable_iter riter;

		dlist_foreach_modify(riter, &b->queue)
		{
			HttpRequest *req = dlist_container(HttpRequest, node, riter.cur);

			if (b->running >= b->max_in_flight)
				break;
			if (req->not_before > now)
			{
				if (*next_wake < 0 || req->not_before < *next_wake)
					*next_wake = req->not_before;
				continue;
			}
			if (s->limiter && !http_pace(s, req, now, next_wake))
				return;			/* the rate limit holds every batch back */
			dlist_delete(&req->node);
			b->queued--;
			if (!http_start(s, req))
			{
				/* No handle left: put it back and wait for one. */
				dlist_push_head(&b->queue, &req->node);
				b->queued++;
				return;
			}
		}
	}
}

static void
http_collect(HttpSession *s)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(s->multi, &left)) != NULL)
	{
		HttpRequest *req = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
		if (req != NULL && req->state == HTTP_REQ_RUNNING)
			http_finish(req, msg->data.result);
	}
}

/*
 * socket_cb could not track a socket.  curl has marked the multi handle
 * dead (CURLM_ABORTED_BY_CALLBACK); it comes back to life once the
 * transfers are removed, which the error does.  The flag must go too, or
 * every later query of the session would fail.
 */
static void
http_report_overflow(HttpSession *s)
{
	s->socket_overflow = false;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_TOO_MANY_HANDLES),
			 errmsg("too many sockets open for HTTP requests"),
			 errdetail("libcurl asked to watch more than %d sockets at once.",
					   HTTP_MAX_SOCKETS),
			 errhint("Lower max_concurrent_requests, or close cursors that are still open on the same server.")));
}

static void
http_socket_action(HttpSession *s, curl_socket_t fd, int ev)
{
	int			still_running;
	CURLMcode	mrc;

	mrc = curl_multi_socket_action(s->multi, fd, ev, &still_running);
	if (s->socket_overflow)
		http_report_overflow(s);
	if (mrc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("HTTP transport failure: %s", curl_multi_strerror(mrc))));
}

/*
 * Sleep until a socket curl watches is ready, curl's timer or a backoff
 * delay is due, or the latch is set (cancel, timeout, termination).
 */
static void
http_wait(HttpSession *s, TimestampTz next_wake)
{
	WaitEventSet *set;
	WaitEvent	events[HTTP_MAX_SOCKETS + 2];
	curl_socket_t ready_fd[HTTP_MAX_SOCKETS];
	int			ready_ev[HTTP_MAX_SOCKETS];
	int			nready = 0;
	int			nevents;
	int			i;
	long		timeout_ms;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = s->timer_deadline;

	if (next_wake >= 0 && (wake < 0 || next_wake < wake))
		wake = next_wake;
	if (wake < 0)
		timeout_ms = 1000;		/* should not happen with work in flight */
	else if (wake <= now)
		timeout_ms = 0;
	else
		timeout_ms = Min((wake - now + 999) / 1000, 1000);

	if (timeout_ms > 0)
	{
		set = opsmig_create_wait_event_set(s->nsockets + 2);
		PG_TRY();
		{
			AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
			AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
			for (i = 0; i < s->nsockets; i++)
			{
				uint32		ev = 0;

				if (s->sockets[i].what & CURL_POLL_IN)
					ev |= WL_SOCKET_READABLE;
				if (s->sockets[i].what & CURL_POLL_OUT)
					ev |= WL_SOCKET_WRITEABLE;
				if (ev)
					AddWaitEventToSet(set, ev, s->sockets[i].fd, NULL, NULL);
			}
			nevents = WaitEventSetWait(set, timeout_ms, events, lengthof(events),
									   PG_WAIT_EXTENSION);
			for (i = 0; i < nevents; i++)
			{
				if (events[i].events & WL_LATCH_SET)
					ResetLatch(MyLatch);
				else if (events[i].events & WL_SOCKET_MASK)
				{
					int			ev = 0;

					if (events[i].events & WL_SOCKET_READABLE)
						ev |= CURL_CSELECT_IN;
					if (events[i].events & WL_SOCKET_WRITEABLE)
						ev |= CURL_CSELECT_OUT;
					ready_fd[nready] = events[i].fd;
					ready_ev[nready++] = ev;
				}
			}
		}
		PG_FINALLY();
		{
			FreeWaitEventSet(set);
		}
		PG_END_TRY();
	}

	for (i = 0; i < nready; i++)
		http_socket_action(s, ready_fd[i], ready_ev[i]);
	if (s->timer_deadline >= 0 && s->timer_deadline <= GetCurrentTimestamp())
	{
		s->timer_deadline = -1;
		http_socket_action(s, CURL_SOCKET_TIMEOUT, 0);
	}
}

HttpBatch *
http_batch_create(HttpSession *s, int max_in_flight, HttpBatchHook hook,
				  void *hook_arg)
{
	HttpBatch  *b = palloc0(sizeof(HttpBatch));

	b->session = s;
	b->hook = hook;
	b->hook_arg = hook_arg;
	b->max_in_flight = Max(1, Min(max_in_flight, HTTP_MAX_HANDLES));
	b->cxt = CurrentMemoryContext;
	dlist_init(&b->queue);
	dlist_init(&b->done);
	dlist_init(&b->all);
	dlist_push_tail(&s->batches, &b->session_node);

	/*
	 * Whatever ends this memory context (end of scan, error, cancel) takes
	 * the batch's transfers off the multi handle and frees their buffers.
	 */
	b->cleanup.func = http_batch_cleanup;
	b->cleanup.arg = b;
	MemoryContextRegisterResetCallback(b->cxt, &b->cleanup);
	return b;
}

static void
http_batch_cleanup(void *arg)
{
	HttpBatch  *b = (HttpBatch *) arg;
	dlist_iter	iter;

	dlist_foreach(iter, &b->all)
	{
		HttpRequest *req = dlist_container(HttpRequest, all_node, iter.cur);

		/* Removing an unfinished transfer makes curl close its connection. */
		http_detach(req);
		/* Nobody will tell the pacer about it now: it is out no longer. */
		if (req->ratelimit_out && b->session->limiter)
			ratelimit_abandon(b->session->limiter, req->ratelimit_seq);
		req->ratelimit_out = false;
		free(req->buf);
		req->buf = NULL;
	}
	dlist_delete(&b->session_node);
}

void
http_batch_add(HttpBatch *b, HttpRequest *req, bool urgent)
{
	req->batch = b;
	req->state = HTTP_REQ_QUEUED;
	req->not_before = 0;
	req->retry_after = -1;
	dlist_push_tail(&b->all, &req->all_node);
	if (urgent)
		dlist_push_head(&b->queue, &req->node);
	else
		dlist_push_tail(&b->queue, &req->node);
	b->queued++;
	opsmig_activity_request_queued();
}

/* Put a delivered request back at the head of the queue. */
static void
http_requeue(HttpBatch *b, HttpRequest *req, int delay_ms, bool fresh_auth)
{
	Assert(req->state == HTTP_REQ_DELIVERED);
	req->state = HTTP_REQ_QUEUED;
	req->not_before = GetCurrentTimestamp() + (int64) delay_ms * 1000;
	req->fresh_auth = fresh_auth;
	if (req->response)
		pfree(req->response);
	req->response = NULL;
	req->response_len = 0;
	dlist_push_head(&b->queue, &req->node);
	b->queued++;
}

void
http_batch_retry(HttpBatch *b, HttpRequest *req, int delay_ms, bool fresh_auth)
{
	http_requeue(b, req, delay_ms, fresh_auth);
	opsmig_activity_request_queued();
}

/*
 * After http_batch_next() was interrupted: the next request that completed
 * but was not handed out yet, without driving or waiting for anything.
 * NULL when there is none.
 */
HttpRequest *
http_batch_take_done(HttpBatch *b)
{
	HttpRequest *req;

	if (dlist_is_empty(&b->done))
		return NULL;
	req = dlist_container(HttpRequest, node, dlist_pop_head_node(&b->done));
	req->state = HTTP_REQ_DELIVERED;
	return req;
}

/*
 * Take every request of this batch that was not sent yet (waiting for a
 * slot, or for a retry's backoff) out of it: they will never be sent.
 * Requests in flight are left to finish.
 */
void
http_batch_drop_queued(HttpBatch *b)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &b->queue)
	{
		HttpRequest *req = dlist_container(HttpRequest, node, iter.cur);

		dlist_delete(&req->node);
		req->state = HTTP_REQ_DROPPED;
	}
	b->queued = 0;
}

/*
 * Has this request been sent (or begun to be), with no outcome known yet?
 * Not while it is still resolving the host name, connecting or in the TLS
 * handshake: libcurl sets the pretransfer time only once it starts to send.
 */
bool
http_request_in_flight(const HttpRequest *req)
{
	curl_off_t	pretransfer = 0;

	if (req->state != HTTP_REQ_RUNNING)
		return false;
	/* Finished, but its reply was lost (out of memory in http_finish). */
	if (req->handle == NULL)
		return true;
	if (curl_easy_getinfo(req->handle->easy, CURLINFO_PRETRANSFER_TIME_T,
						  &pretransfer) == CURLE_OK && pretransfer == 0)
		return false;
	return true;
}

/*
 * Send again a request the API refused unprocessed because of its rate
 * limit: the pacer says when, and it is no failed attempt.
 */
void
http_batch_resend(HttpBatch *b, HttpRequest *req)
{
	http_requeue(b, req, 0, false);
	req->attempts--;
}

bool
http_batch_idle(HttpBatch *b)
{
	return b->queued == 0 && b->running == 0 && dlist_is_empty(&b->done);
}

/*
 * Return the next completed request of this batch, driving the transfers
 * (of every batch on the session) until one completes.  NULL when the batch
 * has nothing left queued, running or undelivered.
 */
HttpRequest *
http_batch_next(HttpBatch *b)
{
	HttpSession *s = b->session;

	for (;;)
	{
		TimestampTz next_wake = -1;

		if (!dlist_is_empty(&b->done))
		{
			HttpRequest *req = dlist_container(HttpRequest, node,
											   dlist_pop_head_node(&b->done));

			req->state = HTTP_REQ_DELIVERED;
			/* The buffer was copied to req->response; keep it for reuse. */
			return req;
		}
		if (b->queued == 0 && b->running == 0)
			return NULL;

		s->paced = false;
		http_start_ready(s, GetCurrentTimestamp(), &next_wake);
		http_collect(s);
		if (!dlist_is_empty(&b->done))
			continue;
		if (s->socket_overflow)
			http_report_overflow(s);
		/* Nothing on the wire, only retries or the rate limit to wait for. */
		if (b->running == 0 && next_wake > 0)
			opsmig_activity_set_phase(s->paced ? OPSMIG_PHASE_RATE_LIMIT :
									  OPSMIG_PHASE_BACKOFF, next_wake);
		http_wait(s, next_wake);
		http_collect(s);
		CHECK_FOR_INTERRUPTS();
	}
}
