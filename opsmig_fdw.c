/*-------------------------------------------------------------------------
 *
 * opsmig_fdw.c
 *		  Foreign-data wrapper for MongoDB Ops Manager / Cloud Manager
 *		  live-migration links: the FDW callbacks (planning, scan, INSERT,
 *		  COPY FROM, DELETE, EXPLAIN, IMPORT FOREIGN SCHEMA).
 *
 * A foreign table shows one row per organization that has a migration
 * link.  Conditions on org_id (=, IN, = ANY, parameters and join keys) are
 * sent to the API as one status call per id; without one, the scan lists
 * the organizations and asks each for its status.  INSERT (and COPY FROM,
 * and rows routed into the table as a partition) creates a link, DELETE
 * removes one; UPDATE has no API and is refused.
 *
 * The API itself is behind api.h; the per-user-mapping HTTP session behind
 * connection.c; options and the column map in option.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/clauses.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "api.h"
#include "api_parse.h"
#include "cluster.h"
#include "compat.h"
#include "opsmig_fdw.h"
#include "ratelimit.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(opsmig_fdw_handler);

void		_PG_init(void);

void
_PG_init(void)
{
	opsmig_option_init();
	opsmig_cluster_init();
	opsmig_ratelimit_init();	/* shared memory, when preloaded */
}

/* What the planner guesses for an unfiltered scan: organizations seen. */
#define DEFAULT_ORG_ESTIMATE	100
/* Ids guessed for an "= ANY" over a parameter. */
#define DEFAULT_ARRAY_ESTIMATE	10
/* The only remote schema IMPORT FOREIGN SCHEMA knows. */
#define REMOTE_SCHEMA			"opsmig"
#define REMOTE_TABLE			"org_migration_links"
/*
 * Row identity columns added for DELETE, named with their attribute
 * number: partitions of one table may have org_id at different positions,
 * and one name must stand for one Var across all of them.
 */
#define JUNK_ORG_ID				"opsmig_org_id"
#define JUNK_STATUS				"opsmig_status"
#define JUNK_ORG_NAME			"opsmig_org_name"

/* How a scan finds its organizations. */
typedef enum OrgFilter
{
	ORG_FILTER_NONE = 0,		/* list every organization */
	ORG_FILTER_EQ,				/* org_id = expr */
	ORG_FILTER_ANY				/* org_id = ANY(array expr) */
} OrgFilter;

/* Indexes into ForeignScan.fdw_private. */
enum FdwScanPrivateIndex
{
	FdwScanPrivateFilter,		/* OrgFilter */
	FdwScanPrivateNeedNames,	/* does the query use org_name? */
	FdwScanPrivateLocalQuals,	/* are there quals the API does not apply? */
	FdwScanPrivateColumns		/* the column map (column_map_to_list) */
};

/*
 * A foreign table's columns as the fields they show (opsmig_column_map), and
 * the attribute number of each field (0: the table has no such column).  It
 * is made once per relation and statement, in planning, and goes to the
 * executor in the plan's fdw_private, as postgres_fdw's retrieved_attrs do:
 * the executor's callbacks never read the catalogs for it again, and a
 * change of the table's columns invalidates the plan.
 */
typedef struct ColumnMap
{
	int			natts;
	OpsmigColumn *col;			/* per attribute */
	AttrNumber	attno[OPSMIG_NUM_COLUMNS];
} ColumnMap;

/* Planner state of a foreign table. */
typedef struct OpsmigRelInfo
{
	ColumnMap  *map;
	AttrNumber	org_id_attno;	/* 0: the table has no org_id column */
	AttrNumber	org_name_attno;
	bool		need_names;
	double		request_cost;
	int			concurrency;
	/* the base restriction sent to the API, if any */
	OrgFilter	filter;
	Expr	   *filter_value;
	RestrictInfo *filter_rinfo;
	double		nids;			/* organizations asked for */
} OpsmigRelInfo;

/* Executor state of a scan (or of a direct DELETE). */
typedef struct OpsmigScanState
{
	OpsmigConn *conn;
	ColumnMap  *map;
	OrgFilter	filter;
	bool		need_names;
	int			cache_ttl_ms;
	ExprState  *filter_state;
	MemoryContext scan_cxt;		/* one per (re)scan: its deletion stops all */
	OpsmigScan *scan;
	bool		no_ids;			/* this (re)scan names no organization */
	OpsmigStats work;			/* API work of this node's own (re)scans */
	/* direct DELETE */
	bool		direct_done;
	int			deleted;
} OpsmigScanState;

/* Executor state of INSERT / DELETE row by row, and of COPY FROM. */
typedef struct OpsmigModifyState
{
	OpsmigConn *conn;
	ColumnMap  *map;
	AttrNumber	junk_org_id;
	AttrNumber	junk_status;
	AttrNumber	junk_org_name;
	MemoryContext row_cxt;

	/*
	 * COPY FROM hands rows over one at a time; they are held here until a
	 * batch is full, so that their POSTs run side by side as INSERT's do.
	 */
	bool		hold_rows;
	int			nheld;
	int			held_size;		/* fixed at the start: options may change */
	TupleTableSlot **held;
	MemoryContext held_cxt;
	OpsmigStats work;			/* API work of these rows, for EXPLAIN */
} OpsmigModifyState;

/* ----------------------------------------------------------------
 * Helpers
 * ----------------------------------------------------------------
 */

static ColumnMap *
column_map_make(OpsmigColumn *col, int natts)
{
	ColumnMap  *map = palloc0(sizeof(ColumnMap));
	int			i;

	map->natts = natts;
	map->col = col;
	for (i = 0; i < natts; i++)
		if (col[i] != OPSMIG_COL_NONE)
			map->attno[col[i]] = i + 1;
	return map;
}

static ColumnMap *
column_map_of(Relation rel)
{
	return column_map_make(opsmig_column_map(rel), RelationGetDescr(rel)->natts);
}

/* The map as a plan can carry it: the field of each attribute. */
static List *
column_map_to_list(const ColumnMap *map)
{
	List	   *list = NIL;
	int			i;

	for (i = 0; i < map->natts; i++)
		list = lappend_int(list, (int) map->col[i]);
	return list;
}

static ColumnMap *
column_map_from_list(List *list)
{
	OpsmigColumn *col = palloc(sizeof(OpsmigColumn) * Max(list_length(list), 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, list)
		col[i++] = (OpsmigColumn) lfirst_int(lc);
	return column_map_make(col, i);
}

static OpsmigConn *
connection_for(Relation rel, Oid userid)
{
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));

	return opsmig_get_connection(GetUserMapping(userid, table->serverid));
}

/*
 * A value the API sent, as a Datum of column i (text or varchar).  Like
 * postgres_fdw's input conversion, a value longer than a varchar(n)
 * column allows is an error, never a silently longer value.
 */
