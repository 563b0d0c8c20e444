# opsmig_fdw: PGXS build.  `make && make install`, then `bash test/run-tests.sh`
# (not `make check`: under PGXS it runs nothing).

MODULE_big = opsmig_fdw
OBJS = opsmig_fdw.o option.o connection.o http.o api.o api_parse.o
PGFILEDESC = "opsmig_fdw - foreign-data wrapper for MongoDB Ops Manager live-migration links"

EXTENSION = opsmig_fdw
DATA = opsmig_fdw--1.0.sql

REGRESS = init options scan modify errors envelope paging cancel security
REGRESS_OPTS = --load-extension=plpgsql

PKG_CONFIG ?= pkg-config
# json-c is included as <json-c/json.h>: its own include dir would shadow
# PostgreSQL headers, so only curl's cflags are added.
PG_CPPFLAGS = $(shell $(PKG_CONFIG) --cflags libcurl)
SHLIB_LINK = $(shell $(PKG_CONFIG) --libs libcurl json-c)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
