/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *		  The pacer: a client-side model of the API's token bucket per (API
 *		  host, public key), learnt from the replies, that holds requests back
 *		  until the bucket has a token for them; max_requests_per_minute as a
 *		  second bucket of our own; and the shared-memory table that lets every
 *		  backend draw from one bucket when the library is preloaded.
 *
 * Why pace instead of retrying: the API refills its bucket at a fixed rate,
 * so once the burst is spent the fastest any client can go is that rate.  A
 * client that fires at will and retries each 429 spends its retries and
 * fails; one that sends a request only when the bucket has a token finishes
 * at the limit with almost no 429s.
 *
 * What the model knows, and from where:
 *	- capacity: RateLimit-Limit, or a 429's parameters;
 *	- tokens left: RateLimit-Remaining, less the requests that may reach
 *	  the server after the one it answers;
 *	- refill rate: only a 429's parameters say it.  Until one does, a bucket
 *	  known to be empty lets one request out at a time (a probe), whose 429
 *	  teaches the rate;
 *	- Retry-After: nothing goes before it.
 * A server that says nothing is not limited, unless max_requests_per_minute
 * is set: that bucket holds at most one second's worth of requests, so they
 * go out evenly.
 *
 * Shared state: a fixed table of buckets, keyed by a 64-bit hash of the API
 * host and public key (the private key never comes here), protected by one
 * LWLock of a named tranche.  The lock is held only for arithmetic: nothing
 * inside can throw, sleep or allocate, and LWLocks are released on error
 * and at backend exit anyway.  A backend that dies holding a probe lease
 * leaves nothing stuck: leases and blocks expire by the clock, and the
 * requests a statement abandons (an error, a cancel, a LIMIT, FATAL) are
 * taken out of the in-flight count when its transfers are cleaned up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "storage/proc.h"
#include "utils/timestamp.h"

#include "ratelimit.h"

/* Buckets in the table: one per (API host, public key) in use. */
#define RL_SLOTS			64
/* How long a probe may stay unanswered before another may go. */
#define RL_PROBE_LEASE_US	(1000 * 1000)
/*
 * A bucket idle this long has nothing in flight: requests a statement
 * abandoned (an error, a cancel, a killed backend) stop counting then.
 */
#define RL_IDLE_US			((int64) 30 * 1000 * 1000)
/* What the server said is forgotten when it has said nothing for this long. */
#define RL_FORGET_US		((int64) 300 * 1000 * 1000)
/*
 * Tokens kept in reserve: requests do not reach the server exactly as far
 * apart as they left, so a pacer at the very edge of the bucket would see a
 * 429 now and then.  Holding back what refills in this long (at most a
 * quarter of the capacity) absorbs that jitter; it costs that delay once,
 * not the rate.
 */
#define RL_JITTER_S			0.05
/* Waits after a 429 that says nothing: 200 ms doubling, up to 10 s. */
#define RL_BACKOFF_MIN_US	(200 * 1000)
#define RL_BACKOFF_MAX_US	(10 * 1000 * 1000)
#define RL_TRANCHE			"opsmig_fdw rate limit"
/*
 * The longest wait the pacer computes (about 100 years): a server may say a
 * refill rate so slow that the wait overflows int64, which came out negative.
 */
#define RL_MAX_WAIT_US		(100.0 * 365 * 86400 * 1000000)
/* How often a statement over its budget looks again for its requests out. */
#define RL_HOLD_US			(100 * 1000)

typedef struct RateBucket
{
	uint64		key;			/* hash of host and public key; 0 = free */
	TimestampTz last_used;
	/* The API's bucket as we believe it to be. */
	double		capacity;		/* 0: not known to be limited */
	double		rate;			/* tokens a second; 0: not known */
	double		tokens;			/* at "at" */
	TimestampTz at;
	TimestampTz learned_at;		/* when the server last said anything */
	TimestampTz blocked_until;	/* Retry-After: nothing goes before */
	TimestampTz probe_until;	/* a lone request is out to learn the rate */
	uint64		probe_seq;		/* its token */
	uint64		seq;			/* tokens handed out so far */
	int			in_flight;		/* requests sent and not yet answered */
	TimestampTz active_at;		/* last request sent or answered */
	/* max_requests_per_minute: our own bucket */
	double		own_tokens;
	TimestampTz own_at;			/* 0: not used yet (full) */
} RateBucket;