static Datum
column_datum(TupleDesc tupdesc, int i, const char *v, const char *org_id)
{
	Form_pg_attribute att = TupleDescAttr(tupdesc, i);
	int			len;

	if (att->atttypmod >= (int32) VARHDRSZ &&
		(len = pg_mbstrlen(v)) > att->atttypmod - (int32) VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("value too long for column \"%s\" of type %s",
						NameStr(att->attname),
						format_type_with_typemod(att->atttypid, att->atttypmod)),
				 errdetail("The API answered with %d characters for organization %s.",
						   len, org_id),
				 errhint("Declare the column as text or as varchar without a length.")));
	return CStringGetTextDatum(v);
}

/*
 * Put a row in a slot: each column gets the field it shows from fields[]
 * (indexed by OpsmigColumn), NULL where that is NULL; link_token is
 * write-only and always NULL.  A scan, RETURNING of INSERT and of DELETE
 * all show a row so, and all check the API's text against a varchar(n)
 * column the same way.  The slot is left for the caller to store.
 */
static void
fill_slot(TupleTableSlot *slot, const ColumnMap *map,
		  const char *const fields[OPSMIG_NUM_COLUMNS], const char *org_id)
{
	int			i;

	for (i = 0; i < map->natts; i++)
	{
		OpsmigColumn col = map->col[i];
		const char *v = (col == OPSMIG_COL_NONE || col == OPSMIG_COL_LINK_TOKEN) ?
			NULL : fields[col];

		slot->tts_isnull[i] = (v == NULL);
		slot->tts_values[i] = v ? column_datum(slot->tts_tupleDescriptor, i, v, org_id) :
			(Datum) 0;
	}
}

static Expr *
strip_relabel(Expr *e)
{
	while (e && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e;
}

static bool
is_org_id_var(Expr *e, Index relid, AttrNumber org_id_attno)
{
	Var		   *v = (Var *) strip_relabel(e);

	return v && IsA(v, Var) && v->varno == relid &&
		v->varattno == org_id_attno && v->varlevelsup == 0;
}

/*
 * Is this clause "org_id = expr" or "org_id = ANY(array expr)", with an
 * expr that does not depend on this relation and can be computed before
 * the scan?  Both are text equality (varchar columns are relabelled to text).
 * Only under a deterministic collation: a case- or accent-insensitive one
 * makes "org_id = 'ABC...'" true for an id the API writes otherwise, and the
 * scan would drop such a value as malformed instead of matching it.
 */
static OrgFilter
org_id_clause(PlannerInfo *root, Expr *clause, Index relid,
			  AttrNumber org_id_attno, Expr **value)
{
	Expr	   *other = NULL;
	OrgFilter	kind = ORG_FILTER_NONE;
	Oid			collid = exprInputCollation((Node *) clause);

	if (org_id_attno == InvalidAttrNumber)
		return ORG_FILTER_NONE;
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;

		if (list_length(op->args) != 2 || get_opcode(op->opno) != F_TEXTEQ)
			return ORG_FILTER_NONE;
		if (is_org_id_var(linitial(op->args), relid, org_id_attno))
			other = lsecond(op->args);
		else if (is_org_id_var(lsecond(op->args), relid, org_id_attno))
			other = linitial(op->args);
		kind = ORG_FILTER_EQ;
	}
	else if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;

		if (!saop->useOr || get_opcode(saop->opno) != F_TEXTEQ ||
			!is_org_id_var(linitial(saop->args), relid, org_id_attno))
			return ORG_FILTER_NONE;
		other = lsecond(saop->args);
		kind = ORG_FILTER_ANY;
	}
	if (other == NULL ||
		!OidIsValid(collid) || !get_collation_isdeterministic(collid) ||
		bms_is_member(relid, pull_varnos(root, (Node *) other)) ||
		contain_volatile_functions((Node *) other) ||
		contain_subplans((Node *) other))
		return ORG_FILTER_NONE;
	*value = other;
	return kind;
}

/* The first clause of the list the API can apply, if any. */
static RestrictInfo *
find_org_id_clause(PlannerInfo *root, List *rinfos, Index relid,
				   AttrNumber org_id_attno, OrgFilter *kind, Expr **value)
{
	ListCell   *lc;

	foreach(lc, rinfos)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		*kind = org_id_clause(root, ri->clause, relid, org_id_attno, value);
		if (*kind != ORG_FILTER_NONE)
			return ri;
	}
	*kind = ORG_FILTER_NONE;
	*value = NULL;
	return NULL;
}

static double
estimate_ids(OrgFilter kind, Expr *value)
{
	if (kind == ORG_FILTER_EQ)
		return 1;
	if (kind == ORG_FILTER_ANY)
	{
		if (IsA(value, Const) && !((Const *) value)->constisnull)
			return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) value)->constvalue)),
								  ARR_DIMS(DatumGetArrayTypeP(((Const *) value)->constvalue)));
		if (IsA(value, ArrayExpr))
			return list_length(((ArrayExpr *) value)->elements);
		return DEFAULT_ARRAY_ESTIMATE;
	}
	return DEFAULT_ORG_ESTIMATE;
}

static int
cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Evaluate the pushed-down org_id value(s) for this (re)scan: NULLs and
 * malformed ids dropped, duplicates asked once.  A malformed id names no
 * organization, so it matches no row, exactly as the same condition
 * checked locally would: whether it is a constant, a parameter of a
 * generic plan or a nested loop's join key must not change the result.
 * It is never sent.
 */
static List *
evaluate_org_ids(OpsmigScanState *st, ExprContext *econtext)
{
	Datum		value;
	bool		isnull;
	char	  **ids;
	int			nids = 0;
	List	   *result = NIL;
	int			i;

	value = ExecEvalExpr(st->filter_state, econtext, &isnull);
	if (isnull)
		return NIL;
	if (st->filter == ORG_FILTER_EQ)
	{
		ids = palloc(sizeof(char *));
		ids[nids++] = TextDatumGetCString(value);
	}
	else
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval, &typalign);
		deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval, typalign,
						  &elems, &nulls, &nelems);
		ids = palloc(sizeof(char *) * Max(nelems, 1));
		for (i = 0; i < nelems; i++)
			if (!nulls[i])
				ids[nids++] = TextDatumGetCString(elems[i]);
	}

	qsort(ids, nids, sizeof(char *), cmp_cstring);
	for (i = 0; i < nids; i++)
		if ((i == 0 || strcmp(ids[i], ids[i - 1]) != 0) && parse_valid_org_id(ids[i]))
			result = lappend(result, ids[i]);
	return result;
}

/* ----------------------------------------------------------------
 * Planning
 * ----------------------------------------------------------------
 */

