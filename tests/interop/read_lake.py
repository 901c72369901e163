#!/usr/bin/env python3
"""Reads the lake's Delta tables with independent engines and prints what each saw, as JSON.

Usage: read_lake.py LAKE TABLE_PATH... (paths under the lake, e.g. silver/lastfm/listens)

LAKE is a local directory or s3://bucket/prefix; for S3 the usual AWS_* variables apply
(AWS_ENDPOINT_URL and AWS_ALLOW_HTTP for LocalStack).

For every engine (duckdb with its delta extension, polars, deltalake): the row count of each
table, the column types of each table, and the rows of gold/lastfm/top_songs ordered by rank.
"""
import glob
import json
import os
import sys
import sysconfig

# Columns the lake writes delta-encoded (DELTA_BINARY_PACKED, DELTA_BYTE_ARRAY; lake-schema's
# `Encoding::Delta`) whose values print the same in every engine: each engine's max must agree.
DELTA_ENCODED = ("source_line", "timestamp")


def duckdb_engine(lake, tables):
    import duckdb

    def extension(name):
        pattern = os.path.join(sysconfig.get_paths()["purelib"], "duckdb_ext", "extensions", "*", "*",
                               f"{name}.duckdb_extension")
        found = glob.glob(pattern)
        if not found:
            raise RuntimeError(f"no {name}.duckdb_extension under {pattern}")
        return found[0]

    con = duckdb.connect()
    if lake.startswith("s3://"):
        con.execute(f"LOAD '{extension('httpfs')}'")
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
        host = endpoint.split("://", 1)[-1].rstrip("/")
        options = [f"KEY_ID '{os.environ['AWS_ACCESS_KEY_ID']}'", f"SECRET '{os.environ['AWS_SECRET_ACCESS_KEY']}'",
                   f"REGION '{os.environ.get('AWS_REGION', 'us-east-1')}'"]
        if host:
            options += [f"ENDPOINT '{host}'", "URL_STYLE 'path'", f"USE_SSL {str(not endpoint.startswith('http://')).lower()}"]
        con.execute(f"CREATE SECRET lake (TYPE s3, {', '.join(options)})")
    con.execute(f"LOAD '{extension('delta')}'")
    out = {"counts": {}, "types": {}, "max": {}}
    for t in tables:
        scan = f"delta_scan('{os.path.join(lake, t)}')"
        out["counts"][t] = con.execute(f"SELECT count(*) FROM {scan}").fetchone()[0]
        out["types"][t] = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        out["max"][t] = {c: con.execute(f"SELECT max({c}) FROM {scan}").fetchone()[0]
                         for c in DELTA_ENCODED if c in out["types"][t]}
    top = f"delta_scan('{os.path.join(lake, 'gold/lastfm/top_songs')}')"
    out["top_songs"] = [list(r) for r in con.execute(
        f"SELECT track_name, artist_name, play_count FROM {top} ORDER BY rank").fetchall()]
    return out


def polars_engine(lake, tables):
    import polars as pl

    out = {"counts": {}, "types": {}, "max": {}}
    for t in tables:
        df = pl.read_delta(os.path.join(lake, t))
        out["counts"][t] = df.height
        out["types"][t] = {k: str(v) for k, v in df.schema.items()}
        out["max"][t] = {c: df[c].max() for c in DELTA_ENCODED if c in df.columns}
    top = pl.read_delta(os.path.join(lake, "gold/lastfm/top_songs")).sort("rank")
    out["top_songs"] = [[r["track_name"], r["artist_name"], r["play_count"]] for r in top.iter_rows(named=True)]
    return out


def deltalake_engine(lake, tables):
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    out = {"counts": {}, "types": {}, "max": {}}
    for t in tables:
        table = DeltaTable(os.path.join(lake, t)).to_pyarrow_table()
        out["counts"][t] = table.num_rows
        out["types"][t] = {f.name: str(f.type) for f in table.schema}
        out["max"][t] = {c: pc.max(table[c]).as_py() for c in DELTA_ENCODED if c in table.column_names}
    top = DeltaTable(os.path.join(lake, "gold/lastfm/top_songs")).to_pyarrow_table().sort_by("rank").to_pylist()
    out["top_songs"] = [[r["track_name"], r["artist_name"], r["play_count"]] for r in top]
    return out


def main():
    lake, tables = sys.argv[1], sys.argv[2:]
    result = {}
    for name, engine in [("duckdb", duckdb_engine), ("polars", polars_engine), ("deltalake", deltalake_engine)]:
        try:
            result[name] = engine(lake, tables)
        except Exception as e:  # report, let the test decide
            result[name] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result))
    # The engines' native S3 clients can abort while the interpreter tears their threads down
    # ("terminate called without an active exception"), after the answer is printed: skip it.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
