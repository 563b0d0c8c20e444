/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Per-user-mapping connection state of opsmig_fdw: the cache of HTTP
 *		  sessions, its invalidation, and the transaction bookkeeping of
 *		  remote changes that no ROLLBACK can undo.
 *
 * As in postgres_fdw, one entry per user mapping OID lives for the life of
 * the backend, so keep-alive connections and digest nonces are reused from
 * query to query.  A change to the server or the mapping marks the entry
 * invalid; it is rebuilt the next time it is asked for while no request of
 * it is in flight.  The counters survive rebuilds.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "cache.h"
#include "cluster.h"
#include "http.h"
#include "opsmig_fdw.h"
#include "ratelimit.h"

/*
 * One cached connection per user mapping.  It owns the HTTP session (a
 * libcurl multi handle and its pool of easy handles, http.c), so keep-alive
 * connections and digest nonces outlive a single query.  Private to this
 * file, as postgres_fdw keeps its ConnCacheEntry: the others use the
 * accessors below.
 */
struct OpsmigConn
{
	Oid			umid;			/* hash key: the user mapping's OID */
	Oid			serverid;
	char	   *server_name;
	char	   *public_key;		/* shown in messages and hints */
	char	   *private_key;	/* never shown; wiped when the entry goes */
	OpsmigServerOptions opts;
	HttpSession *http;
	OpsmigCache *cache;			/* cache_ttl answers (cache.c); NULL if none */
	RateLimiter *limiter;		/* the pacer of this API key (ratelimit.c) */
	OpsmigStats stats;
	OpsmigStats flushed;		/* stats as last added to the cluster's (cluster.c) */
	double		peak_ms;		/* slowest request since then: max_ms is the
								 * backend's, and outlives a cluster reset */
	Oid			userid;			/* the local role of the last use, for those */
	MemoryContext cxt;			/* holds everything above */
	bool		invalidated;	/* server or mapping changed: rebuild when idle */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
};

static HTAB *ConnectionHash = NULL;

/* Remote changes made by the current transaction, with their nest level. */
typedef struct RemoteChange
{
	int			level;
	char		what[FLEXIBLE_ARRAY_MEMBER];
} RemoteChange;

static List *remote_changes = NIL;

static void opsmig_conn_flush(OpsmigConn *conn);
static void opsmig_inval_callback(Datum arg, int cacheid, uint32 hashvalue);
static void opsmig_xact_callback(XactEvent event, void *arg);
static void opsmig_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									SubTransactionId parentSubid, void *arg);

static void
opsmig_connection_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(OpsmigConn);
	ConnectionHash = hash_create("opsmig_fdw connections", 8, &ctl,
								 HASH_ELEM | HASH_BLOBS);

	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, opsmig_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, opsmig_inval_callback, (Datum) 0);
	RegisterXactCallback(opsmig_xact_callback, NULL);
	RegisterSubXactCallback(opsmig_subxact_callback, NULL);
}

static void
opsmig_disconnect(OpsmigConn *conn)
{
	if (conn->http)
		http_session_destroy(conn->http);
	conn->http = NULL;
	/* Do not leave the private key lying in freed memory. */
	if (conn->private_key)
		explicit_bzero(conn->private_key, strlen(conn->private_key));
	conn->private_key = NULL;
	conn->cache = NULL;			/* it lives in conn->cxt */
	conn->server_name = NULL;	/* so does this */
	conn->limiter = NULL;		/* so does this (the bucket stays) */
	if (conn->cxt)
		MemoryContextDelete(conn->cxt);
	conn->cxt = NULL;
}

