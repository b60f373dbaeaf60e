"""The courier-chat conversations pipeline (``examples/conversations``, issue 5) end to end on
generated messages: ``daglake run`` from the JSON files to the curated Parquet table, checks
included, next to (a) one hand-written DuckDB statement doing the same aggregation from the
same files and (b) the same job in PySpark local mode; then an incremental run adding ~1 % new
events, and a run with DuckDB's memory limited. Wall time and peak RSS of each; every contender,
Spark included, in one rotation (medians and ranges).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from _common import (
    REPO_DIR,
    WORK_DIR,
    BenchError,
    Contender,
    alternate,
    daglake_exe,
    install_venv,
    machine,
    seconds,
    span,
    table,
    verdict,
)

EXAMPLE = REPO_DIR / "examples" / "conversations"
WORK = WORK_DIR / "conversations"
SPARK_VENV = WORK_DIR / "spark-venv"
TABLE_PATH = Path("lake") / "curated" / "customer_courier_conversations"

# Runs a command in a fresh python and prints its wall time and peak RSS (MB): ru_maxrss of
# RUSAGE_CHILDREN is a running maximum over reaped descendants, so each run gets its own parent.
# The command's stdout goes to the file given first ("-" to discard it).
TIMER = (
    "import resource, subprocess, sys, time\n"
    "out = subprocess.DEVNULL if sys.argv[1] == '-' else open(sys.argv[1], 'wb')\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.PIPE)\n"
    "elapsed = time.perf_counter() - started\n"
    "if done.returncode:\n"
    "    sys.stderr.write(done.stderr.decode(errors='replace')[-3000:]); sys.exit(done.returncode)\n"
    "print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
)

# (a) One statement: the SPEC §7 columns from the JSON files, exact duplicates once, records of
# the wrong JSON type, unparseable times and foreign senders dropped (not quarantined).
DUCKDB_SCRIPT = r'''
import sys, duckdb
inp, out, limit, fmt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
con = duckdb.connect()
if limit:
    con.execute(f"SET memory_limit = '{limit}'")
ints = "IN ('BIGINT', 'UBIGINT')"
con.execute(f"""
COPY (
WITH raw AS (
    SELECT DISTINCT * FROM read_json('{inp}/customer_courier_chat_messages*', format='{fmt}',
        ignore_errors=true, columns={{'senderAppType': 'JSON', 'customerId': 'JSON', 'fromId': 'JSON',
        'toId': 'JSON', 'chatStartedByMessage': 'JSON', 'orderId': 'JSON', 'orderStage': 'JSON',
        'courierId': 'JSON', 'messageSentTime': 'JSON'}})
),
typed AS (
    SELECT CAST(customerId AS BIGINT) AS customer_id, CAST(fromId AS BIGINT) AS from_id,
           CAST(chatStartedByMessage AS BOOLEAN) AS started, CAST(orderId AS BIGINT) AS order_id,
           orderStage ->> '$' AS order_stage, CAST(courierId AS BIGINT) AS courier_id,
           TRY_CAST(messageSentTime ->> '$' AS TIMESTAMPTZ) AS sent
    FROM raw
    WHERE json_type(senderAppType) = 'VARCHAR' AND json_type(orderStage) = 'VARCHAR'
      AND json_type(messageSentTime) = 'VARCHAR' AND json_type(chatStartedByMessage) = 'BOOLEAN'
      AND json_type(customerId) {ints} AND json_type(fromId) {ints} AND json_type(toId) {ints}
      AND json_type(orderId) {ints} AND json_type(courierId) {ints}
),
messages AS (
    SELECT order_id, sent, order_stage, started,
           CASE WHEN from_id = courier_id THEN 'courier' ELSE 'customer' END AS sender
    FROM typed
    WHERE sent IS NOT NULL AND from_id IN (courier_id, customer_id)
),
per_order AS (
    SELECT order_id,
        min(sent) FILTER (WHERE sender = 'courier') AS first_courier_message,
        min(sent) FILTER (WHERE sender = 'customer') AS first_customer_message,
        count(*) FILTER (WHERE sender = 'courier') AS num_messages_courier,
        count(*) FILTER (WHERE sender = 'customer') AS num_messages_customer,
        min({{'sent': sent, 'not_starter': NOT started, 'sender': sender}}).sender AS first_message_by,
        min(sent) AS conversation_started_at,
        max(sent) AS last_message_time,
        max({{'sent': sent, 'stage': order_stage}}).stage AS last_message_order_stage
    FROM messages GROUP BY order_id
),
cities AS (
    SELECT CAST(orderId AS BIGINT) AS order_id, arg_max(cityCode ->> '$', filename) AS city_code
    FROM read_json('{inp}/orders*', format='{fmt}', ignore_errors=true, filename=true,
                   columns={{'orderId': 'JSON', 'cityCode': 'JSON'}})
    WHERE json_type(orderId) {ints} AND json_type(cityCode) = 'VARCHAR'
    GROUP BY 1
)
SELECT order_id, city_code, first_courier_message, first_customer_message, num_messages_courier,
       num_messages_customer, first_message_by, conversation_started_at,
       date_diff('second', conversation_started_at,
                 CASE first_message_by WHEN 'courier' THEN first_customer_message
                      ELSE first_courier_message END) AS first_responsetime_delay_seconds,
       last_message_time, last_message_order_stage
FROM per_order LEFT JOIN cities USING (order_id)
) TO '{out}' (FORMAT parquet, PARTITION_BY (city_code), OVERWRITE_OR_IGNORE)
""")
'''

# (b) The same job in PySpark local mode. DROPMALFORMED drops lines that are not JSON objects
# or whose values do not fit the schema; Spark's JSON reader turns numbers and objects into
# strings for StringType fields, so a mistyped string field is not caught here.
SPARK_SCRIPT = r'''
import sys
from pyspark.sql import SparkSession, functions as F, types as T
inp, out, multiline = sys.argv[1], sys.argv[2], sys.argv[3] == "array"
spark = (SparkSession.builder.appName("conversations")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "8")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
schema = T.StructType([
    T.StructField("senderAppType", T.StringType()), T.StructField("customerId", T.LongType()),
    T.StructField("fromId", T.LongType()), T.StructField("toId", T.LongType()),
    T.StructField("chatStartedByMessage", T.BooleanType()), T.StructField("orderId", T.LongType()),
    T.StructField("orderStage", T.StringType()), T.StructField("courierId", T.LongType()),
    T.StructField("messageSentTime", T.TimestampType()),
])
raw = spark.read.schema(schema).option("mode", "DROPMALFORMED").option("multiLine", multiline).json(f"{inp}/customer_courier_chat_messages*")
messages = (raw.dropna().dropDuplicates()
    .where(F.col("fromId").isin(F.col("courierId"), F.col("customerId")))
    .select(F.col("orderId").alias("order_id"), F.col("messageSentTime").alias("sent"),
            F.col("orderStage").alias("order_stage"), F.col("chatStartedByMessage").alias("started"),
            F.when(F.col("fromId") == F.col("courierId"), "courier").otherwise("customer").alias("sender")))
courier, customer = F.col("sender") == "courier", F.col("sender") == "customer"
per_order = messages.groupBy("order_id").agg(
    F.min(F.when(courier, F.col("sent"))).alias("first_courier_message"),
    F.min(F.when(customer, F.col("sent"))).alias("first_customer_message"),
    F.count(F.when(courier, 1)).alias("num_messages_courier"),
    F.count(F.when(customer, 1)).alias("num_messages_customer"),
    F.min(F.struct(F.col("sent"), (~F.col("started")).alias("ns"), F.col("sender"))).getField("sender").alias("first_message_by"),
    F.min("sent").alias("conversation_started_at"),
    F.max("sent").alias("last_message_time"),
    F.max(F.struct(F.col("sent"), F.col("order_stage"))).getField("order_stage").alias("last_message_order_stage"),
)
orders_schema = T.StructType([T.StructField("orderId", T.LongType()), T.StructField("cityCode", T.StringType())])
orders = (spark.read.schema(orders_schema).option("mode", "DROPMALFORMED").option("multiLine", multiline).json(f"{inp}/orders*").dropna()
          .withColumn("file", F.input_file_name()))
cities = orders.groupBy(F.col("orderId").alias("order_id")).agg(
    F.max(F.struct(F.col("file"), F.col("cityCode"))).getField("cityCode").alias("city_code"))
other = F.when(F.col("first_message_by") == "courier", F.col("first_customer_message")).otherwise(F.col("first_courier_message"))
result = per_order.join(cities, "order_id", "left").select(
    "order_id", "city_code", "first_courier_message", "first_customer_message", "num_messages_courier",
    "num_messages_customer", "first_message_by", "conversation_started_at",
    (other.cast("long") - F.col("conversation_started_at").cast("long")).alias("first_responsetime_delay_seconds"),
    "last_message_time", "last_message_order_stage")
result.write.mode("overwrite").partitionBy("city_code").parquet(out)
spark.stop()
'''


def generate(out: Path, messages: int, months: int, seed: int, start: str, file_format: str = "ndjson") -> Path:
    """Generated monthly folders, kept between runs of the benchmark (``.done`` marks them whole)."""
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        print(f"generating {messages:,} messages in {months} months under {out} ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "daglake.examples.conversations.generate", "--messages",
             str(messages), "--months", str(months), "--seed", str(seed), "--start", start,
             "--out", str(out), "--format", file_format],
            check=True, stdout=subprocess.DEVNULL,
        )
        (out / ".done").touch()
    return out


def flatten(generated: Path, folder: Path) -> list[Path]:
    """Every month's files side by side in one folder, the month in their name
    (``orders_2024-03.jsonl``), hard-linked where possible."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = []
    for month in sorted(p for p in generated.iterdir() if p.is_dir()):
        for source in sorted(month.iterdir()):
            name, _, ext = source.name.partition(".")
            target = folder / f"{name}_{month.name}.{ext}"
            link(source, target)
            files.append(target)
    return files