static void
opsmigGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	OpsmigRelInfo *info = palloc0(sizeof(OpsmigRelInfo));
	Relation	rel = table_open(foreigntableid, NoLock);
	OpsmigServerOptions opts;
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	List	   *local = NIL;

	info->map = column_map_of(rel);
	table_close(rel, NoLock);
	info->org_id_attno = info->map->attno[OPSMIG_COL_ORG_ID];
	info->org_name_attno = info->map->attno[OPSMIG_COL_ORG_NAME];

	opsmig_get_server_options(GetForeignServer(baserel->serverid), &opts);
	info->request_cost = opts.request_cost;
	info->concurrency = opts.max_concurrent_requests;

	/* org_name costs the organization listing: note whether it is used. */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &attrs);
	info->need_names = info->org_name_attno != InvalidAttrNumber &&
		(bms_is_member(info->org_name_attno - FirstLowInvalidHeapAttributeNumber, attrs) ||
		 bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs));

	info->filter_rinfo = find_org_id_clause(root, baserel->baserestrictinfo,
											baserel->relid, info->org_id_attno,
											&info->filter, &info->filter_value);
	info->nids = estimate_ids(info->filter, info->filter_value);

	foreach(lc, baserel->baserestrictinfo)
		if (lfirst(lc) != info->filter_rinfo)
			local = lappend(local, lfirst(lc));
	baserel->rows = clamp_row_est(info->nids *
								  clauselist_selectivity(root, local, baserel->relid,
														 JOIN_INNER, NULL));
	baserel->fdw_private = info;
}

/*
 * Cost is counted in API requests, not seconds: the API is rate limited,
 * so a plan that makes fewer calls is the better plan even when
 * concurrency would hide their latency.
 */
static void
org_scan_cost(OpsmigRelInfo *info, double nids, bool listing, double rows,
			  Cost *startup, Cost *total)
{
	double		requests = nids + (listing ? 1 + nids / 500 : 0);

	*startup = info->request_cost;
	*total = requests * info->request_cost + rows * cpu_tuple_cost;
}

typedef struct EcMatchArg
{
	Index		relid;
	AttrNumber	attno;
} EcMatchArg;

static bool
ec_member_is_org_id(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
					EquivalenceMember *em, void *arg)
{
	EcMatchArg *m = (EcMatchArg *) arg;

	return is_org_id_var(em->em_expr, m->relid, m->attno);
}

static void
add_param_path(PlannerInfo *root, RelOptInfo *baserel, OpsmigRelInfo *info,
			   RestrictInfo *rinfo)
{
	Relids		required_outer;
	ParamPathInfo *ppi;
	OrgFilter	kind;
	Expr	   *value;
	Cost		startup,
				total;
	double		nids;

	kind = org_id_clause(root, rinfo->clause, baserel->relid, info->org_id_attno, &value);
	if (kind == ORG_FILTER_NONE)
		return;
	required_outer = bms_difference(rinfo->clause_relids, baserel->relids);
	required_outer = bms_union(required_outer, baserel->lateral_relids);
	if (bms_is_empty(required_outer))
		return;
	ppi = get_baserel_parampathinfo(root, baserel, required_outer);
	nids = estimate_ids(kind, value);
	org_scan_cost(info, nids, info->need_names, nids, &startup, &total);
	add_path(baserel, (Path *)
			 opsmig_foreign_base_path(root, baserel, Min(ppi->ppi_rows, nids),
									  startup, total, required_outer));
}

static void
opsmigGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	OpsmigRelInfo *info = (OpsmigRelInfo *) baserel->fdw_private;
	Cost		startup,
				total;
	ListCell   *lc;

	org_scan_cost(info, info->nids,
				  info->filter == ORG_FILTER_NONE || info->need_names,
				  baserel->rows, &startup, &total);
	add_path(baserel, (Path *)
			 opsmig_foreign_base_path(root, baserel, baserel->rows, startup, total,
									  baserel->lateral_relids));

	/*
	 * Parameterized paths: with a join key on org_id, a nested loop can ask
	 * for just the organizations the outer side names, one call each.
	 */
	if (info->filter != ORG_FILTER_NONE || info->org_id_attno == InvalidAttrNumber)
		return;
	{
		EcMatchArg	arg = {baserel->relid, info->org_id_attno};
		List	   *clauses;

		clauses = generate_implied_equalities_for_column(root, baserel,
														 ec_member_is_org_id, &arg,
														 baserel->lateral_referencers);
		foreach(lc, clauses)
			add_param_path(root, baserel, info, lfirst_node(RestrictInfo, lc));
	}
	foreach(lc, baserel->joininfo)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (!join_clause_is_movable_to(ri, baserel))
			continue;
		add_param_path(root, baserel, info, ri);
	}
}

static ForeignScan *
opsmigGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
					 ForeignPath *best_path, List *tlist, List *scan_clauses,
					 Plan *outer_plan)
{
	OpsmigRelInfo *info = (OpsmigRelInfo *) baserel->fdw_private;
	OrgFilter	kind;
	Expr	   *value;
	RestrictInfo *pushed;
	List	   *local = NIL;
	List	   *fdw_exprs = NIL;
	ListCell   *lc;

	/*
	 * scan_clauses holds the base restrictions and, for a parameterized
	 * path, its join clauses.  The one sent to the API is exact (the API
	 * answers for exactly that id), so it is not checked again locally.
	 */
	pushed = find_org_id_clause(root, scan_clauses, baserel->relid,
								info->org_id_attno, &kind, &value);
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (ri != pushed && !ri->pseudoconstant)
			local = lappend(local, ri->clause);
	}
	if (pushed)
		fdw_exprs = list_make1(value);

	return make_foreignscan(tlist, local, baserel->relid, fdw_exprs,
							list_make4(makeInteger(kind),
									   makeBoolean(info->need_names),
									   makeBoolean(local != NIL),
									   column_map_to_list(info->map)),
							NIL, NIL, outer_plan);
}

/* ----------------------------------------------------------------
 * Scan
 * ----------------------------------------------------------------
 */

/*
 * Whether the statement deletes anything: it is a DELETE, or one of its
 * WITH queries is (each sits at the top of its own subplan).
 */
static bool
statement_deletes(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (stmt->commandType == CMD_DELETE)
		return true;
	foreach(lc, stmt->subplans)
	{
		Plan	   *plan = (Plan *) lfirst(lc);

		if (plan && IsA(plan, ModifyTable) &&
			((ModifyTable *) plan)->operation == CMD_DELETE)
			return true;
	}
	return false;
}

