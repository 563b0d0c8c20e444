/*-------------------------------------------------------------------------
 *
 * cluster.c
 *		  opsmig_fdw's shared memory, when it is loaded through
 *		  shared_preload_libraries: the cluster-wide counters behind
 *		  opsmig_fdw_cluster_stats, and one activity slot per backend behind
 *		  opsmig_fdw_activity.  (The shared cache_ttl cache is shared_cache.c;
 *		  its memory is requested and set up from here.)
 *
 * As in pg_stat_statements: the hooks ask for the memory and the LWLocks of
 * a named tranche, and set them up once, in the postmaster.
 *
 * Counters.  A backend counts in its own connections (OpsmigConn.stats, as
 * without preloading) and adds what it counted since its last flush to a
 * shared entry when each opsmig_fdw statement ends (with its activity row),
 * when each transaction ends, commit or abort, and when it exits.  So a
 * third session sees the work of a finished statement at once (also in a
 * transaction block left open), never half a statement's counts, and
 * nothing is counted twice.  An entry is keyed by database, role, server
 * and user mapping: server and user mapping OIDs mean something only in
 * their database, and the role says whose work it was (a PUBLIC mapping is
 * shared by many).  The summing does not name the
 * counters: OpsmigStats is int64 counters, then sums in double, then max_ms
 * (checked below), so a new counter is summed without new code here.
 *
 * Activity.  A slot per backend, written only by its owner under the slot's
 * own LWLock (never held across anything that can throw or wait), read by
 * whoever asks.  The slot is filled when a statement begins a foreign scan or
 * modify and cleared when that statement's executor memory goes, however the
 * statement ends, and at backend exit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster.h"
#include "compat.h"

#define CLUSTER_TRANCHE		"opsmig_fdw"
/* Distinct (database, role, server, user mapping) keys kept; more share one entry. */
#define STATS_MAX_ENTRIES	1024

/* The named tranche: two locks, then one per activity slot. */
enum
{
	LOCK_STATS = 0,
	LOCK_CACHE,
	LOCK_FIRST_SLOT
};

/* The counters are summed as arrays: int64s, then doubles, then max_ms. */
#define STATS_NUM_INT64	(offsetof(OpsmigStats, total_ms) / sizeof(int64))
#define STATS_NUM_SUMS	((offsetof(OpsmigStats, max_ms) - offsetof(OpsmigStats, total_ms)) / sizeof(double))
StaticAssertDecl(offsetof(OpsmigStats, total_ms) == STATS_NUM_INT64 * sizeof(int64),
				 "OpsmigStats must begin with its int64 counters, up to total_ms");
StaticAssertDecl(offsetof(OpsmigStats, max_ms) + sizeof(double) == sizeof(OpsmigStats),
				 "max_ms must be the last member of OpsmigStats");

typedef struct StatsKey
{
	Oid			dbid;
	Oid			userid;
	Oid			serverid;
	Oid			umid;
} StatsKey;

typedef struct StatsEntry
{
	StatsKey	key;			/* all zero: the entry for keys past the table's size */
	char		server_name[NAMEDATALEN];
	OpsmigStats stats;
} StatsEntry;

typedef struct ActivitySlot
{
	bool		active;
	int			pid;
	Oid			dbid;
	Oid			userid;
	char		server_name[NAMEDATALEN];
	OpsmigPhase phase;
	int64		requests_done;
	int64		requests_planned;
	int			in_flight;
	TimestampTz waiting_until;	/* 0: not waiting */
	TimestampTz started_at;
} ActivitySlot;

typedef struct ClusterShared
{
	int			nslots;
	ActivitySlot slots[FLEXIBLE_ARRAY_MEMBER];
} ClusterShared;

static ClusterShared *cluster = NULL;
static HTAB *stats_hash = NULL;
static LWLockPadded *cluster_locks = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This backend's statement, as its slot should show it. */
static ActivitySlot my_activity;
static int	activity_depth = 0;
static bool exit_callback_set = false;

