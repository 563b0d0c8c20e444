# opsmig_fdw: PGXS build.  `make && make install`, then `bash test/run-tests.sh`
# (not `make check`: under PGXS it runs nothing).

MODULE_big = opsmig_fdw
OBJS = opsmig_fdw.o option.o connection.o http.o api_url.o api_error.o api_batch.o api_scan.o api_change.o api_parse.o cache.o cluster.o shared_cache.o ratelimit.o stats.o
PGFILEDESC = "opsmig_fdw - foreign-data wrapper for MongoDB Ops Manager live-migration links"

EXTENSION = opsmig_fdw
DATA = opsmig_fdw--1.0.sql opsmig_fdw--1.0--1.1.sql opsmig_fdw--1.1--1.2.sql opsmig_fdw--1.2--1.3.sql

REGRESS = init options scan modify errors envelope paging cancel security fast faults transport ratelimit claims reports cache_delete cache_latin1 owner_options explain_work copy surface review_9a review_12 cluster_unloaded review_9c review_9b viewuser counters review_10 upgrade
REGRESS_OPTS = --load-extension=plpgsql

PKG_CONFIG ?= pkg-config
# json-c is included as <json-c/json.h>: its own include dir would shadow
# PostgreSQL headers, so only curl's cflags are added.
PG_CPPFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl)
SHLIB_LINK = $(shell $(PKG_CONFIG) --libs libcurl json-c)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers: rebuild everything when one changes.
$(OBJS): $(wildcard *.h)

# `make dist`: the PGXN source release, dist/opsmig_fdw-$(DIST_VERSION).tar.gz
# with everything under opsmig_fdw-$(DIST_VERSION)/.  It packs the COMMITTED
# tree (git archive HEAD), not the work tree: uncommitted edits are left out,
# so commit first.  DIST_VERSION must match META.json and debian/changelog
# (test/tools/package.sh checks that they agree).
DIST_VERSION = 1.3.0
DIST_NAME = $(EXTENSION)-$(DIST_VERSION)

dist:
	mkdir -p dist
	git archive --format=tar.gz --prefix=$(DIST_NAME)/ -o dist/$(DIST_NAME).tar.gz HEAD
	@echo "dist/$(DIST_NAME).tar.gz (from the committed tree: git archive HEAD)"

.PHONY: dist