static void
opsmigBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	OpsmigScanState *st = palloc0(sizeof(OpsmigScanState));

	node->fdw_state = st;
	st->map = column_map_from_list(list_nth(fsplan->fdw_private, FdwScanPrivateColumns));
	st->filter = (OrgFilter) intVal(list_nth(fsplan->fdw_private, FdwScanPrivateFilter));
	st->need_names = boolVal(list_nth(fsplan->fdw_private, FdwScanPrivateNeedNames));
	if (st->filter != ORG_FILTER_NONE)
		st->filter_state = ExecInitExpr(linitial(fsplan->fdw_exprs), (PlanState *) node);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	st->conn = connection_for(rel, opsmig_foreign_scan_user(fsplan, estate));
	opsmig_activity_begin(estate->es_query_cxt, opsmig_conn_server_name(st->conn));

	/*
	 * A DELETE acts on what is there now, never on a cached answer: no scan
	 * of a statement that deletes reads the cache, neither the one that
	 * feeds a row-by-row DELETE nor one that picks its rows from another
	 * side (DELETE ... WHERE org_id IN (SELECT ... WHERE status = ...),
	 * USING, a WITH).
	 */
	if (fsplan->operation == CMD_SELECT && !statement_deletes(estate->es_plannedstmt))
		st->cache_ttl_ms = opsmig_table_cache_ttl_ms(RelationGetRelid(rel), opsmig_conn_options(st->conn));
}

/*
 * Switch to the memory of this (re)scan, made on first use: everything of
 * its API work lives there, so that deleting it (end_scan) stops that work
 * whatever state it is in.
 */
static MemoryContext
enter_scan_context(ForeignScanState *node, OpsmigScanState *st)
{
	if (st->scan_cxt == NULL)
		st->scan_cxt = AllocSetContextCreate(node->ss.ps.state->es_query_cxt,
											 "opsmig_fdw scan", ALLOCSET_DEFAULT_SIZES);
	return MemoryContextSwitchTo(st->scan_cxt);
}

/* Begin the API work of this (re)scan. */
static void
start_scan(ForeignScanState *node, OpsmigScanState *st)
{
	MemoryContext old = enter_scan_context(node, st);
	List	   *ids = NIL;

	if (st->filter != ORG_FILTER_NONE)
	{
		ids = evaluate_org_ids(st, node->ss.ps.ps_ExprContext);
		st->no_ids = (ids == NIL);
	}
	if (!st->no_ids)
		st->scan = api_scan_begin(st->conn, ids, st->filter == ORG_FILTER_NONE,
								  st->need_names, st->cache_ttl_ms, &st->work);
	MemoryContextSwitchTo(old);
}

/* Stop the API work of this (re)scan; st->work keeps its counters. */
static void
end_scan(OpsmigScanState *st)
{
	if (st->scan_cxt == NULL)
		return;
	MemoryContextDelete(st->scan_cxt);
	st->scan_cxt = NULL;
	st->scan = NULL;
	st->no_ids = false;
}

static TupleTableSlot *
opsmigIterateForeignScan(ForeignScanState *node)
{
	OpsmigScanState *st = (OpsmigScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	OpsmigLink	link;
	const char *fields[OPSMIG_NUM_COLUMNS] = {NULL};

	ExecClearTuple(slot);
	if (st->scan_cxt == NULL)
		start_scan(node, st);
	if (st->no_ids || !api_scan_next(st->scan, &link))
		return slot;

	/* Datums go to the per-tuple context we are called in. */
	fields[OPSMIG_COL_ORG_ID] = link.org_id;
	fields[OPSMIG_COL_ORG_NAME] = link.org_name;
	fields[OPSMIG_COL_STATUS] = link.status;
	fill_slot(slot, st->map, fields, link.org_id);
	return ExecStoreVirtualTuple(slot);
}

static void
opsmigReScanForeignScan(ForeignScanState *node)
{
	end_scan((OpsmigScanState *) node->fdw_state);
}

static void
opsmigEndForeignScan(ForeignScanState *node)
{
	OpsmigScanState *st = (OpsmigScanState *) node->fdw_state;

	if (st)
		end_scan(st);
}

/* ----------------------------------------------------------------
 * INSERT and DELETE
 * ----------------------------------------------------------------
 */

static int
opsmigIsForeignRelUpdatable(Relation rel)
{
	/* UPDATE is accepted here only to be refused with a useful message. */
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

/*
 * A row identity column: a Var of the column's own type, so that a table
 * declared with varchar columns gets varchar Vars.
 */
static char *
junk_name(const char *prefix, AttrNumber attno)
{
	return psprintf("%s_%d", prefix, (int) attno);
}

static void
add_identity_column(PlannerInfo *root, Index rtindex, TupleDesc tupdesc,
					AttrNumber attno, const char *name)
{
	Form_pg_attribute att = TupleDescAttr(tupdesc, attno - 1);

	add_row_identity_var(root,
						 makeVar(rtindex, attno, att->atttypid, att->atttypmod,
								 att->attcollation, 0),
						 rtindex, junk_name(name, attno));
}

/*
 * Does the DELETE's RETURNING show this column?  RETURNING names the
 * statement's target: when that is a partitioned (or inheritance) parent
 * and this table one of its children, the parent's columns are matched
 * by name (children have the parent's names, not always its positions).
 */
static bool
returning_shows(PlannerInfo *root, TupleDesc tupdesc, AttrNumber attno)
{
	Index		target = root->parse->resultRelation;
	Oid			target_relid = planner_rt_fetch(target, root)->relid;
	const char *name = NameStr(TupleDescAttr(tupdesc, attno - 1)->attname);
	Bitmapset  *returned = NULL;
	int			k = -1;

	pull_varattnos((Node *) root->parse->returningList, target, &returned);
	while ((k = bms_next_member(returned, k)) >= 0)
	{
		AttrNumber	a = k + FirstLowInvalidHeapAttributeNumber;

		if (a == 0)
			return true;		/* the whole row */
		if (a > 0 && strcmp(get_attname(target_relid, a, false), name) == 0)
			return true;
	}
	return false;
}

static void
opsmigAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							  RangeTblEntry *target_rte, Relation target_relation)
{
	TupleDesc	tupdesc = RelationGetDescr(target_relation);
	ColumnMap  *map;
	AttrNumber	attno;

	if (root->parse->commandType != CMD_DELETE)
		return;

	/*
	 * The planner asks for the row identity before it sizes the relation
	 * (opsmigGetForeignRelSize): no map of this statement exists yet.
	 */
	map = column_map_of(target_relation);
	attno = map->attno[OPSMIG_COL_ORG_ID];
	if (attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot delete from foreign table \"%s\" because it has no org_id column",
						RelationGetRelationName(target_relation))));
	add_identity_column(root, rtindex, tupdesc, attno, JUNK_ORG_ID);

	/* The status before deletion, for DELETE ... RETURNING status. */
	attno = map->attno[OPSMIG_COL_STATUS];
	if (attno != InvalidAttrNumber)
		add_identity_column(root, rtindex, tupdesc, attno, JUNK_STATUS);

	/*
	 * org_name costs the organization listing, so the scan reads it only
	 * when RETURNING shows it.
	 */
	attno = map->attno[OPSMIG_COL_ORG_NAME];
	if (attno != InvalidAttrNumber && returning_shows(root, tupdesc, attno))
		add_identity_column(root, rtindex, tupdesc, attno, JUNK_ORG_NAME);
}