static const char *const phase_names[OPSMIG_NUM_PHASES] = {
	[OPSMIG_PHASE_LISTING] = "listing",
	[OPSMIG_PHASE_STATUS] = "status",
	[OPSMIG_PHASE_CREATE] = "create",
	[OPSMIG_PHASE_DELETE] = "delete",
	[OPSMIG_PHASE_RATE_LIMIT] = "waiting on rate limit",
	[OPSMIG_PHASE_BACKOFF] = "backoff",
	[OPSMIG_PHASE_STARTING] = "starting",
};

/* Activity slots: one per backend number. */
static int
cluster_nslots(void)
{
	/* Backend slots are numbered below this on every supported version. */
	return MaxBackends + NUM_AUXILIARY_PROCS;
}

/* What this file keeps in shared memory (the locks come from the tranche). */
static Size
cluster_shmem_size(void)
{
	return add_size(add_size(offsetof(ClusterShared, slots),
							 mul_size(cluster_nslots(), sizeof(ActivitySlot))),
					hash_estimate_size(STATS_MAX_ENTRIES, sizeof(StatsEntry)));
}

/* shmem_request_hook: memory and the named tranche's LWLocks. */
static void
cluster_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(cluster_shmem_size(), shared_cache_shmem_size()));
	RequestNamedLWLockTranche(CLUSTER_TRANCHE, LOCK_FIRST_SLOT + cluster_nslots());
}

/* shmem_startup_hook: set everything up once, in the postmaster. */
static void
cluster_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;
	StatsKey	overflow = {0};

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	cluster = ShmemInitStruct("opsmig_fdw cluster",
							  offsetof(ClusterShared, slots) +
							  cluster_nslots() * sizeof(ActivitySlot), &found);
	if (!found)
	{
		memset(cluster, 0, offsetof(ClusterShared, slots) +
			   cluster_nslots() * sizeof(ActivitySlot));
		cluster->nslots = cluster_nslots();
	}
	cluster_locks = GetNamedLWLockTranche(CLUSTER_TRANCHE);

	info.keysize = sizeof(StatsKey);
	info.entrysize = sizeof(StatsEntry);
	stats_hash = ShmemInitHash("opsmig_fdw cluster stats", STATS_MAX_ENTRIES,
							   STATS_MAX_ENTRIES, &info, HASH_ELEM | HASH_BLOBS);
	if (!found)
		hash_search(stats_hash, &overflow, HASH_ENTER, NULL);

	shared_cache_shmem_init(&cluster_locks[LOCK_CACHE].lock);
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init: hook into shared memory when preloaded. */
void
opsmig_cluster_init(void)
{
	/* Shared memory, and the PGC_POSTMASTER setting, exist only if preloaded. */
	if (!process_shared_preload_libraries_in_progress)
		return;
	shared_cache_define_guc();
	MarkGUCPrefixReserved("opsmig_fdw");
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = cluster_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = cluster_shmem_startup;
}

/* Was the module preloaded, so that there is shared memory to use? */
bool
opsmig_cluster_loaded(void)
{
	return cluster != NULL;
}