def link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def fresh_project(folder: Path, inputs: list[Path], memory_limit: str | None, spark: bool = False) -> Path:
    """A copy of ``examples/conversations`` with no lake, its ``input/`` holding ``inputs``;
    ``spark``: run on the Spark engine in ``local[2]`` (the machine's two cores)."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("lake", ".daglake", "input", "__pycache__"))
    (folder / "input").mkdir()
    for source in inputs:
        link(source, folder / "input" / source.name)
    if memory_limit:
        toml = folder / "daglake.toml"
        toml.write_text(toml.read_text(encoding="utf-8") + f'\n[engine]\nmemory_limit = "{memory_limit}"\n',
                        encoding="utf-8")
    if spark:
        toml = folder / "daglake.toml"
        toml.write_text(toml.read_text(encoding="utf-8") + '\n[engine]\nname = "spark"\n'
                        '\n[engine.spark]\nmaster = "local[2]"\nconf = { "spark.driver.memory" = "2g" }\n',
                        encoding="utf-8")
    return folder


def timed(command: list[str], stdout: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``command`` run from a fresh python."""
    done = subprocess.run([sys.executable, "-c", TIMER, str(stdout) if stdout else "-", *command],
                          capture_output=True, text=True)
    if done.returncode:
        raise BenchError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    elapsed, rss = (float(x) for x in done.stdout.split())
    return elapsed, rss