static void
refuse_on_conflict(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("INSERT with ON CONFLICT is not supported on opsmig_fdw foreign table \"%s\"",
					RelationGetRelationName(rel))));
}

/* INSERT, COPY FROM and partition routing need org_id and link_token. */
static void
check_insertable(Relation rel, const ColumnMap *map)
{
	if (map->attno[OPSMIG_COL_ORG_ID] == InvalidAttrNumber ||
		map->attno[OPSMIG_COL_LINK_TOKEN] == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert into foreign table \"%s\" because it lacks an org_id or link_token column",
						RelationGetRelationName(rel)),
				 errhint("A link is created from org_id and link_token.")));
}

/*
 * The column map goes to BeginForeignModify in fdw_private.  A DELETE has
 * planned the scan of its table already: that scan's map serves.
 */
static List *
opsmigPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
						Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	RelOptInfo *scanned = root->simple_rel_array ? root->simple_rel_array[resultRelation] : NULL;
	ColumnMap  *map;
	Relation	rel;

	if (plan->operation == CMD_UPDATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("UPDATE is not supported on opsmig_fdw foreign table \"%s\"",
						get_rel_name(rte->relid)),
				 errdetail("The API cannot change a migration link in place."),
				 errhint("DELETE the row, then INSERT it with the new link_token.")));
	if (plan->operation == CMD_DELETE && scanned && scanned->fdw_private)
		map = ((OpsmigRelInfo *) scanned->fdw_private)->map;
	else
	{
		rel = table_open(rte->relid, NoLock);
		if (plan->operation == CMD_INSERT && plan->onConflictAction != ONCONFLICT_NONE)
			refuse_on_conflict(rel);
		map = column_map_of(rel);
		if (plan->operation == CMD_INSERT)
			check_insertable(rel, map);
		table_close(rel, NoLock);
	}
	return list_make1(column_map_to_list(map));
}

/*
 * The state INSERT, DELETE and COPY FROM share.  A partition that tuple
 * routing reaches acts as the user of the statement's target, as
 * postgres_fdw does (opsmig_result_rel_user).
 */
static OpsmigModifyState *
begin_modify(EState *estate, ResultRelInfo *rinfo, ColumnMap *map, bool explain_only)
{
	Relation	rel = rinfo->ri_RelationDesc;
	OpsmigModifyState *st = palloc0(sizeof(OpsmigModifyState));

	rinfo->ri_FdwState = st;
	st->map = map;
	if (explain_only)
		return st;
	st->conn = connection_for(rel, opsmig_result_rel_user(rinfo, estate));
	opsmig_activity_begin(estate->es_query_cxt, opsmig_conn_server_name(st->conn));
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "opsmig_fdw modify",
										ALLOCSET_SMALL_SIZES);
	return st;
}

/* Where the subplan puts the row identity column of a field, if it does. */
static AttrNumber
find_junk(Plan *subplan, OpsmigModifyState *st, OpsmigColumn col, const char *prefix)
{
	AttrNumber	attno = st->map->attno[col];

	if (attno == InvalidAttrNumber)
		return InvalidAttrNumber;
	return ExecFindJunkAttributeInTlist(subplan->targetlist, junk_name(prefix, attno));
}

static void
opsmigBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						 List *fdw_private, int subplan_index, int eflags)
{
	OpsmigModifyState *st;

	st = begin_modify(mtstate->ps.state, rinfo, column_map_from_list(linitial(fdw_private)),
					  (eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
	if (st->conn && mtstate->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->junk_org_id = find_junk(subplan, st, OPSMIG_COL_ORG_ID, JUNK_ORG_ID);
		st->junk_status = find_junk(subplan, st, OPSMIG_COL_STATUS, JUNK_STATUS);
		st->junk_org_name = find_junk(subplan, st, OPSMIG_COL_ORG_NAME, JUNK_ORG_NAME);
		if (!AttributeNumberIsValid(st->junk_org_id))
			elog(ERROR, "opsmig_fdw: could not find junk column %s", JUNK_ORG_ID);
	}
}

/* Does an AFTER INSERT trigger of this relation expect its rows created? */
static bool
has_after_insert_triggers(ResultRelInfo *rinfo)
{
	TriggerDesc *td = rinfo ? rinfo->ri_TrigDesc : NULL;

	return td && (td->trig_insert_after_row || td->trig_insert_after_statement);
}

/*
 * COPY FROM, and rows routed into this table as a partition of a
 * partitioned table.  They create links exactly as INSERT does: the
 * executor batches routed INSERT rows itself (GetForeignModifyBatchSize);
 * COPY hands rows over one at a time (mtstate has no plan), so they are
 * held here and sent a batch at a time, unless an AFTER trigger must see
 * each row created when it fires.
 */
static void
opsmigBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	Relation	rel = rinfo->ri_RelationDesc;
	OpsmigModifyState *st;
	ColumnMap  *map;

	/* A MERGE that PostgreSQL let through: its INSERT action was routed here. */
	if (mtstate->operation == CMD_MERGE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot insert into opsmig_fdw foreign table \"%s\" by MERGE",
						RelationGetRelationName(rel)),
				 errhint("INSERT the rows into the foreign table instead.")));
	if (mtstate->operation != CMD_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot move rows into opsmig_fdw foreign table \"%s\" by UPDATE",
						RelationGetRelationName(rel)),
				 errhint("DELETE the row, then INSERT it into the foreign table.")));
	if (mtstate->ps.plan != NULL &&
		((ModifyTable *) mtstate->ps.plan)->onConflictAction != ONCONFLICT_NONE)
		refuse_on_conflict(rel);

	/* No plan of ours made a map: COPY and tuple routing reach us here only. */
	map = column_map_of(rel);
	check_insertable(rel, map);
	st = begin_modify(mtstate->ps.state, rinfo, map, false);
	if (mtstate->ps.plan == NULL &&
		opsmig_conn_options(st->conn)->max_concurrent_requests > 1 &&
		!has_after_insert_triggers(rinfo) &&
		!has_after_insert_triggers(rinfo->ri_RootResultRelInfo))
	{
		MemoryContext old;
		TupleDesc	tupdesc;
		int			i;

		st->hold_rows = true;
		/*
		 * The batch size is fixed now: a trigger could ALTER the server
		 * while the COPY runs, and the connection then rebuilt with other
		 * options, but held[] keeps the size it was made with.
		 */
		st->held_size = opsmig_conn_options(st->conn)->max_concurrent_requests;
		st->held_cxt = AllocSetContextCreate(mtstate->ps.state->es_query_cxt,
											 "opsmig_fdw held rows",
											 ALLOCSET_DEFAULT_SIZES);
		old = MemoryContextSwitchTo(st->held_cxt);
		/* A copy of the descriptor: the relcache's would be pinned. */
		tupdesc = CreateTupleDescCopy(RelationGetDescr(rel));
		st->held = palloc(sizeof(TupleTableSlot *) * st->held_size);
		for (i = 0; i < st->held_size; i++)
			st->held[i] = MakeSingleTupleTableSlot(tupdesc, &TTSOpsVirtual);
		MemoryContextSwitchTo(old);
	}
}

