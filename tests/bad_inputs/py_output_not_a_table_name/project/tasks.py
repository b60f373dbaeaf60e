import daglake


@daglake.task("a.b.c")
def three(ctx):
    return ctx.sql("SELECT 1 AS x")


@daglake.task("totals")
def totals(ctx):
    return ctx.sql("SELECT 1 AS x")
