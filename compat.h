/*-------------------------------------------------------------------------
 *
 * compat.h
 *		  What differs between the PostgreSQL majors opsmig_fdw builds
 *		  against (15, 16, 17, 18), behind names that say what each does.
 *
 * Every PG_VERSION_NUM test of the extension lives here, so the callbacks
 * read the same on every major.  Each wrapper uses the newer major's own
 * API where it has one, and does what the older API did where it does not;
 * the behaviour, EXPLAIN output and SQLSTATEs are the same on all of them.
 *
 * Include it after postgres.h and the headers a file already needs.
 *
 *-------------------------------------------------------------------------
 */
#ifndef OPSMIG_COMPAT_H
#define OPSMIG_COMPAT_H

#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "storage/latch.h"
#include "storage/proc.h"		/* MyBackendId (15, 16), MyProcNumber (17+) */

/* 18 moved ExplainState and ExplainProperty*() out of commands/explain.h. */
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/* 17 ties a WaitEventSet to a resource owner instead of a memory context. */
#if PG_VERSION_NUM >= 170000
#include "utils/resowner.h"
#endif

/*
 * The user whose user mapping a foreign scan (or a direct DELETE) uses: the
 * owner of the view it is reached through, else the current user.  16 moved
 * checkAsUser from the range table entry to RTEPermissionInfo, and has the
 * planner copy it into the ForeignScan node (postgres_fdw reads it there).
 */
static inline Oid
opsmig_foreign_scan_user(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	Index		rtindex = fsplan->operation == CMD_SELECT ?
		fsplan->scan.scanrelid : fsplan->resultRelation;
	RangeTblEntry *rte = exec_rt_fetch(rtindex, estate);

	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * The user whose user mapping an INSERT, DELETE or COPY FROM uses.  A
 * partition that tuple routing reaches has no range table entry of its own
 * (index 0) and acts as the user of the statement's target.  16 has the
 * executor's own answer (it reads the RTEPermissionInfo).
 */
static inline Oid
opsmig_result_rel_user(ResultRelInfo *rinfo, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetResultRelCheckAsUser(rinfo, estate);
#else
	Index		rtindex = rinfo->ri_RangeTableIndex;
	RangeTblEntry *rte;

	if (rtindex == 0)
		rtindex = rinfo->ri_RootResultRelInfo->ri_RangeTableIndex;
	rte = exec_rt_fetch(rtindex, estate);
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * A path scanning a foreign base relation, with no pathkeys, no outer plan
 * and no private data.  17 added fdw_restrictinfo, which only a foreign
 * join fills (its pseudoconstant quals): a base relation passes NIL, as
 * postgres_fdw does.  18 added disabled_nodes: no enable_* setting disables
 * a foreign scan, so it is 0.
 */
static inline ForeignPath *
opsmig_foreign_base_path(PlannerInfo *root, RelOptInfo *rel, double rows,
						 Cost startup_cost, Cost total_cost, Relids required_outer)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows, 0, startup_cost, total_cost,
								   NIL, required_outer, NULL, NIL, NIL);
#elif PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost, total_cost,
								   NIL, required_outer, NULL, NIL, NIL);
#else
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost, total_cost,
								   NIL, required_outer, NULL, NIL);
#endif
}

/*
 * A WaitEventSet for one wait, freed by the caller (in PG_FINALLY).  17
 * tracks it in a resource owner, which also frees it if an error escapes;
 * before 17 it lives in the current memory context.
 */
static inline WaitEventSet *
opsmig_create_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(CurrentResourceOwner, nevents);
#else
	return CreateWaitEventSet(CurrentMemoryContext, nevents);
#endif
}

/*
 * This backend's 0-based slot among the cluster's backends: 17 renamed
 * MyBackendId, 1-based, to MyProcNumber, 0-based.
 */
static inline int
opsmig_proc_index(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProcNumber;
#else
	return MyBackendId - 1;
#endif
}

#endif							/* OPSMIG_COMPAT_H */
