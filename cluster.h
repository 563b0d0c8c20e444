/*-------------------------------------------------------------------------
 *
 * cluster.h
 *		  What opsmig_fdw shares between backends when it is loaded through
 *		  shared_preload_libraries: cluster-wide counters, the activity of
 *		  running statements, and (cache.h) the shared cache_ttl cache.
 *
 * Without preloading there is no shared memory: every function here is
 * then a cheap no-op, and the SQL functions over it raise an error.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_CLUSTER_H
#define OPSMIG_CLUSTER_H

#include "datatype/timestamp.h"
#include "storage/lwlock.h"

#include "opsmig_fdw.h"

/*
 * What a backend's opsmig_fdw statement is doing, for opsmig_fdw_activity.
 * The first four follow OpsmigRequestKind: the kind of the request started
 * last.
 */
typedef enum OpsmigPhase
{
	OPSMIG_PHASE_LISTING = OPSMIG_REQ_LIST,
	OPSMIG_PHASE_STATUS = OPSMIG_REQ_STATUS,
	OPSMIG_PHASE_CREATE = OPSMIG_REQ_CREATE,
	OPSMIG_PHASE_DELETE = OPSMIG_REQ_DELETE,
	OPSMIG_PHASE_RATE_LIMIT,	/* waiting for the rate limit to allow a request */
	OPSMIG_PHASE_BACKOFF,		/* waiting to retry a failed request */
	OPSMIG_PHASE_STARTING,		/* no request yet */
	OPSMIG_NUM_PHASES
} OpsmigPhase;

/* cluster.c */
extern void opsmig_cluster_init(void);
extern bool opsmig_cluster_loaded(void);
extern void opsmig_stats_flush(Oid dbid, Oid userid, Oid serverid, Oid umid,
							   const char *server_name,
							   const OpsmigStats *now, OpsmigStats *flushed,
							   double *peak_ms);

extern void opsmig_activity_begin(MemoryContext stmt_cxt, const char *server_name);
extern void opsmig_activity_set_phase(OpsmigPhase phase, TimestampTz until);
extern void opsmig_activity_request_queued(void);
extern void opsmig_activity_request_started(OpsmigRequestKind kind);
extern void opsmig_activity_request_stopped(void);
extern void opsmig_activity_request_done(void);

/* connection.c: push every connection's unflushed counters (exit, xact end) */
extern void opsmig_flush_all_stats(void);

/* shared_cache.c: its part of the shared memory */
extern Size shared_cache_shmem_size(void);
extern void shared_cache_shmem_init(LWLock *lock);
extern void shared_cache_define_guc(void);

#endif							/* OPSMIG_CLUSTER_H */