typedef struct RateTable
{
	RateBucket	slots[RL_SLOTS];
} RateTable;

/* Per user mapping, in the backend. */
struct RateLimiter
{
	uint64		key;
	const OpsmigConn *conn;		/* names and options for messages */
	OpsmigStats *stats;
	TimestampTz held_since;		/* a request is held back since; 0 none */
	TimestampTz stmt_start;		/* the statement the fields below count */
	int64		stmt_wait_us;	/* waits of this statement that ended */
	bool		stmt_logged;	/* the DEBUG1 line was given */
	bool		stmt_over;		/* its budget ran out while requests were out */
};

/* What the pacer saw under the lock, for messages made after it. */
typedef struct BucketView
{
	double		capacity;
	double		rate;
	double		own_rate;
	int64		need_us;		/* until the last waiting request may go */
} BucketView;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static RateTable *shared_table = NULL;
static LWLock *shared_lock = NULL;
static RateTable *local_table = NULL;

/* ----------------------------------------------------------------
 * Shared memory
 * ----------------------------------------------------------------
 */

static void
rl_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RateTable)));
	RequestNamedLWLockTranche(RL_TRANCHE, 1);
}

static void
rl_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared_table = ShmemInitStruct("opsmig_fdw rate limit buckets",
								   sizeof(RateTable), &found);
	if (!found)
		memset(shared_table, 0, sizeof(RateTable));
	shared_lock = &(GetNamedLWLockTranche(RL_TRANCHE))->lock;
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Called by _PG_init.  Only a library loaded by shared_preload_libraries
 * can have shared memory; loaded later, each backend keeps its own table.
 */
void
opsmig_ratelimit_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rl_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rl_shmem_startup;
}

/* The table, locked when shared.  Call table_unlock() soon after. */
static RateTable *
table_lock(void)
{
	if (shared_table)
	{
		LWLockAcquire(shared_lock, LW_EXCLUSIVE);
		return shared_table;
	}
	if (local_table == NULL)
		local_table = MemoryContextAllocZero(TopMemoryContext, sizeof(RateTable));
	return local_table;
}

static void
table_unlock(void)
{
	if (shared_table)
		LWLockRelease(shared_lock);
}

/*
 * The bucket of this key, made (in a free slot, or the least recently used
 * one) when there is none.  Under the lock: no allocation, no error.
 */
static RateBucket *
bucket_get(RateTable *t, uint64 key, TimestampTz now)
{
	RateBucket *victim = &t->slots[0];
	int			i;

	for (i = 0; i < RL_SLOTS; i++)
	{
		RateBucket *b = &t->slots[i];

		if (b->key == key)
		{
			b->last_used = now;
			return b;
		}
		if (victim->key != 0 && (b->key == 0 || b->last_used < victim->last_used))
			victim = b;
	}
	memset(victim, 0, sizeof(RateBucket));
	victim->key = key;
	victim->at = now;
	victim->last_used = now;
	return victim;
}

/* ----------------------------------------------------------------
 * The bucket's arithmetic (under the lock)
 * ----------------------------------------------------------------
 */

static double
own_rate(int per_minute)
{
	return per_minute / 60.0;
}

/* Tokens refilled since the last look. */
static void
bucket_refill(RateBucket *b, TimestampTz now, int per_minute)
{
	if (now - b->active_at > RL_IDLE_US)
		b->in_flight = 0;

	if (now > b->at)
	{
		if (b->capacity > 0 && b->rate > 0)
			b->tokens = Min(b->capacity,
							b->tokens + b->rate * (now - b->at) / 1e6);
		b->at = now;
	}
	if (per_minute > 0)
	{
		/* One second's worth, at least one: an even pace, not a burst. */
		double		cap = Max(1.0, own_rate(per_minute));

		if (b->own_at == 0)
			b->own_tokens = cap;
		else if (now > b->own_at)
			b->own_tokens = Min(cap, b->own_tokens +
								own_rate(per_minute) * (now - b->own_at) / 1e6);
		b->own_at = now;
	}
}