def parquet_rows(folder: Path) -> int:
    import duckdb

    return int(duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true)"
    ).fetchone()[0])


def differing_rows(ours: Path, theirs: Path) -> int:
    """Rows in either table and not in the other (0: the same table)."""
    import duckdb

    con = duckdb.connect()
    columns = ("order_id, city_code, first_courier_message, first_customer_message, num_messages_courier, "
               "num_messages_customer, first_message_by, conversation_started_at, "
               "first_responsetime_delay_seconds, last_message_time, last_message_order_stage")
    for name, folder in (("a", ours), ("b", theirs)):
        con.execute(f"CREATE VIEW {name} AS SELECT {columns} FROM "
                    f"read_parquet('{folder}/**/*.parquet', hive_partitioning = true)")
    return int(con.execute(
        "SELECT (SELECT count(*) FROM (FROM a EXCEPT ALL FROM b)) + (SELECT count(*) FROM (FROM b EXCEPT ALL FROM a))"
    ).fetchone()[0])


def spark_python(install: bool) -> tuple[str | None, str]:
    python = SPARK_VENV / "bin" / "python"
    if shutil.which("java") is None:
        return None, "no JDK on this machine (java not found): Spark skipped"
    if python.exists() and subprocess.run([str(python), "-c", "import pyspark"]).returncode == 0:
        return str(python), "pyspark from bench/.work/spark-venv"
    if not install:
        return None, "pyspark not installed (bench/.work/spark-venv)"
    failure = install_venv(SPARK_VENV, ["pyspark"])
    if failure is not None:
        return None, f"pyspark could not be installed: {failure}"
    return str(python), "pyspark from bench/.work/spark-venv (installed now)"