/* A text column's value from a slot, as a C string, or NULL. */
static char *
slot_text(TupleTableSlot *slot, const ColumnMap *map, OpsmigColumn col)
{
	AttrNumber	attno = map->attno[col];

	if (attno == InvalidAttrNumber || slot->tts_isnull[attno - 1])
		return NULL;
	return TextDatumGetCString(slot->tts_values[attno - 1]);
}

/* Refuse a row no link can be made of; else its org_id and token. */
static void
check_row(OpsmigModifyState *st, ResultRelInfo *rinfo, TupleTableSlot *slot,
		  char **org_id, char **token)
{
	slot_getallattrs(slot);
	*org_id = slot_text(slot, st->map, OPSMIG_COL_ORG_ID);
	if (*org_id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("org_id must not be null in an INSERT into \"%s\"",
						RelationGetRelationName(rinfo->ri_RelationDesc))));
	api_check_org_id(*org_id, "org_id");
	*token = slot_text(slot, st->map, OPSMIG_COL_LINK_TOKEN);
	if (*token == NULL || (*token)[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("link_token must be given to link organization \"%s\"", *org_id),
				 errhint("Generate a link token in the target Atlas organization (Organization Settings, Connect to Atlas) and INSERT it as link_token.")));
	/* The API reads UTF-8 JSON, whatever the database's encoding. */
	*token = pg_server_to_any(*token, strlen(*token), PG_UTF8);
	if (slot_text(slot, st->map, OPSMIG_COL_STATUS) != NULL ||
		slot_text(slot, st->map, OPSMIG_COL_ORG_NAME) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("status and org_name cannot be set by INSERT"),
				 errdetail("The API sets a link's status; org_name comes from the organization."),
				 errhint("INSERT only org_id and link_token.")));
}

/*
 * Does anything read an inserted row back: RETURNING, a trigger (or a
 * transition table of the partitioned table it was routed through), a
 * view's check option?  Only then is the API's status put in it, so that
 * a varchar(n) too short for it fails only a statement that shows it,
 * not one that created links and never looks at them.
 */
static bool
inserted_row_is_read(ResultRelInfo *rinfo)
{
	return rinfo->ri_projectReturning != NULL ||
		rinfo->ri_TrigDesc != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_RootResultRelInfo != NULL &&
		 rinfo->ri_RootResultRelInfo->ri_TrigDesc != NULL);
}

/*
 * Create the links of these rows, concurrently.  Every row is checked
 * before any request, so one bad row changes nothing.  With "shown", the
 * slots get what RETURNING sees: the API's status, the token as NULL.
 */
static void
insert_rows(OpsmigModifyState *st, ResultRelInfo *rinfo, TupleTableSlot **slots,
			int n, bool shown)
{
	MemoryContext old;
	char	  **org_ids;
	char	  **tokens;
	char	  **statuses;
	int			r;

	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	org_ids = palloc(sizeof(char *) * n);
	tokens = palloc(sizeof(char *) * n);
	statuses = palloc0(sizeof(char *) * n);

	for (r = 0; r < n; r++)
		check_row(st, rinfo, slots[r], &org_ids[r], &tokens[r]);

	api_create_links(st->conn, n, org_ids, tokens, statuses, &st->work);

	for (r = 0; r < n; r++)
	{
		const char *fields[OPSMIG_NUM_COLUMNS] = {NULL};

		fields[OPSMIG_COL_ORG_ID] = org_ids[r];
		if (shown)
			fields[OPSMIG_COL_STATUS] = statuses[r];
		fill_slot(slots[r], st->map, fields, org_ids[r]);
	}
	MemoryContextSwitchTo(old);
}

/*
 * An error from the API while held rows are sent belongs to any row of the
 * batch, not to the COPY line PostgreSQL names (the batch's last): say so.
 */
typedef struct HeldRowsContext
{
	int			n;
	bool		at_end;			/* after the last line: no line is named */
} HeldRowsContext;

static void
held_rows_error_context(void *arg)
{
	HeldRowsContext *c = (HeldRowsContext *) arg;

	if (!c->at_end)
		errcontext("sending the batch of %d COPY rows that ends on the line below", c->n);
	else if (c->n == 1)
		errcontext("sending the last row of the COPY");
	else
		errcontext("sending the last %d rows of the COPY", c->n);
}

/*
 * Send the rows COPY FROM has handed over so far: a full batch while the
 * COPY reads on, or what is left at its end.
 */
static void
send_held_rows(OpsmigModifyState *st, ResultRelInfo *rinfo, bool at_end)
{
	ErrorContextCallback errcallback;
	HeldRowsContext context = {st->nheld, at_end};
	int			n = st->nheld;
	int			r;

	if (n == 0)
		return;
	st->nheld = 0;
	errcallback.callback = held_rows_error_context;
	errcallback.arg = &context;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	insert_rows(st, rinfo, st->held, n, false);	/* nobody reads them */
	error_context_stack = errcallback.previous;
	for (r = 0; r < n; r++)
		ExecClearTuple(st->held[r]);
}

static TupleTableSlot *
opsmigExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
						TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	OpsmigModifyState *st = (OpsmigModifyState *) rinfo->ri_FdwState;
	MemoryContext old;

	if (st->hold_rows)
	{
		char	   *org_id;
		char	   *token;

		/* Checked now, so that an error names the COPY line it is on. */
		MemoryContextReset(st->row_cxt);
		old = MemoryContextSwitchTo(st->row_cxt);
		check_row(st, rinfo, slot, &org_id, &token);
		MemoryContextSwitchTo(old);
		ExecCopySlot(st->held[st->nheld], slot);
		ExecMaterializeSlot(st->held[st->nheld]);
		if (++st->nheld == st->held_size)
			send_held_rows(st, rinfo, false);
		return slot;
	}
	insert_rows(st, rinfo, &slot, 1, inserted_row_is_read(rinfo));
	return slot;
}