/* A wait in microseconds, as int64 however slow the rate that gave it. */
static int64
wait_us(double us)
{
	return (int64) ceil(Min(us, RL_MAX_WAIT_US));
}

/* Microseconds until n more requests may have gone; a lower bound. */
static int64
bucket_need(RateBucket *b, TimestampTz now, int n, int per_minute)
{
	double		need = 0;

	if (b->blocked_until > now)
		need = b->blocked_until - now;
	if (b->capacity > 0 && b->rate > 0 && n > b->tokens)
		need = Max(need, (n - b->tokens) / b->rate * 1e6);
	if (per_minute > 0 && n > b->own_tokens)
		need = Max(need, (n - b->own_tokens) / own_rate(per_minute) * 1e6);
	return wait_us(need);
}

/*
 * Take a token for one request: 0 when it may go (*seq numbers the token),
 * else the microseconds to wait before asking again.
 */
static int64
bucket_take(RateBucket *b, TimestampTz now, int per_minute, int in_flight,
			uint64 *seq, int *in_flight_at_send)
{
	int64		wait = 0;
	bool		probe = false;
	double		need = 1 + Min(b->rate * RL_JITTER_S, b->capacity / 4);

	bucket_refill(b, now, per_minute);
	if (b->capacity > 0 && now - b->learned_at > RL_FORGET_US)
	{
		/* A server silent for long may have dropped its limit. */
		b->capacity = b->rate = 0;
	}
	if (b->blocked_until > now)
		wait = b->blocked_until - now;
	if (b->capacity > 0 && b->tokens < need)
	{
		if (b->rate > 0)
			wait = Max(wait, wait_us((need - b->tokens) / b->rate * 1e6));
		else if (b->probe_until > now)
			wait = Max(wait, b->probe_until - now);
		else if (in_flight > 0)
			wait = Max(wait, RL_BACKOFF_MIN_US / 4);	/* the probe goes alone */
		else
			probe = true;
	}
	if (per_minute > 0 && b->own_tokens < 1)
		wait = Max(wait, wait_us((1 - b->own_tokens) / own_rate(per_minute) * 1e6));
	if (wait > 0)
		return wait;

	if (b->capacity > 0)
		b->tokens -= 1;
	if (per_minute > 0)
		b->own_tokens -= 1;
	*seq = ++b->seq;
	*in_flight_at_send = b->in_flight++;
	b->active_at = now;
	if (probe)
	{
		b->probe_until = now + RL_PROBE_LEASE_US;
		b->probe_seq = *seq;
	}
	return 0;
}

/* ----------------------------------------------------------------
 * The pacer, as http.c and api_batch.c see it
 * ----------------------------------------------------------------
 */

/* The part of base_url that names the API host: scheme://host[:port]. */
static uint64
limiter_key(const char *base_url, const char *public_key)
{
	const char *p = strstr(base_url, "://");
	size_t		hostlen;
	StringInfoData buf;
	uint64		key;

	p = p ? p + 3 : base_url;
	hostlen = strcspn(p, "/") + (p - base_url);
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, base_url, hostlen);
	appendStringInfoChar(&buf, '\n');
	appendStringInfoString(&buf, public_key);
	key = hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0);
	pfree(buf.data);
	return key ? key : 1;
}

RateLimiter *
ratelimit_create(MemoryContext cxt, const OpsmigConn *conn, OpsmigStats *stats)
{
	RateLimiter *rl = MemoryContextAllocZero(cxt, sizeof(RateLimiter));

	rl->key = limiter_key(opsmig_conn_options(conn)->base_url,
						  opsmig_conn_public_key(conn));
	rl->conn = conn;
	rl->stats = stats;
	return rl;
}