static void
opsmig_connect(OpsmigConn *conn, UserMapping *user)
{
	ForeignServer *server = GetForeignServer(user->serverid);
	HttpConfig	config;
	MemoryContext old;

	conn->cxt = AllocSetContextCreate(TopMemoryContext, "opsmig_fdw connection",
									  ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(conn->cxt);
	conn->serverid = server->serverid;
	conn->server_name = pstrdup(server->servername);
	opsmig_get_server_options(server, &conn->opts);
	opsmig_get_user_keys(user, server, &conn->public_key, &conn->private_key);
	MemoryContextSwitchTo(old);

	conn->server_hashvalue = GetSysCacheHashValue1(FOREIGNSERVEROID,
												   ObjectIdGetDatum(server->serverid));
	conn->mapping_hashvalue = GetSysCacheHashValue1(USERMAPPINGOID,
													ObjectIdGetDatum(user->umid));
	conn->invalidated = false;
	config.connect_timeout_ms = conn->opts.connect_timeout_ms;
	config.request_timeout_ms = conn->opts.request_timeout_ms;
	config.max_response_bytes = conn->opts.max_response_bytes;
	config.max_connections = conn->opts.max_concurrent_requests;
	config.ssl_verify = conn->opts.ssl_verify;
	config.ca_file = conn->opts.ca_file;
	config.proxy = conn->opts.proxy;
	conn->http = http_session_create(conn->cxt, &config, conn->public_key,
									 conn->private_key);
	conn->limiter = ratelimit_create(conn->cxt, conn, &conn->stats);
	http_session_set_limiter(conn->http, conn->limiter);
	elog(DEBUG1, "opsmig_fdw: new HTTP session for server \"%s\", API key \"%s\"",
		 conn->server_name, conn->public_key);
}

/*
 * The connection of a user mapping, built on first use or after the server
 * or mapping changed.
 */
OpsmigConn *
opsmig_get_connection(UserMapping *user)
{
	OpsmigConn *conn;
	bool		found;

	if (ConnectionHash == NULL)
		opsmig_connection_init();

	conn = hash_search(ConnectionHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		Oid			umid = conn->umid;

		memset(conn, 0, sizeof(OpsmigConn));
		conn->umid = umid;
		conn->userid = user->userid;
	}
	else if (conn->userid != user->userid)
	{
		/* A PUBLIC mapping used by another role: close the first one's account. */
		opsmig_conn_flush(conn);
		conn->userid = user->userid;
	}
	if (conn->http && conn->invalidated && !http_session_busy(conn->http))
		opsmig_disconnect(conn);
	if (conn->http == NULL)
	{
		PG_TRY();
		{
			opsmig_connect(conn, user);
		}
		PG_CATCH();
		{
			conn->http = NULL;
			opsmig_disconnect(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return conn;
}

/* What the other files may know of a connection. */
const OpsmigServerOptions *
opsmig_conn_options(const OpsmigConn *conn)
{
	return &conn->opts;
}

/* Shown in messages. */
const char *
opsmig_conn_server_name(const OpsmigConn *conn)
{
	return conn->server_name;
}

/* Shown in messages and hints (the private key never is). */
const char *
opsmig_conn_public_key(const OpsmigConn *conn)
{
	return conn->public_key;
}

HttpSession *
opsmig_conn_http(OpsmigConn *conn)
{
	return conn->http;
}

RateLimiter *
opsmig_conn_limiter(OpsmigConn *conn)
{
	return conn->limiter;
}

/* The counters of this user mapping, for the API layer to add to. */
OpsmigStats *
opsmig_conn_stats(OpsmigConn *conn)
{
	return &conn->stats;
}

/*
 * A request took this long: besides max_ms, keep the slowest since the
 * last flush to the cluster (which outlives a cluster reset).
 */
void
opsmig_conn_count_elapsed(OpsmigConn *conn, double ms)
{
	if (ms > conn->peak_ms)
		conn->peak_ms = ms;
}

/*
 * The slot of this connection's cache_ttl cache, which cache.c fills on
 * first use in *cxt: it then goes when the connection is rebuilt.
 */
OpsmigCache **
opsmig_conn_cache(OpsmigConn *conn, MemoryContext *cxt)
{
	*cxt = conn->cxt;
	return &conn->cache;
}

/* The shared cache's key of this connection: the private key stays here. */
void
opsmig_conn_shared_cache_key(OpsmigConn *conn, uint8 *digest)
{
	shared_cache_key(conn->serverid, &conn->opts, conn->public_key,
					 conn->private_key, digest);
}

/* Add this connection's counts since its last flush to the cluster's. */
static void
opsmig_conn_flush(OpsmigConn *conn)
{
	opsmig_stats_flush(MyDatabaseId, conn->userid, conn->serverid, conn->umid,
					   conn->server_name ? conn->server_name : "",
					   &conn->stats, &conn->flushed, &conn->peak_ms);
}

void
opsmig_flush_all_stats(void)
{
	HASH_SEQ_STATUS scan;
	OpsmigConn *conn;

	if (ConnectionHash == NULL || !opsmig_cluster_loaded())
		return;
	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
		opsmig_conn_flush(conn);
}

/*
 * This backend changed the link of an organization: forget it in the cache
 * of every connection, not only the one that changed it, so the backend
 * sees its own change through any user mapping or server (SET ROLE, a
 * PUBLIC mapping next to a role's own, two servers on one API).  The shared
 * cache forgets it under every key at once.
 */
void
opsmig_forget_org(const char *org_id)
{
	HASH_SEQ_STATUS scan;
	OpsmigConn *conn;

	if (shared_cache_enabled())
	{
		shared_cache_forget(org_id);
		return;
	}
	if (ConnectionHash == NULL)
		return;
	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
		cache_forget(conn, org_id);
}

static void
opsmig_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	OpsmigConn *conn;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
	{
		if (conn->http == NULL)
			continue;
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && conn->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID && conn->mapping_hashvalue == hashvalue))
			conn->invalidated = true;
	}
}

/* ----------------------------------------------------------------
 * Remote changes and transactions
 *
 * INSERT and DELETE act on the API at once; a ROLLBACK cannot undo them.
 * We keep a note of each, warn at (sub)transaction abort with the list,
 * and refuse PREPARE TRANSACTION after one, as postgres_fdw refuses it.
 * ----------------------------------------------------------------
 */

void
opsmig_note_remote_change(const char *what)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	RemoteChange *rc = palloc(offsetof(RemoteChange, what) + strlen(what) + 1);

	rc->level = GetCurrentTransactionNestLevel();
	strcpy(rc->what, what);
	remote_changes = lappend(remote_changes, rc);
	MemoryContextSwitchTo(old);

	if (ConnectionHash == NULL)
		opsmig_connection_init();	/* so the callbacks are registered */
}

