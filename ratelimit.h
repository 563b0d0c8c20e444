/*-------------------------------------------------------------------------
 *
 * ratelimit.h
 *		  The client-side pacer of opsmig_fdw: a token bucket per (API host,
 *		  public key) that holds requests back so they go out at the rate the
 *		  API's own bucket refills, learnt from what the API says.
 *
 * http.c asks the pacer before each request goes out; api_batch.c tells it
 * what each reply said (RateLimit-* headers, Retry-After, a 429's
 * parameters).
 * With shared_preload_libraries = 'opsmig_fdw' the buckets live in shared
 * memory and every backend of the cluster draws from the same one; without
 * it each backend paces alone.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_RATELIMIT_H
#define OPSMIG_RATELIMIT_H

#include "api_parse.h"
#include "opsmig_fdw.h"

/* RateLimiter, the pacer of one user mapping, is declared in opsmig_fdw.h. */

extern void opsmig_ratelimit_init(void);

extern RateLimiter *ratelimit_create(MemoryContext cxt, const OpsmigConn *conn,
									 OpsmigStats *stats);
extern int64 ratelimit_acquire(RateLimiter *rl, int nwaiting, int in_flight,
							   double *held_ms, uint64 *seq,
							   int *in_flight_at_send);
extern void ratelimit_learn(RateLimiter *rl, uint64 seq, int in_flight_at_send,
							long code, int limit, int remaining,
							int retry_after, int times_refused,
							const OpsmigRateLimitParams *params);
extern void ratelimit_abandon(RateLimiter *rl, uint64 seq);

#endif							/* OPSMIG_RATELIMIT_H */