/* Statement-level bookkeeping starts afresh with each statement. */
static void
limiter_statement(RateLimiter *rl)
{
	TimestampTz start = GetCurrentStatementStartTimestamp();

	if (rl->stmt_start != start)
	{
		rl->stmt_start = start;
		rl->stmt_wait_us = 0;
		rl->stmt_logged = false;
		rl->stmt_over = false;
		rl->held_since = 0;
	}
}

/*
 * 53400: the statement's waiting requests cannot all go within the limit
 * named (statement_timeout or rate_limit_wait), which leaves left_us.
 */
static void
report_over_budget(RateLimiter *rl, int nwaiting, const BucketView *v,
				   int64 left_us, bool by_statement_timeout)
{
	const OpsmigConn *conn = rl->conn;
	const char *limit = by_statement_timeout ? "statement_timeout" : "rate_limit_wait";
	double		rate = v->rate > 0 ? v->rate : v->own_rate;

	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("the rate limit of the API key \"%s\" leaves too little time for this statement",
					opsmig_conn_public_key(conn)),
			 rate > 0 ?
			 errdetail_plural("%d organization was not yet asked; at %.3g requests a second that takes at least %.0f s, and %s leaves %.0f s.",
							  "%d organizations were not yet asked; at %.3g requests a second that takes at least %.0f s, and %s leaves %.0f s.",
							  nwaiting, nwaiting, rate, v->need_us / 1e6, limit,
							  Max(left_us, 0) / 1e6) :
			 errdetail_plural("%d organization was not yet asked; the API asks to wait %.0f s, and %s leaves %.0f s.",
							  "%d organizations were not yet asked; the API asks to wait %.0f s, and %s leaves %.0f s.",
							  nwaiting, nwaiting, v->need_us / 1e6, limit,
							  Max(left_us, 0) / 1e6),
			 by_statement_timeout ?
			 errhint("Raise statement_timeout, ask for fewer organizations (WHERE org_id = ...), or set cache_ttl of server \"%s\".",
					 opsmig_conn_server_name(conn)) :
			 errhint("Raise rate_limit_wait of server \"%s\", ask for fewer organizations (WHERE org_id = ...), or set cache_ttl.",
					 opsmig_conn_server_name(conn))));
}

/*
 * Can the statement's waiting requests all go before statement_timeout and
 * before its rate_limit_wait runs out?  If not, refuse it now with 53400
 * when report, else just say so: better than waiting to fail.
 */
static bool
limiter_over_budget(RateLimiter *rl, TimestampTz now, int nwaiting,
					const BucketView *v, bool report)
{
	int			wait_ms = opsmig_conn_options(rl->conn)->rate_limit_wait_ms;
	int64		left;

	if (StatementTimeout > 0)
	{
		left = rl->stmt_start + (int64) StatementTimeout * 1000 - now;
		if (v->need_us > left)
		{
			if (report)
				report_over_budget(rl, nwaiting, v, left, true);
			return true;
		}
	}
	if (wait_ms >= 0)
	{
		left = (int64) wait_ms * 1000 - rl->stmt_wait_us - (now - rl->held_since);
		if (v->need_us > left)
		{
			if (report)
				report_over_budget(rl, nwaiting, v, left, false);
			return true;
		}
	}
	return false;
}

/* The bucket as it is now, without taking a token. */
static void
limiter_view(RateLimiter *rl, TimestampTz now, int nwaiting, BucketView *v)
{
	int			per_minute = opsmig_conn_options(rl->conn)->max_requests_per_minute;
	RateTable  *t = table_lock();
	RateBucket *b = bucket_get(t, rl->key, now);

	bucket_refill(b, now, per_minute);
	v->capacity = b->capacity;
	v->rate = b->rate;
	v->own_rate = per_minute > 0 ? own_rate(per_minute) : 0;
	v->need_us = bucket_need(b, now, nwaiting, per_minute);
	table_unlock();
}