static void
opsmigEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
	OpsmigModifyState *st = (OpsmigModifyState *) rinfo->ri_FdwState;

	if (st == NULL)
		return;
	if (st->hold_rows)
	{
		send_held_rows(st, rinfo, true);
		MemoryContextDelete(st->held_cxt);
		st->hold_rows = false;
	}
	if (st->row_cxt)
		MemoryContextDelete(st->row_cxt);
	st->row_cxt = NULL;
}

/*
 * Multi-row INSERT and INSERT ... SELECT come in batches of
 * max_concurrent_requests rows, whose POSTs run side by side.
 */
static TupleTableSlot **
opsmigExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
							 TupleTableSlot **slots, TupleTableSlot **planSlots,
							 int *numSlots)
{
	insert_rows((OpsmigModifyState *) rinfo->ri_FdwState, rinfo, slots, *numSlots,
				inserted_row_is_read(rinfo));
	return slots;
}

static int
opsmigGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	OpsmigModifyState *st = (OpsmigModifyState *) rinfo->ri_FdwState;

	/*
	 * RETURNING and row triggers need each row back at once.  A COPY FROM
	 * batches its rows itself (hold_rows): from 16 PostgreSQL would batch
	 * them too if asked, and an error would then name no COPY line.
	 */
	if (st == NULL || st->conn == NULL || st->hold_rows ||
		rinfo->ri_projectReturning != NULL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return opsmig_conn_options(st->conn)->max_concurrent_requests;
}

/* A junk column's text, or NULL. */
static char *
junk_text(TupleTableSlot *planSlot, AttrNumber attno)
{
	Datum		d;
	bool		isnull;

	if (!AttributeNumberIsValid(attno))
		return NULL;
	d = ExecGetJunkAttribute(planSlot, attno, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

static TupleTableSlot *
opsmigExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
						TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	OpsmigModifyState *st = (OpsmigModifyState *) rinfo->ri_FdwState;
	MemoryContext old;
	const char *fields[OPSMIG_NUM_COLUMNS] = {NULL};
	char	   *org_id;

	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	org_id = junk_text(planSlot, st->junk_org_id);
	if (org_id == NULL)
		elog(ERROR, "opsmig_fdw: org_id is null in a row to delete");

	if (api_delete_links(st->conn, list_make1(org_id), &st->work) == 0)
	{
		MemoryContextSwitchTo(old);
		return NULL;			/* gone already: not counted as deleted */
	}

	/* RETURNING sees the row as the scan saw it; the token reads as NULL. */
	fields[OPSMIG_COL_ORG_ID] = org_id;
	fields[OPSMIG_COL_STATUS] = junk_text(planSlot, st->junk_status);
	fields[OPSMIG_COL_ORG_NAME] = junk_text(planSlot, st->junk_org_name);
	ExecClearTuple(slot);
	fill_slot(slot, st->map, fields, org_id);
	ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(old);
	return slot;
}

static void
opsmigEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	OpsmigModifyState *st = (OpsmigModifyState *) rinfo->ri_FdwState;

	if (st && st->row_cxt)
		MemoryContextDelete(st->row_cxt);
}

/* ----------------------------------------------------------------
 * Direct DELETE: no scan first when the API can be told what to delete
 * ----------------------------------------------------------------
 */

static ForeignScan *
modify_subplan_scan(ModifyTable *plan, Index resultRelation)
{
	Plan	   *subplan = outerPlan(plan);

	if (subplan && IsA(subplan, Result) && subplan->qual == NIL &&
		((Result *) subplan)->resconstantqual == NULL)
		subplan = outerPlan(subplan);
	if (subplan && IsA(subplan, ForeignScan) &&
		((ForeignScan *) subplan)->scan.scanrelid == resultRelation)
		return (ForeignScan *) subplan;
	return NULL;
}

static bool
opsmigPlanDirectModify(PlannerInfo *root, ModifyTable *plan,
					   Index resultRelation, int subplan_index)
{
	ForeignScan *fscan;

	if (plan->operation != CMD_DELETE || plan->returningLists != NIL)
		return false;
	fscan = modify_subplan_scan(plan, resultRelation);
	if (fscan == NULL || fscan->scan.plan.qual != NIL ||
		boolVal(list_nth(fscan->fdw_private, FdwScanPrivateLocalQuals)))
		return false;

	/* A join key from a nested loop is not there to evaluate up front. */
	if (contain_exec_param((Node *) fscan->fdw_exprs, NULL))
		return false;

	fscan->operation = CMD_DELETE;
	fscan->resultRelation = resultRelation;
	return true;
}

static void
opsmigBeginDirectModify(ForeignScanState *node, int eflags)
{
	opsmigBeginForeignScan(node, eflags);
}

/*
 * DELETE with org_id given: one DELETE per id, no status call first.
 * Unqualified: scan every link, then delete them all, concurrently.
 */
static TupleTableSlot *
opsmigIterateDirectModify(ForeignScanState *node)
{
	OpsmigScanState *st = (OpsmigScanState *) node->fdw_state;
	EState	   *estate = node->ss.ps.state;
	List	   *ids = NIL;
	MemoryContext old;

	if (!st->direct_done)
	{
		st->direct_done = true;
		if (st->filter != ORG_FILTER_NONE)
		{
			old = enter_scan_context(node, st);
			ids = evaluate_org_ids(st, node->ss.ps.ps_ExprContext);
		}
		else
		{
			OpsmigLink	link;

			st->need_names = false;
			start_scan(node, st);
			old = enter_scan_context(node, st);
			while (api_scan_next(st->scan, &link))
				ids = lappend(ids, link.org_id);
		}
		st->deleted = api_delete_links(st->conn, ids, &st->work);
		MemoryContextSwitchTo(old);
		estate->es_processed += st->deleted;
	}
	return ExecClearTuple(node->ss.ss_ScanTupleSlot);
}

static void
opsmigEndDirectModify(ForeignScanState *node)
{
	opsmigEndForeignScan(node);
}

/* ----------------------------------------------------------------
 * EXPLAIN
 * ----------------------------------------------------------------
 */

static void
explain_filter(ForeignScanState *node, ExplainState *es)
{
	OpsmigScanState *st = (OpsmigScanState *) node->fdw_state;
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;

	if (st->filter == ORG_FILTER_NONE)
		ExplainPropertyText("Org Listing", "all pages", es);
	else
	{
		List	   *ctx = set_deparse_context_plan(es->deparse_cxt,
												   (Plan *) fsplan, NIL);

		ExplainPropertyText("Org Ids",
							deparse_expression(linitial(fsplan->fdw_exprs), ctx,
											   false, false),
							es);
		if (st->need_names)
			ExplainPropertyText("Org Listing", "all pages (for org_name)", es);
	}
}

/*
 * The "API Requests" line of text format: every request kind on one line,
 * where the other formats have a property each.
 */