/* The warning's message: one literal per kind, no word spliced in. */
static int
opsmig_changes_errmsg(bool subxact, int n)
{
	if (subxact)
		return errmsg_plural("subtransaction rolled back, but %d change made through opsmig_fdw stays done",
							 "subtransaction rolled back, but %d changes made through opsmig_fdw stay done",
							 n, n);
	return errmsg_plural("transaction rolled back, but %d change made through opsmig_fdw stays done",
						 "transaction rolled back, but %d changes made through opsmig_fdw stay done",
						 n, n);
}

/* Warn about, and forget, the changes made at nesting level >= level. */
static void
opsmig_warn_changes(int level, bool subxact)
{
	StringInfoData buf;
	List	   *keep = NIL;
	ListCell   *lc;
	int			n = 0;

	initStringInfo(&buf);
	foreach(lc, remote_changes)
	{
		RemoteChange *rc = lfirst(lc);

		if (rc->level >= level)
		{
			appendStringInfo(&buf, "%s%s", n > 0 ? ";\n" : "", rc->what);
			n++;
			pfree(rc);
		}
		else
			keep = lappend(keep, rc);
	}
	if (n > 0)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 opsmig_changes_errmsg(subxact, n),
				 errdetail_plural("Change made: %s.", "Changes made:\n%s.", n, buf.data),
				 errhint("Migration links are changed in the API at once; check them with SELECT and undo by hand if needed.")));
	pfree(buf.data);

	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		List	   *copy = list_copy(keep);

		MemoryContextSwitchTo(old);
		list_free(remote_changes);
		list_free(keep);
		remote_changes = copy;
	}
}

static void
opsmig_forget_changes(void)
{
	list_free_deep(remote_changes);
	remote_changes = NIL;
}

static void
opsmig_xact_callback(XactEvent event, void *arg)
{
	/* The cluster's counters take each transaction's work as it ends. */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT)
		opsmig_flush_all_stats();

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (remote_changes != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has changed migration links through opsmig_fdw"),
						 errdetail("Those changes are already done in the API and cannot take part in two-phase commit.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			opsmig_forget_changes();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			opsmig_warn_changes(0, false);
			break;
		default:
			break;
	}
}

