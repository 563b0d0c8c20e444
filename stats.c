/*-------------------------------------------------------------------------
 *
 * stats.c
 *		  The counters of API work, as opsmig_counters.h lists them: where
 *		  each lives in OpsmigStats, its SQL column, how EXPLAIN ANALYZE
 *		  shows it, and which HTTP codes it counts as errors.
 *
 * The two stats functions (connection.c, cluster.c) and EXPLAIN
 * (opsmig_fdw.c) walk opsmig_counters[] instead of naming fields, so a
 * counter is added in one place.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "opsmig_fdw.h"

const OpsmigCounter opsmig_counters[OPSMIG_NUM_COUNTERS] = {
#define OPSMIG_REQUESTS(kind, column, word, label) \
	{#column, offsetof(OpsmigStats, requests) + (kind) * sizeof(int64), false, -1, -1, 1, 0, label, word},
#define OPSMIG_INT64(field, column, http_from, http_to, at, when, label) \
	{#column, offsetof(OpsmigStats, field), false, http_from, http_to, at, when, label, NULL},
#define OPSMIG_DOUBLE(field, column, at, when, label) \
	{#column, offsetof(OpsmigStats, field), true, -1, -1, at, when, label, NULL},
#include "opsmig_counters.h"
#undef OPSMIG_REQUESTS
#undef OPSMIG_INT64
#undef OPSMIG_DOUBLE
};

/*
 * The list's order is the struct's (so the SQL columns, filled in list
 * order, are in the order cluster.c sums them), the requests come first in
 * kind order, and no int64 stands among the doubles.
 */
#define OPSMIG_REQUESTS(kind, column, word, label) \
	StaticAssertDecl((int) OPSMIG_COUNTER_##column == (int) (kind), \
					 "requests must come first in opsmig_counters.h, in kind order");
#define OPSMIG_INT64(field, column, http_from, http_to, at, when, label) \
	StaticAssertDecl(offsetof(OpsmigStats, field) == OPSMIG_COUNTER_##column * sizeof(int64) && \
					 offsetof(OpsmigStats, field) < offsetof(OpsmigStats, total_ms), \
					 "int64 counter " #field " out of place in opsmig_counters.h");
#define OPSMIG_DOUBLE(field, column, at, when, label) \
	StaticAssertDecl(offsetof(OpsmigStats, field) == OPSMIG_COUNTER_##column * sizeof(double) && \
					 offsetof(OpsmigStats, field) >= offsetof(OpsmigStats, total_ms), \
					 "double counter " #field " out of place in opsmig_counters.h");
#include "opsmig_counters.h"
#undef OPSMIG_REQUESTS
#undef OPSMIG_INT64
#undef OPSMIG_DOUBLE
StaticAssertDecl(sizeof(OpsmigStats) == OPSMIG_NUM_COUNTERS * sizeof(int64),
				 "OpsmigStats must hold the counters of opsmig_counters.h and nothing else");

static const void *
counter_address(const OpsmigStats *st, int counter)
{
	return (const char *) st + opsmig_counters[counter].offset;
}

int64
opsmig_stats_int64(const OpsmigStats *st, int counter)
{
	Assert(!opsmig_counters[counter].is_double);
	return *(const int64 *) counter_address(st, counter);
}

double
opsmig_stats_double(const OpsmigStats *st, int counter)
{
	Assert(opsmig_counters[counter].is_double);
	return *(const double *) counter_address(st, counter);
}

bool
opsmig_stats_nonzero(const OpsmigStats *st, int counter)
{
	return opsmig_counters[counter].is_double ?
		opsmig_stats_double(st, counter) > 0 :
		opsmig_stats_int64(st, counter) > 0;
}

/* A counter as the SQL column shows it: bigint or double precision. */
Datum
opsmig_stats_datum(const OpsmigStats *st, int counter)
{
	return opsmig_counters[counter].is_double ?
		Float8GetDatum(opsmig_stats_double(st, counter)) :
		Int64GetDatum(opsmig_stats_int64(st, counter));
}

/*
 * Check that a stats function declares, after its nkeys key columns, the
 * counters of this library in its order, by name and type.  The SQL
 * functions fill their columns by position: a list reordered without a new
 * extension version, or objects of another version, would otherwise show one
 * counter under another's name.
 */
void
opsmig_stats_check_columns(TupleDesc desc, int nkeys, const char *function)
{
	int			i;

	if (desc->natts != nkeys + OPSMIG_NUM_COUNTERS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("function %s returns %d columns, but the loaded opsmig_fdw module fills %d",
						function, desc->natts, nkeys + OPSMIG_NUM_COUNTERS),
				 errhint("Run ALTER EXTENSION opsmig_fdw UPDATE, so that the SQL objects match the module.")));
	for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, nkeys + i);

		if (strcmp(NameStr(att->attname), opsmig_counters[i].column) != 0 ||
			att->atttypid != (opsmig_counters[i].is_double ? FLOAT8OID : INT8OID))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("function %s does not return the counters of the loaded opsmig_fdw module",
							function),
					 errdetail("Column %d is \"%s\" of type %s, where the module fills \"%s\" of type %s.",
							   nkeys + i + 1, NameStr(att->attname),
							   format_type_be(att->atttypid),
							   opsmig_counters[i].column,
							   opsmig_counters[i].is_double ? "double precision" : "bigint"),
					 errhint("Run ALTER EXTENSION opsmig_fdw UPDATE, so that the SQL objects match the module.")));
	}
}

/* The counter shown in a column of this name, or -1. */
int
opsmig_stats_column(const char *column)
{
	int			i;

	for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
		if (strcmp(opsmig_counters[i].column, column) == 0)
			return i;
	return -1;
}

/*
 * Count a failed request by its HTTP code (0: no HTTP answer): in the first
 * error counter whose codes include it.  Other codes count nowhere.
 */
void
opsmig_stats_count_error(OpsmigStats *st, long http_code)
{
	int			i;

	for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
	{
		const OpsmigCounter *c = &opsmig_counters[i];

		if (c->http_from >= 0 && http_code >= c->http_from && http_code <= c->http_to)
		{
			Assert(!c->is_double);
			(*(int64 *) ((char *) st + c->offset))++;
			return;
		}
	}
}
