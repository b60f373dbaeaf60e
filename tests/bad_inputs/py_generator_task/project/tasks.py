import daglake


@daglake.task("staging.batches")
def batches(ctx):
    for n in range(3):
        yield ctx.sql(f"SELECT {n} AS n")