def task_durations(report: Path) -> dict[str, float]:
    """Seconds per kind of task from ``daglake run --json``: ingestion, the curated table, checks
    (summed; ingestion tasks run side by side, so their sum can exceed their wall time)."""
    run = json.loads(report.read_text(encoding="utf-8"))
    spent = {"ingest": 0.0, "curated": 0.0, "checks": 0.0, "run": float(run["duration"])}
    for task in run["tasks"]:
        kind = "checks" if task["kind"] == "check" else "ingest" if task["name"].startswith("raw.") else "curated"
        spent[kind] += float(task["duration"] or 0.0)
    return spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of every contender, Spark included, alternating (medians)")
    parser.add_argument("--skip-spark", action="store_true", help="no PySpark job")
    parser.add_argument("--skip-spark-engine", action="store_true", help="no daglake run on the Spark engine")
    parser.add_argument("--no-install", action="store_true", help="do not pip install pyspark")
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit of the limited daglake run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("ndjson", "array"), default="ndjson",
                        help="the generated files: one object per line, or one JSON array per file")
    args = parser.parse_args(argv)
    print(machine(), flush=True)

    size = f"{args.messages}-{args.months}-{args.seed}" + ("-array" if args.format == "array" else "")
    data = generate(WORK / f"data-{size}", args.messages, args.months, args.seed, "2024-01", args.format)
    # ~1 % new events a month after the last: a month of their own, seeded apart (its orders
    # overlap the earlier ones' ids, so some are late messages of orders already in the table).
    extra = generate(WORK / f"extra-{size}", max(args.messages // 100, 100), 1, args.seed + 1000,
                     f"{2024 + args.months // 12}-{args.months % 12 + 1:02d}", args.format)
    inputs = flatten(data, WORK / "input")
    extra_inputs = flatten(extra, WORK / "input-extra")
    megabytes = sum(p.stat().st_size for p in inputs) / 1e6
    last_date = f"{2024 + (args.months - 1) // 12}-{(args.months - 1) % 12 + 1:02d}-28"
    next_date = f"{2024 + args.months // 12}-{args.months % 12 + 1:02d}-28"

    rss: dict[str, list[float]] = {}
    incremental: list[float] = []
    reports: list[Path] = []

    def daglake_full(name: str, limit: str | None, with_incremental: bool, spark: bool = False) -> Contender:
        project = WORK / name

        def prepare() -> None:
            fresh_project(project, inputs, limit, spark=spark)

        def measure() -> float:
            report = WORK / f"{name}.json"
            elapsed, peak = timed([daglake_exe(), "run", str(project), "--json", "--date", last_date], report)
            rss.setdefault(name, []).append(peak)
            if with_incremental:
                reports.append(report.rename(WORK / f"{name}-{len(reports)}.json"))
                for source in extra_inputs:
                    link(source, project / "input" / source.name)
                inc, inc_peak = timed([daglake_exe(), "run", str(project), "--json", "--date", next_date],
                                      WORK / f"{name}-incremental.json")
                incremental.append(inc)
                rss.setdefault("incremental", []).append(inc_peak)
            return elapsed

        return Contender(name, measure, prepare)

    def script(name: str, launcher: list[str], code: str, extra_args: list[str]) -> Contender:
        path = WORK / f"bench_{name}_job.py"
        path.write_text(code, encoding="utf-8")
        out = WORK / f"{name}-out"

        def measure() -> float:
            elapsed, peak = timed([*launcher, str(path), str(WORK / "input"), str(out), *extra_args])
            rss.setdefault(name, []).append(peak)
            return elapsed

        return Contender(name, measure, lambda: shutil.rmtree(out, ignore_errors=True))

    ours = daglake_full("daglake", None, True)
    limited = daglake_full("daglake-limited", args.memory_limit, False)
    reader_format = "array" if args.format == "array" else "newline_delimited"
    duck = script("duckdb", [sys.executable], DUCKDB_SCRIPT, ["", reader_format])
    contenders = [ours, duck, limited]
    on_spark = None if args.skip_spark_engine else daglake_full("daglake-spark", None, False, spark=True)
    if on_spark is not None:
        contenders.append(on_spark)

    spark = None
    spark_failure: list[str] = []
    spark_note = "skipped (--skip-spark)"
    if not args.skip_spark:
        python, spark_note = spark_python(install=not args.no_install)
        if python:
            # spark-submit runs the JVM as a descendant the timer waits for, so its RSS counts
            # (pyspark started from python would leave the JVM unreaped and uncounted).
            os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = python
            submit = [str(Path(python).parent / "spark-submit"), "--master", "local[*]", "--driver-memory", "2g"]
            spark = script("spark", submit, SPARK_SCRIPT, [args.format])
            spark_measure = spark.measure

            def spark_or_nothing() -> float:
                """A failing Spark is reported, not fatal: the others' runs still count."""
                try:
                    return spark_measure()
                except BenchError as exc:
                    spark_failure.append(str(exc)[-500:])
                    return float("nan")

            spark.measure = spark_or_nothing
            contenders.append(spark)
    print(f"{args.messages:,} messages in {args.months} months ({megabytes:.0f} MB of JSON "
          f"{'arrays' if args.format == 'array' else 'lines (NDJSON)'}, "
          f"{len(inputs)} files); incremental batch {sum(p.stat().st_size for p in extra_inputs) / 1e6:.1f} MB",
          flush=True)
    alternate([contenders], args.repeat, label="runs")
    if spark_failure:
        spark_note = f"Spark failed: {spark_failure[0]}"
        spark = None

    # Correctness, cheaply: the table after the last full run against DuckDB's output.
    full_check = WORK / "daglake-limited"
    ours_rows = parquet_rows(full_check / TABLE_PATH)
    duck_rows = parquet_rows(WORK / "duckdb-out")
    differ = differing_rows(full_check / TABLE_PATH, WORK / "duckdb-out")
    spark_rows = parquet_rows(WORK / "spark-out") if spark else None
    inc_rows = parquet_rows(WORK / "daglake" / TABLE_PATH)
    spark_engine_differ = (
        differing_rows(WORK / "daglake-spark" / TABLE_PATH, WORK / "duckdb-out") if on_spark is not None else None
    )

    median_rss = {k: statistics.median(v) for k, v in rss.items()}
    rows = [
        ["daglake run (full, checks included)", seconds(ours.median), ours.spread,
         f"{median_rss['daglake']:.0f} MB", "1.00x"],
        [f"daglake run, memory_limit {args.memory_limit}", seconds(limited.median), limited.spread,
         f"{median_rss['daglake-limited']:.0f} MB", f"{limited.median / ours.median:.2f}x"],
        ["(a) DuckDB, one hand-written statement (no quarantine, no checks)", seconds(duck.median), duck.spread,
         f"{median_rss['duckdb']:.0f} MB", f"{ours.median / duck.median:.2f}x"],
    ]
    if on_spark is not None:
        rows.append(["daglake run --engine spark, local[2] (full, checks included)", seconds(on_spark.median),
                     on_spark.spread, f"{median_rss['daglake-spark']:.0f} MB", f"{ours.median / on_spark.median:.2f}x"])
    if spark:
        rows.append(["(b) PySpark local mode", seconds(spark.median), spark.spread,
                     f"{median_rss['spark']:.0f} MB", f"{ours.median / spark.median:.2f}x"])
    inc = statistics.median(incremental)
    rows.append([f"daglake incremental run, +{len(extra_inputs)} files (~1 % new events)", seconds(inc),
                 span(incremental), f"{median_rss['incremental']:.0f} MB", f"{inc / ours.median:.2f}x"])
    print()
    print(table(["contender", "wall (median)", "range", "peak RSS (median)", "daglake / it (time)"], rows))
    print(f"\nruns: {args.repeat} of each contender, alternating, the order rotated each repetition; "
          f"Spark: {spark_note}")
    print(f"rows: daglake {ours_rows:,}, DuckDB (a) {duck_rows:,}"
          + (f", Spark (b) {spark_rows:,}" if spark_rows is not None else "")
          + f"; rows differing between daglake and (a): {differ}"
          + (f", between daglake on Spark and (a): {spark_engine_differ}" if spark_engine_differ is not None else "")
          + "; "
          f"daglake after the incremental run {inc_rows:,}")
    spent = [task_durations(r) for r in reports]
    print("daglake --json task durations, medians (ingestion tasks run side by side): "
          + ", ".join(f"{k} {seconds(statistics.median(s[k] for s in spent))}" for k in ("ingest", "curated", "checks", "run")))
    print()
    print(f"daglake within 1.25x of (a) DuckDB: {ours.median / duck.median:.2f}x, "
          f"{verdict(ours.median / duck.median, 1.25)}")
    if on_spark is not None and spark:
        print(f"daglake on Spark / (b) the hand-written PySpark job: {on_spark.median / spark.median:.2f}x")
    if spark:
        print(f"daglake at least 10x faster than (b) Spark: {spark.median / ours.median:.2f}x, "
              f"{verdict(spark.median / ours.median, 10, at_least=True)}")
    else:
        print(f"daglake at least 10x faster than (b) Spark: not measured ({spark_note})")
    peak = max(median_rss["daglake"], median_rss["daglake-limited"], median_rss["incremental"])
    print(f"daglake peak memory under 2 GB: {peak:.0f} MB, {verdict(peak / 1024, 2, unit=' GB')}")
    print(f"incremental 1 % batch under 5 % of the full run: {inc / ours.median * 100:.1f} %, "
          f"{verdict(inc / ours.median * 100, 5, unit=' %')}")
    print(f"memory_limit {args.memory_limit} run completed: {seconds(limited.median)}, "
          f"{median_rss['daglake-limited']:.0f} MB peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