static void
explain_requests_line(const OpsmigStats *w, ExplainState *es)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
		if (opsmig_counters[i].explain_word)
			appendStringInfo(&buf, "%s%s=" INT64_FORMAT, buf.len > 0 ? " " : "",
							 opsmig_counters[i].explain_word, opsmig_stats_int64(w, i));
	ExplainPropertyText("API Requests", buf.data, es);
	pfree(buf.data);
}

/*
 * The API work of a node, as opsmig_counters.h says: each counter at its
 * position, under its conditions.  The rate-limit lines come only where the
 * rate limit showed, so other plans stay as they were.
 */
static void
explain_work(const OpsmigStats *w, bool cache_on, ExplainState *es)
{
	bool		rate_limited = false;
	bool		requests_shown = false;
	int			at;
	int			i;

	for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
		if ((opsmig_counters[i].explain_when & OPSMIG_EXPLAIN_RATE_LIMITED) &&
			opsmig_stats_nonzero(w, i))
			rate_limited = true;

	for (at = 1; at <= OPSMIG_NUM_COUNTERS; at++)
	{
		for (i = 0; i < OPSMIG_NUM_COUNTERS; i++)
		{
			const OpsmigCounter *c = &opsmig_counters[i];

			if (c->explain_at != at ||
				((c->explain_when & OPSMIG_EXPLAIN_TIMING) && !es->timing) ||
				((c->explain_when & OPSMIG_EXPLAIN_CACHE) && !cache_on &&
				 !opsmig_stats_nonzero(w, i)) ||
				((c->explain_when & OPSMIG_EXPLAIN_RATE_LIMITED) && !rate_limited))
				continue;
			if (c->explain_word && es->format == EXPLAIN_FORMAT_TEXT)
			{
				if (!requests_shown)
					explain_requests_line(w, es);
				requests_shown = true;
			}
			else if (c->is_double)
				ExplainPropertyFloat(c->explain_label, "ms", opsmig_stats_double(w, i), 1, es);
			else
				ExplainPropertyInteger(c->explain_label, NULL, opsmig_stats_int64(w, i), es);
		}
	}
}

static void
opsmigExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	OpsmigScanState *st = (OpsmigScanState *) node->fdw_state;

	if (es->verbose)
		explain_filter(node, es);
	if (es->analyze && st)
		explain_work(&st->work, st->cache_ttl_ms > 0, es);
}

/*
 * The requests of an INSERT or a row-by-row DELETE are the modify's own,
 * not the scan's under it: shown on the ModifyTable node.
 */
static void
opsmigExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						   List *fdw_private, int subplan_index,
						   ExplainState *es)
{
	OpsmigModifyState *st = (OpsmigModifyState *) rinfo->ri_FdwState;

	if (es->analyze && st)
		explain_work(&st->work, false, es);
}

static void
opsmigExplainDirectModify(ForeignScanState *node, ExplainState *es)
{
	OpsmigScanState *st = (OpsmigScanState *) node->fdw_state;

	ExplainPropertyText("API Operation",
						st->filter == ORG_FILTER_NONE ?
						"DELETE the link of every organization the scan finds" :
						"DELETE one link per org_id, no status call first", es);
	if (es->verbose)
		explain_filter(node, es);
	if (es->analyze)
	{
		explain_work(&st->work, st->cache_ttl_ms > 0, es);
		ExplainPropertyInteger("Links Deleted", NULL, st->deleted, es);
	}
}

/* ----------------------------------------------------------------
 * IMPORT FOREIGN SCHEMA
 * ----------------------------------------------------------------
 */

static List *
opsmigImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	bool		wanted;
	ListCell   *lc;

	if (strcmp(stmt->remote_schema, REMOTE_SCHEMA) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("schema \"%s\" is not offered by opsmig_fdw", stmt->remote_schema),
				 errhint("Use IMPORT FOREIGN SCHEMA %s FROM SERVER %s INTO ...",
						 REMOTE_SCHEMA, quote_identifier(server->servername))));

	/* An option nobody reads would look as if it had done something. */
	if (stmt->options != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA",
						linitial_node(DefElem, stmt->options)->defname),
				 errhint("opsmig_fdw's IMPORT FOREIGN SCHEMA takes no options; set table options afterwards with ALTER FOREIGN TABLE ... OPTIONS (ADD cache_ttl '60').")));

	wanted = (stmt->list_type != FDW_IMPORT_SCHEMA_LIMIT_TO);
	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (strcmp(rv->relname, REMOTE_TABLE) == 0)
			wanted = (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO);
	}
	if (!wanted)
		return NIL;

	return list_make1(psprintf("CREATE FOREIGN TABLE %s ("
							   "org_id text NOT NULL, "
							   "org_name text, "
							   "status text, "
							   "link_token text"
							   ") SERVER %s",
							   quote_identifier(REMOTE_TABLE),
							   quote_identifier(server->servername)));
}

Datum
opsmig_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = opsmigGetForeignRelSize;
	routine->GetForeignPaths = opsmigGetForeignPaths;
	routine->GetForeignPlan = opsmigGetForeignPlan;
	routine->BeginForeignScan = opsmigBeginForeignScan;
	routine->IterateForeignScan = opsmigIterateForeignScan;
	routine->ReScanForeignScan = opsmigReScanForeignScan;
	routine->EndForeignScan = opsmigEndForeignScan;

	routine->IsForeignRelUpdatable = opsmigIsForeignRelUpdatable;
	routine->AddForeignUpdateTargets = opsmigAddForeignUpdateTargets;
	routine->PlanForeignModify = opsmigPlanForeignModify;
	routine->BeginForeignModify = opsmigBeginForeignModify;
	routine->ExecForeignInsert = opsmigExecForeignInsert;
	routine->ExecForeignBatchInsert = opsmigExecForeignBatchInsert;
	routine->GetForeignModifyBatchSize = opsmigGetForeignModifyBatchSize;
	routine->ExecForeignDelete = opsmigExecForeignDelete;
	routine->EndForeignModify = opsmigEndForeignModify;
	routine->BeginForeignInsert = opsmigBeginForeignInsert;
	routine->EndForeignInsert = opsmigEndForeignInsert;

	routine->PlanDirectModify = opsmigPlanDirectModify;
	routine->BeginDirectModify = opsmigBeginDirectModify;
	routine->IterateDirectModify = opsmigIterateDirectModify;
	routine->EndDirectModify = opsmigEndDirectModify;

	routine->ExplainForeignScan = opsmigExplainForeignScan;
	routine->ExplainForeignModify = opsmigExplainForeignModify;
	routine->ExplainDirectModify = opsmigExplainDirectModify;

	routine->ImportForeignSchema = opsmigImportForeignSchema;

	PG_RETURN_POINTER(routine);
}