/* The SQL functions' refusal without preloading. */
static void
require_loaded(void)
{
	if (cluster == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("opsmig_fdw must be loaded via \"shared_preload_libraries\""),
				 errhint("Add opsmig_fdw to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* At exit: push the last counters, and leave no activity row behind. */
static void
cluster_exit_callback(int code, Datum arg)
{
	opsmig_flush_all_stats();
	if (my_activity.active)
	{
		activity_depth = 0;
		my_activity.active = false;
		LWLockAcquire(&cluster_locks[LOCK_FIRST_SLOT + opsmig_proc_index()].lock, LW_EXCLUSIVE);
		cluster->slots[opsmig_proc_index()].active = false;
		LWLockRelease(&cluster_locks[LOCK_FIRST_SLOT + opsmig_proc_index()].lock);
	}
}

/* Register cluster_exit_callback once, on this backend's first use. */
static void
set_exit_callback(void)
{
	if (exit_callback_set)
		return;
	before_shmem_exit(cluster_exit_callback, (Datum) 0);
	exit_callback_set = true;
}

/* ----------------------------------------------------------------
 * Counters
 * ----------------------------------------------------------------
 */

/*
 * Add what "now" counted since "flushed" to the shared entry of this key,
 * then remember "now" as flushed.  *peak_ms is the slowest request since
 * then (now->max_ms is the backend's slowest ever, which may predate a
 * reset of the cluster's counters or belong to another role's use of a
 * PUBLIC mapping); it starts again from 0.  Never throws (it runs at
 * transaction abort and at exit).
 */
void
opsmig_stats_flush(Oid dbid, Oid userid, Oid serverid, Oid umid,
				   const char *server_name, const OpsmigStats *now,
				   OpsmigStats *flushed, double *peak_ms)
{
	StatsKey	key;
	StatsEntry *e;
	bool		found;
	const int64 *n64 = (const int64 *) now;
	const int64 *f64 = (const int64 *) flushed;
	const double *nsum = &now->total_ms;
	const double *fsum = &flushed->total_ms;
	int			i;

	if (cluster == NULL || memcmp(now, flushed, sizeof(OpsmigStats)) == 0)
		return;
	set_exit_callback();

	memset(&key, 0, sizeof(key));
	key.dbid = dbid;
	key.userid = userid;
	key.serverid = serverid;
	key.umid = umid;

	LWLockAcquire(&cluster_locks[LOCK_STATS].lock, LW_EXCLUSIVE);
	e = hash_search(stats_hash, &key, HASH_FIND, &found);
	if (e == NULL && hash_get_num_entries(stats_hash) < STATS_MAX_ENTRIES)
		e = hash_search(stats_hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		memset(&key, 0, sizeof(key));
		e = hash_search(stats_hash, &key, HASH_FIND, &found);
	}
	else
	{
		if (!found)
			memset(&e->stats, 0, sizeof(OpsmigStats));
		/* The name as of this use: the server may have been renamed since. */
		if (!found || server_name[0] != '\0')
			strlcpy(e->server_name, server_name, sizeof(e->server_name));
	}
	/* The overflow entry was made at startup and is never removed. */
	{
		int64	   *e64 = (int64 *) &e->stats;
		double	   *esum = &e->stats.total_ms;

		for (i = 0; i < STATS_NUM_INT64; i++)
			e64[i] += n64[i] - f64[i];
		for (i = 0; i < STATS_NUM_SUMS; i++)
			esum[i] += nsum[i] - fsum[i];
		e->stats.max_ms = Max(e->stats.max_ms, *peak_ms);
	}
	LWLockRelease(&cluster_locks[LOCK_STATS].lock);
	*flushed = *now;
	*peak_ms = 0;
}

PG_FUNCTION_INFO_V1(opsmig_fdw_cluster_stats);
PG_FUNCTION_INFO_V1(opsmig_fdw_cluster_stats_reset);
PG_FUNCTION_INFO_V1(opsmig_fdw_activity);

#define STATS_KEY_COLS	4
#define STATS_COLS		25		/* of opsmig_fdw_cluster_stats() since version 1.2 */
StaticAssertDecl(STATS_COLS == STATS_KEY_COLS + OPSMIG_NUM_COUNTERS,
				 "a new counter needs a new column of opsmig_fdw_cluster_stats(), in a new extension version");

static const OpsmigStatsKey stats_keys[STATS_KEY_COLS] = {
	{"database", TEXTOID},
	{"role", TEXTOID},
	{"server_name", TEXTOID},
	{"user_mapping", OIDOID},
};

/* A text Datum, or a NULL one. */
static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * An entry's server name: the server's name now if it is in this database
 * (as database and role are looked up now), else as of its last flush.
 */
static const char *
entry_server_name(const StatsEntry *e)
{
	ForeignServer *server = NULL;

	if (e->key.dbid == MyDatabaseId)
		server = GetForeignServerExtended(e->key.serverid, FSV_MISSING_OK);
	return server ? server->servername : e->server_name;
}

/*
 * Every shared entry the caller may see: its own roles' work, everybody's
 * for superusers and members of pg_read_all_stats.
 */
Datum
opsmig_fdw_cluster_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS scan;
	StatsEntry *e;
	StatsEntry *copy;
	int			n = 0;
	int			ncols = STATS_COLS;
	bool		see_all;
	int			r;

	require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	/* Filled by position: the declared columns must be the values, in order. */
	(void) opsmig_stats_columns(rsinfo->setDesc, stats_keys, STATS_KEY_COLS, false,
								fcinfo->flinfo->fn_oid);
	see_all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	/* Copy under the lock; name lookups may read catalogs, so do them after. */
	copy = palloc(sizeof(StatsEntry) * STATS_MAX_ENTRIES);
	LWLockAcquire(&cluster_locks[LOCK_STATS].lock, LW_SHARED);
	hash_seq_init(&scan, stats_hash);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		if (n < STATS_MAX_ENTRIES)
			copy[n++] = *e;
	}
	LWLockRelease(&cluster_locks[LOCK_STATS].lock);

	for (r = 0; r < n; r++)
	{
		Datum	   *values = palloc(sizeof(Datum) * ncols);
		bool	   *nulls = palloc0(sizeof(bool) * ncols);
		OpsmigStats *st = &copy[r].stats;
		bool		overflow = copy[r].key.dbid == InvalidOid;
		int			c = 0;
		int			i;

		if (overflow ? (!see_all || memcmp(st, &(OpsmigStats) {0}, sizeof(OpsmigStats)) == 0) :
			!(see_all || has_privs_of_role(GetUserId(), copy[r].key.userid)))
			continue;
		values[c] = text_or_null(overflow ? NULL : get_database_name(copy[r].key.dbid), &nulls[c]);
		c++;
		values[c] = text_or_null(overflow ? NULL : GetUserNameFromId(copy[r].key.userid, true), &nulls[c]);
		c++;
		values[c] = text_or_null(overflow ? NULL : entry_server_name(&copy[r]), &nulls[c]);
		c++;
		values[c] = ObjectIdGetDatum(copy[r].key.umid);
		nulls[c++] = overflow;
		for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
			values[c++] = opsmig_stats_datum(st, i);
		Assert(c == ncols);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/* Zero the cluster's counters (EXECUTE is revoked from PUBLIC). */
Datum
opsmig_fdw_cluster_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS scan;
	StatsEntry *e;

	require_loaded();
	LWLockAcquire(&cluster_locks[LOCK_STATS].lock, LW_EXCLUSIVE);
	hash_seq_init(&scan, stats_hash);
	while ((e = hash_seq_search(&scan)) != NULL)
		memset(&e->stats, 0, sizeof(OpsmigStats));
	LWLockRelease(&cluster_locks[LOCK_STATS].lock);
	PG_RETURN_VOID();
}

/* ----------------------------------------------------------------
 * Activity
 * ----------------------------------------------------------------
 */

/* Is this backend's slot live?  (Preloaded, a statement running.) */
static bool
activity_on(void)
{
	return cluster != NULL && activity_depth > 0;
}

/* Copy my_activity to the shared slot.  Never throws. */
static void
activity_publish(void)
{
	int			idx = opsmig_proc_index();
	LWLock	   *lock = &cluster_locks[LOCK_FIRST_SLOT + idx].lock;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	cluster->slots[idx] = my_activity;
	LWLockRelease(lock);
}

/* The statement's executor memory goes: its row goes too (outermost only). */
static void
activity_end(void *arg)
{
	if (activity_depth == 0 || --activity_depth > 0)
		return;
	my_activity.active = false;
	activity_publish();
	/* Its counts too: a transaction block may stay open for hours. */
	opsmig_flush_all_stats();
}

/*
 * A statement begins opsmig_fdw work; its row lasts until stmt_cxt (the
 * executor's per-query context) goes.  Nested scans share the row.
 */
void
opsmig_activity_begin(MemoryContext stmt_cxt, const char *server_name)
{
	MemoryContextCallback *cb;
	int			idx = opsmig_proc_index();

	if (cluster == NULL || idx < 0 || idx >= cluster->nslots)
		return;
	set_exit_callback();
	cb = MemoryContextAlloc(stmt_cxt, sizeof(MemoryContextCallback));
	cb->func = activity_end;
	cb->arg = NULL;
	if (activity_depth++ == 0)
	{
		memset(&my_activity, 0, sizeof(my_activity));
		my_activity.active = true;
		my_activity.pid = MyProcPid;
		my_activity.dbid = MyDatabaseId;
		my_activity.userid = GetUserId();
		strlcpy(my_activity.server_name, server_name, sizeof(my_activity.server_name));
		my_activity.phase = OPSMIG_PHASE_STARTING;
		my_activity.started_at = GetCurrentStatementStartTimestamp();
		activity_publish();
	}
	MemoryContextRegisterResetCallback(stmt_cxt, cb);
}

/*
 * What the statement waits for, and until when (0: unknown).  For waits
 * outside a request: the backoff before a retry, the rate limit.
 */
void
opsmig_activity_set_phase(OpsmigPhase phase, TimestampTz until)
{
	if (!activity_on() ||
		(my_activity.phase == phase && my_activity.waiting_until == until))
		return;
	my_activity.phase = phase;
	my_activity.waiting_until = until;
	activity_publish();
}

/* One more request to make (queued, or queued again for a retry). */
void
opsmig_activity_request_queued(void)
{
	if (!activity_on())
		return;
	my_activity.requests_planned++;
	activity_publish();
}

/* A request went on the wire: the phase follows its kind. */
void
opsmig_activity_request_started(OpsmigRequestKind kind)
{
	if (!activity_on())
		return;
	my_activity.in_flight++;
	my_activity.phase = (OpsmigPhase) kind;
	my_activity.waiting_until = 0;
	activity_publish();
}

/* A request left the wire: completed, or abandoned (error, cancel). */
void
opsmig_activity_request_stopped(void)
{
	if (!activity_on())
		return;
	my_activity.in_flight = Max(my_activity.in_flight - 1, 0);
	activity_publish();
}

/* A request got its answer (whatever it says). */
void
opsmig_activity_request_done(void)
{
	if (!activity_on())
		return;
	my_activity.requests_done++;
	activity_publish();
}

#define ACTIVITY_COLS	10

/* One row per backend running an opsmig_fdw statement that the caller may see. */
Datum
opsmig_fdw_activity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		see_all;
	int			idx;

	require_loaded();
	InitMaterializedSRF(fcinfo, 0);
	see_all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	for (idx = 0; idx < cluster->nslots; idx++)
	{
		LWLock	   *lock = &cluster_locks[LOCK_FIRST_SLOT + idx].lock;
		ActivitySlot s;
		Datum		values[ACTIVITY_COLS];
		bool		nulls[ACTIVITY_COLS] = {false};
		int			c = 0;

		LWLockAcquire(lock, LW_SHARED);
		s = cluster->slots[idx];
		LWLockRelease(lock);
		if (!s.active || !(see_all || has_privs_of_role(GetUserId(), s.userid)))
			continue;

		values[c++] = Int32GetDatum(s.pid);
		values[c] = text_or_null(get_database_name(s.dbid), &nulls[c]);
		c++;
		values[c] = text_or_null(GetUserNameFromId(s.userid, true), &nulls[c]);
		c++;
		values[c++] = CStringGetTextDatum(s.server_name);
		values[c++] = CStringGetTextDatum(phase_names[s.phase]);
		values[c++] = Int64GetDatum(s.requests_done);
		values[c++] = Int64GetDatum(s.requests_planned);
		values[c++] = Int32GetDatum(s.in_flight);
		values[c] = TimestampTzGetDatum(s.waiting_until);
		nulls[c++] = (s.waiting_until == 0);
		values[c++] = TimestampTzGetDatum(s.started_at);
		Assert(c == ACTIVITY_COLS);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