/*
 * May a request go now?  0: yes, a token is taken (*seq numbers it, and
 * *in_flight_at_send says how many requests of any backend were out).
 * Otherwise the microseconds until it may; the request stays queued.
 * nwaiting is how many requests are queued, in_flight how many are out:
 * only when none is is a statement refused early (53400), so that no
 * transfer is cut off half way; one found over its budget before that
 * sends nothing more meanwhile.  A wait that ends is counted in the
 * connection's counters, and its length goes to *held_ms (0 when there was
 * none) for the request that goes, so its owner can count it too.
 */
int64
ratelimit_acquire(RateLimiter *rl, int nwaiting, int in_flight,
				  double *held_ms, uint64 *seq, int *in_flight_at_send)
{
	TimestampTz now = GetCurrentTimestamp();
	int			per_minute = opsmig_conn_options(rl->conn)->max_requests_per_minute;
	RateTable  *t;
	RateBucket *b;
	BucketView	v;
	int64		wait;

	*held_ms = 0;
	limiter_statement(rl);

	/*
	 * A statement found over its budget while requests were out sends
	 * nothing more; once they are answered it is refused, unless the time
	 * they took refilled the bucket enough.
	 */
	if (rl->stmt_over)
	{
		if (in_flight > 0)
			return RL_HOLD_US;
		limiter_view(rl, now, nwaiting, &v);
		limiter_over_budget(rl, now, nwaiting, &v, true);
		rl->stmt_over = false;
	}

	t = table_lock();
	b = bucket_get(t, rl->key, now);
	wait = bucket_take(b, now, per_minute, in_flight, seq, in_flight_at_send);
	v.capacity = b->capacity;
	v.rate = b->rate;
	v.own_rate = per_minute > 0 ? own_rate(per_minute) : 0;
	v.need_us = wait > 0 ? bucket_need(b, now, nwaiting, per_minute) : 0;
	table_unlock();

	if (wait == 0)
	{
		if (rl->held_since != 0)
		{
			int64		held = now - rl->held_since;

			rl->stmt_wait_us += held;
			rl->stats->rate_limit_wait_ms += held / 1000.0;
			*held_ms = held / 1000.0;
			rl->held_since = 0;
		}
		return 0;
	}

	if (rl->held_since == 0)
	{
		rl->held_since = now;
		rl->stats->rate_limit_waits++;
	}
	if (!rl->stmt_logged)
	{
		rl->stmt_logged = true;
		if (v.rate > 0 || v.own_rate > 0)
			elog(DEBUG1, "opsmig_fdw: server \"%s\": waiting on the rate limit of API key \"%s\" (capacity %g, refill %.3g a second): about %.1f s for %d more requests",
				 opsmig_conn_server_name(rl->conn), opsmig_conn_public_key(rl->conn), v.capacity,
				 v.rate > 0 ? v.rate : v.own_rate, v.need_us / 1e6, nwaiting);
		else
			elog(DEBUG1, "opsmig_fdw: server \"%s\": waiting on the rate limit of API key \"%s\" (refill rate not known yet): %.1f s before the next request",
				 opsmig_conn_server_name(rl->conn), opsmig_conn_public_key(rl->conn), wait / 1e6);
	}
	/*
	 * Refused only when no request is out, so that no transfer is cut off
	 * half way; until then nothing more goes, so that waits taken while
	 * others are out count against the budget too.
	 */
	if (limiter_over_budget(rl, now, nwaiting, &v, in_flight == 0))
		rl->stmt_over = true;
	return wait;
}

/*
 * What a reply said about the bucket.  seq is the token the request went
 * with and in_flight_at_send how many other requests (of any backend
 * sharing the bucket) were out then; limit and remaining are its RateLimit-* headers (-1: absent);
 * retry_after its Retry-After (-1: absent); times_refused how many 429s
 * this request has had, this one included; params a 429's parameters.
 */