static void
opsmig_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
		opsmig_warn_changes(level, true);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* The parent now owns them: its abort must still warn. */
		foreach(lc, remote_changes)
		{
			RemoteChange *rc = lfirst(lc);

			if (rc->level >= level)
				rc->level = level - 1;
		}
	}
}

/* ----------------------------------------------------------------
 * Counters, for the opsmig_fdw_stats view
 * ----------------------------------------------------------------
 */

PG_FUNCTION_INFO_V1(opsmig_fdw_stats);
PG_FUNCTION_INFO_V1(opsmig_fdw_stats_1_3);
PG_FUNCTION_INFO_V1(opsmig_fdw_stats_reset);

#define STATS_KEY_COLS	2		/* server_name, user_mapping */
#define STATS_COLS		23		/* of opsmig_fdw_stats() since version 1.3 */
StaticAssertDecl(STATS_COLS == STATS_KEY_COLS + OPSMIG_NUM_COUNTERS,
				 "a new counter needs a new column of opsmig_fdw_stats(), in a new extension version");

/*
 * The columns of the stats function, before the counters.  Since 1.3 the function is
 * opsmig_fdw_stats_1_3 and declares exactly that order (checked); a library
 * older than 1.3 has no such symbol, so a backend that still runs one fails
 * cleanly after ALTER EXTENSION UPDATE instead of filling the new columns by
 * its old positions, as pg_stat_statements does.  The unversioned symbol
 * serves databases not updated yet (1.1: 20 columns, 1.2: 22, in other
 * orders): it matches their columns by name.
 */
static const OpsmigStatsKey stats_keys[STATS_KEY_COLS] = {
	{"server_name", TEXTOID},
	{"user_mapping", OIDOID},
};

/* One row per user mapping this backend has used since it started. */
static void
stats_rows(FunctionCallInfo fcinfo, bool by_name)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS scan;
	OpsmigConn *conn;
	int		   *source;
	Datum	   *values;
	bool	   *nulls;

	InitMaterializedSRF(fcinfo, 0);
	/* Checked before any row, so a mismatch does not wait for a connection. */
	source = opsmig_stats_columns(rsinfo->setDesc, stats_keys, STATS_KEY_COLS,
								  by_name, fcinfo->flinfo->fn_oid);
	if (ConnectionHash == NULL)
		return;
	values = palloc(sizeof(Datum) * rsinfo->setDesc->natts);
	nulls = palloc0(sizeof(bool) * rsinfo->setDesc->natts);

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
	{
		Datum		row[STATS_COLS];
		ForeignServer *server = GetForeignServerExtended(conn->serverid, FSV_MISSING_OK);
		int			i;

		if (server == NULL)
			continue;			/* dropped since */
		row[0] = CStringGetTextDatum(server->servername);
		row[1] = ObjectIdGetDatum(conn->umid);
		for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
			row[STATS_KEY_COLS + i] = opsmig_stats_datum(&conn->stats, i);
		for (i = 0; i < rsinfo->setDesc->natts; i++)
			values[i] = row[source[i]];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

Datum
opsmig_fdw_stats_1_3(PG_FUNCTION_ARGS)
{
	stats_rows(fcinfo, false);
	PG_RETURN_VOID();
}

/* Before 1.3 */
Datum
opsmig_fdw_stats(PG_FUNCTION_ARGS)
{
	stats_rows(fcinfo, true);
	PG_RETURN_VOID();
}

/* Zero this backend's counters (the connections and cache stay). */
Datum
opsmig_fdw_stats_reset(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS scan;
	OpsmigConn *conn;

	if (ConnectionHash != NULL)
	{
		hash_seq_init(&scan, ConnectionHash);
		while ((conn = hash_seq_search(&scan)) != NULL)
		{
			/* The cluster keeps what was counted so far. */
			opsmig_conn_flush(conn);
			memset(&conn->stats, 0, sizeof(OpsmigStats));
			memset(&conn->flushed, 0, sizeof(OpsmigStats));
		}
	}
	PG_RETURN_VOID();
}