void
ratelimit_learn(RateLimiter *rl, uint64 seq, int in_flight_at_send, long code,
				int limit, int remaining, int retry_after, int times_refused,
				const OpsmigRateLimitParams *params)
{
	TimestampTz now = GetCurrentTimestamp();
	int			per_minute = opsmig_conn_options(rl->conn)->max_requests_per_minute;
	RateTable  *t;
	RateBucket *b;
	bool		was_unknown;

	t = table_lock();
	b = bucket_get(t, rl->key, now);
	bucket_refill(b, now, per_minute);
	b->in_flight = Max(0, b->in_flight - 1);
	b->active_at = now;
	if (seq == b->probe_seq)
		b->probe_until = 0;		/* the probe is answered: another may go */
	if (code != 429 && limit < 0 && remaining < 0)
	{
		/*
		 * Nothing said.  A success that says nothing of a bucket whose
		 * refill rate is not known means the server stopped limiting, or
		 * stopped saying so: the model cannot refill such a bucket, so it
		 * would only empty, down to one probe a second until forgotten.
		 * A server that says nothing is not limited.
		 */
		if (code >= 200 && code < 300 && b->rate <= 0)
			b->capacity = 0;
		table_unlock();
		return;
	}
	b->learned_at = now;
	was_unknown = b->capacity <= 0;
	if (params && params->valid)
	{
		b->capacity = params->capacity;
		b->rate = params->refill / params->refill_seconds;
		if (retry_after < 0)
			retry_after = (int) params->retry_after;
	}
	if (limit > 0)
		b->capacity = limit;
	if (remaining >= 0 && b->capacity > 0)
	{
		/*
		 * What the reply says is left does not count the requests that
		 * reached the server after this one: those sent after it (by any
		 * backend) and, as replies overtake each other, some of those on
		 * the wire when it went.  Once the rate is known the model counts
		 * every token at once and refills no faster than the server, so the
		 * reply may only correct it downwards, by what surely is not
		 * counted; before, the reply is the only sign of a refill, and is
		 * read with everything that may not be counted.
		 */
		double		after = (double) (b->seq - seq);

		if (b->rate > 0 && !was_unknown)
			b->tokens = Min(b->tokens, remaining - after);
		else
		{
			double		floor_tokens = Min(b->capacity, remaining - after - in_flight_at_send);

			b->tokens = was_unknown ? floor_tokens : Max(b->tokens, floor_tokens);
		}
	}
	if (code == 429)
	{
		int64		delay = 0;

		/*
		 * The bucket is empty.  A server that does not say its bucket stays
		 * unpaced: only Retry-After, or a backoff, holds everything back.
		 */
		b->tokens = Min(b->tokens, 0);
		if (retry_after >= 0)
			delay = (int64) retry_after * 1000000;
		/* Markedly longer after a request refused again, or when told nothing. */
		if (times_refused > 1 || (retry_after < 0 && b->rate <= 0))
			delay = Max(delay, Min(RL_BACKOFF_MAX_US,
								   RL_BACKOFF_MIN_US * pow(2, Min(times_refused - 1, 10))));
		b->blocked_until = Max(b->blocked_until, now + delay);
	}
	table_unlock();
}

/*
 * A request that took a token will never be answered to the pacer: its
 * statement ended early (LIMIT), failed, was cancelled, or its backend is
 * exiting.  It is out no longer.  Without this every abandoned request
 * would count as in flight for as long as anyone keeps using the bucket,
 * and the model, reading each RateLimit-Remaining with them, would believe
 * a bucket that is never short ever emptier, down to one request at a time.
 */
void
ratelimit_abandon(RateLimiter *rl, uint64 seq)
{
	RateTable  *t = table_lock();
	int			i;

	for (i = 0; i < RL_SLOTS; i++)
	{
		RateBucket *b = &t->slots[i];

		if (b->key != rl->key)
			continue;
		b->in_flight = Max(0, b->in_flight - 1);
		if (seq == b->probe_seq)
			b->probe_until = 0; /* no answer will come: another may probe */
		break;
	}
	table_unlock();
}
